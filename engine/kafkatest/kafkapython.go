package kafkatest

// kafka-python as a real client: testdata/kafka_python_produce.py run by
// Debian's /usr/bin/python3 (package python3-kafka, kafka-python 2.0.2,
// installed by `make deps`), fed its configuration and records on stdin,
// reporting each record's acknowledgement as a JSON line on stdout.

import (
	"bufio"
	_ "embed"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// PythonPath is Debian's python3, the one python3-kafka installs
// kafka-python for (a python3 first on PATH, such as pyenv's, may not
// have it).
const PythonPath = "/usr/bin/python3"

//go:embed testdata/kafka_python_produce.py
var kafkaPythonScript []byte

var kafkaPythonCheck = sync.OnceValue(func() error {
	out, err := exec.Command(PythonPath, "-c", "import kafka; print(kafka.__version__)").CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s cannot import kafka: %v: %s", PythonPath, err, out)
	}
	return nil
})

// KafkaPython fails the test when kafka-python is not installed for
// PythonPath, as the kcat tests do for kcat: `make deps` installs it, and
// a silent skip would hide the coverage.
func KafkaPython(t testing.TB) {
	t.Helper()
	if err := kafkaPythonCheck(); err != nil {
		t.Fatalf("kafka-python is not installed: run `make deps` (apt-get install python3-kafka): %v", err)
	}
}

// PyConfig is the producer's configuration, in kafka-python's words.
type PyConfig struct {
	Bootstrap []string `json:"bootstrap"`
	Topic     string   `json:"topic"`
	ClientID  string   `json:"client_id,omitempty"`
	// SecurityProtocol is PLAINTEXT, SASL_PLAINTEXT or SASL_SSL;
	// Mechanism PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.
	SecurityProtocol string `json:"security_protocol"`
	Mechanism        string `json:"sasl_mechanism,omitempty"`
	User             string `json:"username,omitempty"`
	Password         string `json:"password,omitempty"`
	CAFile           string `json:"cafile,omitempty"`
	// Acks is 0, 1 or -1 (all); Retries kafka-python's retries (its
	// default is 0: a failed batch is reported, not sent again).
	Acks    int `json:"acks"`
	Retries int `json:"retries"`
	// Compression is gzip, snappy, lz4 or zstd; empty: none.
	Compression string `json:"compression,omitempty"`
	// Milliseconds; zero: kafka-python's defaults (30 s request timeout,
	// 60 s max block, 100 ms retry backoff, 300 s metadata age), and
	// 30 s for the final flush.
	RequestTimeoutMS int `json:"request_timeout_ms,omitempty"`
	MaxBlockMS       int `json:"max_block_ms,omitempty"`
	RetryBackoffMS   int `json:"retry_backoff_ms,omitempty"`
	MetadataMaxAgeMS int `json:"metadata_max_age_ms,omitempty"`
	CloseTimeoutMS   int `json:"close_timeout_ms,omitempty"`
	// Debug sends kafka-python's DEBUG log to the result's Log.
	Debug bool `json:"debug,omitempty"`
}

// KafkaPython is how kafka-python reaches l, writing topic, with acks 1
// and 10 s for a request and for metadata (max_block_ms):
// SASL_SSL with l's CA file when l has TLS, SASL_PLAINTEXT when it has a
// user, PLAINTEXT otherwise; PLAIN with l's credentials (set Mechanism for
// SCRAM).
func (l Listener) KafkaPython(topic string) PyConfig {
	c := PyConfig{Bootstrap: []string{l.Addr}, Topic: topic, SecurityProtocol: "PLAINTEXT", Acks: 1, RequestTimeoutMS: 10000, MaxBlockMS: 10000}
	switch {
	case l.TLS != nil:
		c.SecurityProtocol, c.CAFile = "SASL_SSL", l.CAFile
	case l.User != "":
		c.SecurityProtocol = "SASL_PLAINTEXT"
	}
	if l.User != "" {
		c.Mechanism, c.User, c.Password = "PLAIN", l.User, l.Password
	}
	return c
}

// PyRecord is one record to send. Key nil: no key; Partition nil:
// kafka-python's partitioner picks; TimestampMS 0: kafka-python stamps it;
// Topic empty: the configuration's.
type PyRecord struct {
	ID          int         `json:"id"`
	Topic       string      `json:"topic,omitempty"`
	Value       string      `json:"value"`
	Key         *string     `json:"key,omitempty"`
	Partition   *int32      `json:"partition,omitempty"`
	Headers     [][2]string `json:"headers,omitempty"`
	TimestampMS int64       `json:"timestamp_ms,omitempty"`
}

// PyAck is kafka-python's answer for one record: acknowledged (OK, with
// where it was stored) or failed (Error, and Kafka's error name and code
// when the broker sent one, e.g. TOPIC_AUTHORIZATION_FAILED and 29).
type PyAck struct {
	ID        int     `json:"id"`
	OK        bool    `json:"ok"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	WaitMS    float64 `json:"wait_ms"`
	Error     string  `json:"error"`
	ErrorName string  `json:"error_name"`
	ErrorCode int     `json:"error_code"`
}

// Wait is how long the record waited from send() to its answer.
func (a PyAck) Wait() time.Duration { return time.Duration(a.WaitMS * float64(time.Millisecond)) }

// PyResult is what one run of kafka-python reported.
type PyResult struct {
	Acks []PyAck // in the order they came
	// Fatal: the producer could not start (no broker reachable, a failed
	// login) or flush; Done: it read every record and closed.
	Fatal string
	Done  bool
	// Exit is the process's error, Log its stderr (kafka-python's log).
	Exit error
	Log  string
}

// Acked is how many records were acknowledged.
func (r PyResult) Acked() int {
	n := 0
	for _, a := range r.Acks {
		if a.OK {
			n++
		}
	}
	return n
}

// Failed is the answers that are errors.
func (r PyResult) Failed() []PyAck {
	var out []PyAck
	for _, a := range r.Acks {
		if !a.OK {
			out = append(out, a)
		}
	}
	return out
}

// MaxWait is the longest wait for an acknowledgement.
func (r PyResult) MaxWait() time.Duration {
	var m time.Duration
	for _, a := range r.Acks {
		if a.OK {
			m = max(m, a.Wait())
		}
	}
	return m
}

// String sums r up for a test's failure message.
func (r PyResult) String() string {
	s := fmt.Sprintf("kafka-python: %d answers, %d acknowledged, max wait %v, done %v", len(r.Acks), r.Acked(), r.MaxWait().Round(time.Millisecond), r.Done)
	if f := r.Failed(); len(f) > 0 {
		s += fmt.Sprintf("; %d failed, first: %s (%s)", len(f), f[0].Error, f[0].ErrorName)
	}
	if r.Fatal != "" {
		s += "; fatal: " + r.Fatal
	}
	if r.Exit != nil {
		s += fmt.Sprintf("; exit: %v", r.Exit)
	}
	if r.Log != "" {
		s += "\nits log:\n" + r.Log
	}
	return s
}

// PyProducer is a running kafka-python producer. Send may be called from
// one goroutine at a time; OnAck (given at the start) is called from the
// goroutine that reads its output, one answer at a time.
type PyProducer struct {
	lines chan []byte // to its stdin, written by a goroutine so a stuck client cannot hang the test
	log   *LockedBuffer
	done  chan struct{} // closed when its output ended and the process exited

	mu  sync.Mutex // protects res
	res PyResult
}

// StartKafkaPython starts kafka-python producing as cfg says; onAck, if
// not nil, is called with every answer as it comes. The process is killed
// when the test ends if it still runs.
func StartKafkaPython(t testing.TB, cfg PyConfig, onAck func(PyAck)) *PyProducer {
	t.Helper()
	KafkaPython(t)
	script := filepath.Join(t.TempDir(), "kafka_python_produce.py")
	if err := os.WriteFile(script, kafkaPythonScript, 0o600); err != nil {
		t.Fatal(err)
	}
	first, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(PythonPath, script)
	p := &PyProducer{lines: make(chan []byte, 1<<16), log: &LockedBuffer{}, done: make(chan struct{})}
	cmd.Stderr = p.log
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("cannot start kafka-python: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.done
	})
	p.lines <- append(first, '\n')
	go func() {
		for line := range p.lines {
			if _, err := stdin.Write(line); err != nil {
				break // it exited; what it said is in its output
			}
		}
		stdin.Close()
		for range p.lines { // let Send and Close go on
		}
	}()
	go func() {
		defer close(p.done)
		p.read(stdout, onAck)
		err := cmd.Wait()
		p.mu.Lock()
		p.res.Exit = err
		p.mu.Unlock()
	}()
	return p
}

// read parses the script's output until it ends.
func (p *PyProducer) read(stdout io.Reader, onAck func(PyAck)) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			PyAck
			Done  bool   `json:"done"`
			Fatal string `json:"fatal"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			p.mu.Lock()
			p.res.Fatal += fmt.Sprintf("unreadable output %q: %v; ", sc.Text(), err)
			p.mu.Unlock()
			continue
		}
		p.mu.Lock()
		switch {
		case line.Fatal != "":
			p.res.Fatal += line.Fatal
		case line.Done:
			p.res.Done = true
		default:
			p.res.Acks = append(p.res.Acks, line.PyAck)
		}
		p.mu.Unlock()
		if line.Fatal == "" && !line.Done && onAck != nil {
			onAck(line.PyAck)
		}
	}
}

// Send hands one record to the producer.
func (p *PyProducer) Send(r PyRecord) {
	b, err := json.Marshal(r)
	if err != nil {
		panic(err) // PyRecord always marshals
	}
	p.lines <- append(b, '\n')
}

// Close ends the input; the producer flushes what it holds and exits.
// It returns what it reported, with ok false if it did not exit within
// timeout (the process is then killed).
func (p *PyProducer) Close(timeout time.Duration) (res PyResult, ok bool) {
	close(p.lines)
	select {
	case <-p.done:
		ok = true
	case <-time.After(timeout):
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	res = p.res
	res.Acks = append([]PyAck(nil), p.res.Acks...)
	res.Log = p.log.String()
	return res, ok
}

// KafkaPythonProduce sends recs with kafka-python as cfg says and returns
// its answers, failing the test if it does not finish within timeout.
func KafkaPythonProduce(t testing.TB, cfg PyConfig, recs []PyRecord, timeout time.Duration) PyResult {
	t.Helper()
	p := StartKafkaPython(t, cfg, nil)
	for _, r := range recs {
		p.Send(r)
	}
	res, ok := p.Close(timeout)
	if !ok {
		t.Fatalf("kafka-python did not finish in %v: %s", timeout, res)
	}
	return res
}
