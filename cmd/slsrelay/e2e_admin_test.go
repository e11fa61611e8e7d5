package main

// The configuration `make run` uses; the dlq subcommand on a WAL with
// real dead letters: list, drop, replay, then a restart delivers what was
// replayed; `wal status` on a running and a stopped relay.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
)

// TestE2ELocalConfig: configs/local.yaml (what `make run` starts) loads
// and says what its header comment promises.
func TestE2ELocalConfig(t *testing.T) {
	cfg, err := relay.LoadConfig("../../configs/local.yaml")
	if err != nil {
		t.Fatalf("configs/local.yaml: %v", err)
	}
	if len(cfg.Listeners) != 2 {
		t.Fatalf("%d listeners, want PLAINTEXT and SASL_SSL", len(cfg.Listeners))
	}
	p, s := cfg.Listeners[0], cfg.Listeners[1]
	if p.Protocol != "PLAINTEXT" || p.Bind != "127.0.0.1:9092" || p.Project != relaytest.Project || p.AccessKeyID != relaytest.AKID || p.AccessKeySecret != relaytest.Secret {
		t.Errorf("PLAINTEXT listener: %+v", p)
	}
	if s.Protocol != "SASL_SSL" || s.Bind != "127.0.0.1:9093" || s.TLSFiles == nil || !s.TLSFiles.SelfSigned ||
		strings.Join(s.TLSFiles.SelfSignedHosts, ",") != "localhost,127.0.0.1" {
		t.Errorf("SASL_SSL listener: %+v (tls %+v)", s, s.TLSFiles)
	}
	if cfg.SLS.StandIn == nil || cfg.SLS.StandIn.Listen != "127.0.0.1:9180" || cfg.SLS.Endpoint != "" {
		t.Errorf("sls: %+v", cfg.SLS)
	}
	if cfg.DataDir != "data" || cfg.WAL.SyncMode != "batch" || cfg.Log.Level != "info" || cfg.Log.Format != "text" {
		t.Errorf("data_dir %q, wal.sync %q, log %+v", cfg.DataDir, cfg.WAL.SyncMode, cfg.Log)
	}
	if cfg.TLSDir() != filepath.Join("data", "tls") {
		t.Errorf("TLS files go to %s, the header says data/tls", cfg.TLSDir())
	}
	// Strict: a misspelt key in a copy of it is an error, not a default.
	raw, err := os.ReadFile("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := relay.ParseConfig("x.yaml", append(raw, []byte("\nwal_typo: 1\n")...)); err == nil || !strings.Contains(err.Error(), "wal_typo") {
		t.Errorf("an unknown key: %v, want an error naming it", err)
	}
}

// writeConfig writes cfg as a YAML file for the subcommands.
func writeConfig(t testing.TB, cfg *relay.Config) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "slsrelay.yaml")
	relaytest.WriteConfig(t, path, cfg)
	return path
}

// dlq runs `slsrelay dlq args...` and returns its exit code, stdout and
// stderr.
func dlq(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	handled, code := runAdmin(append([]string{"dlq"}, args...), &out, &errb)
	if !handled {
		return -1, out.String(), errb.String()
	}
	return code, out.String(), errb.String()
}

// TestE2EDLQCommand makes three dead letters (SLS answers PostBodyInvalid
// to every write of a logstore), stops the relay, lists them with `dlq
// list`, drops one, replays the others with -all, and starts the relay
// again: the replayed records are delivered, the dropped ones are not.
func TestE2EDLQCommand(t *testing.T) {
	t.Parallel()
	const logstore = "e2e-01"
	r := startTestRelay(t)
	cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
	// The key's first batch to the logstore proves it may write (delivered
	// before its answer); only then does SLS start refusing.
	if err := produceKgo(t, cl, logstore, loadRecords(1000, 1, 1)); err != nil {
		t.Fatalf("produce the proving batch: %v", err)
	}
	r.waitLogs(t, relaytest.Project, logstore, 1, 10*time.Second)
	if _, err := r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Logstore: logstore, Status: 400, ErrorCode: "PostBodyInvalid"}); err != nil {
		t.Fatal(err)
	}
	var batches [][]sent
	for i, p := range []int32{0, 1, 0} {
		recs := loadRecords(100*i, 5+i, 1)
		for j := range recs {
			recs[j].Partition = p
		}
		if err := produceKgo(t, cl, logstore, recs); err != nil {
			t.Fatalf("produce: %v", err)
		}
		waitFor(t, 10*time.Second, fmt.Sprintf("dead letter %d", i+1), func() bool { return r.WAL().DeadLetterCount() == i+1 })
		batches = append(batches, recs)
	}
	path := writeConfig(t, r.cfg)

	// The relay holds the WAL and answers on its control socket.
	if code, out, stderr := dlq("list", "-config", path); code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 4 {
		t.Errorf("dlq list while the relay runs: exit %d, stdout %q, stderr %q; want the 3 dead letters", code, out, stderr)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}

	code, out, stderr := dlq("list", "-config", path)
	if code != 0 {
		t.Fatalf("dlq list: exit %d: %s", code, stderr)
	}
	t.Logf("dlq list:\n%s", out)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !regexp.MustCompile(`^ID\s+STREAM\s+RECORDS\s+AT\s+KEY\s+REASON$`).MatchString(lines[0]) {
		t.Fatalf("dlq list: want a header and 3 rows:\n%s", out)
	}
	var ids []string
	for i, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) < 6 {
			t.Fatalf("dlq list row %q", line)
		}
		wantStream := fmt.Sprintf("%s/%s/%d", relaytest.Project, logstore, batches[i][0].Partition)
		if f[1] != wantStream || f[2] != fmt.Sprint(len(batches[i])) {
			t.Errorf("row %d: stream %s, %s records; want %s, %d", i, f[1], f[2], wantStream, len(batches[i]))
		}
		if at, err := time.Parse(time.RFC3339, f[3]); err != nil || time.Since(at) > time.Minute {
			t.Errorf("row %d: AT %q is not a recent RFC 3339 time", i, f[3])
		}
		if f[4] != relaytest.AKID {
			t.Errorf("row %d: KEY %q, want the AccessKey ID the batch was sent with, %s", i, f[4], relaytest.AKID)
		}
		if reason := strings.Join(f[5:], " "); !strings.Contains(reason, "400 PostBodyInvalid") {
			t.Errorf("row %d: reason %q does not say what SLS answered", i, reason)
		}
		ids = append(ids, f[0])
	}

	// Usage errors: no or an unknown word exits 2 (commands_test.go has
	// the rest of the command line), what the WAL refuses exits 1.
	fc := func(wantCode int, wantErr string, args ...string) {
		t.Helper()
		code, _, stderr := dlq(args...)
		if code != wantCode || !strings.Contains(stderr, wantErr) {
			t.Errorf("dlq %v: exit %d, stderr %q; want %d and %q", args, code, stderr, wantCode, wantErr)
		}
	}
	f := func(wantErr string, args ...string) { t.Helper(); fc(1, wantErr, args...) }
	fc(2, "usage: slsrelay dlq")
	fc(2, "unknown dlq command", "frob", "-config", path)
	f("name the dead letters to replay, or -all", "replay", "-config", path)
	f("name the dead letters to drop, or -all", "drop", "-config", path)
	f(`dead letter id "x" is not a number`, "drop", "-config", path, "x")
	f("cannot drop dead letter 999", "drop", "-config", path, "999")
	f("cannot replay dead letter 999", "replay", "-config", path, "999")
	f("cannot read config", "list", "-config", filepath.Join(t.TempDir(), "missing.yaml"))

	// Drop the first, replay the rest.
	if code, out, stderr := dlq("drop", "-config", path, ids[0]); code != 0 || out != "dropped "+ids[0]+"\n" {
		t.Fatalf("dlq drop %s: exit %d, stdout %q, stderr %q", ids[0], code, out, stderr)
	}
	code, out, stderr = dlq("replay", "-config", path, "-all")
	if code != 0 {
		t.Fatalf("dlq replay -all: exit %d: %s", code, stderr)
	}
	replayed := regexp.MustCompile(`(?m)^replayed (\d+) at offset \d+$`).FindAllStringSubmatch(out, -1)
	if len(replayed) != 2 || replayed[0][1] != ids[1] || replayed[1][1] != ids[2] {
		t.Fatalf("dlq replay -all: %q, want dead letters %s and %s replayed", out, ids[1], ids[2])
	}
	if code, out, _ := dlq("list", "-config", path); code != 0 || len(strings.Split(strings.TrimSpace(out), "\n")) != 1 {
		t.Fatalf("dlq list after drop and replay: exit %d, want only the header:\n%s", code, out)
	}

	// A relay on the same data_dir (its stand-in has no fault) delivers
	// the replayed records; the dropped ones are gone.
	r2 := startTestRelayConfig(t, r.cfg)
	want := append(append([]sent(nil), batches[1]...), batches[2]...)
	setWindow(want, time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	r2.waitIDs(t, logstore, want, e2eTimeout)
	time.Sleep(100 * time.Millisecond)
	r2.checkDelivered(t, logstore, want, true)
}

// TestE2EVersionCommand: `slsrelay version` answers; other arguments are
// not subcommands.
func TestE2EVersionCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if handled, code := runAdmin([]string{"version"}, &out, &errb); !handled || code != 0 || !strings.HasPrefix(out.String(), "slsrelay ") {
		t.Errorf("version: handled %v, exit %d, stdout %q", handled, code, out.String())
	}
	if handled, _ := runAdmin([]string{"-config", "x.yaml"}, &out, &errb); handled {
		t.Errorf("-config was taken for a subcommand")
	}
}

// TestE2EWALStatusLive: `slsrelay wal status` on a running relay (which
// holds the WAL directory) without a control socket asks its admin
// listener, and shows the streams it has, as the table or (-json) JSON.
func TestE2EWALStatusLive(t *testing.T) {
	t.Parallel()
	const logstore = "e2e-02"
	r := startTestRelay(t, func(c *relay.Config) {
		c.Admin.Listen = "0.0.0.0:0"
		c.Admin.ControlSocket = relay.ControlSocketOff
	})
	// The config the command reads names the port the relay got.
	_, port, err := net.SplitHostPort(r.Addrs.Admin)
	if err != nil {
		t.Fatal(err)
	}
	r.cfg.Admin.Listen = "0.0.0.0:" + port
	cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
	recs := loadRecords(0, 7, 1)
	if err := produceKgo(t, cl, logstore, recs); err != nil {
		t.Fatalf("produce: %v", err)
	}
	path := writeConfig(t, r.cfg)
	var out bytes.Buffer
	stream := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(relaytest.Project+"/"+logstore+"/0") + `\s+(\d+)\s`)
	var m []string
	// The WAL's status trails an acknowledgement by one index write (the
	// append is answered once synced, indexed just after).
	waitFor(t, 10*time.Second, "wal status to show the stream past offset 0", func() bool {
		out.Reset()
		if err := writeWALStatus(path, false, &out, io.Discard); err != nil {
			t.Fatalf("wal status on a running relay: %v", err)
		}
		m = stream.FindStringSubmatch(out.String())
		return m != nil && m[1] != "0"
	})
	t.Logf("wal status:\n%s", out.String())
	if !strings.HasPrefix(out.String(), "(from the running relay at http://127.0.0.1:"+port+")") || m == nil || m[1] == "0" {
		t.Fatalf("wal status: want the running relay's table with stream %s/%s/0 past offset 0:\n%s", relaytest.Project, logstore, out.String())
	}
	// -json: the admin listener answers JSON to Accept: application/json.
	out.Reset()
	if err := writeWALStatus(path, true, &out, io.Discard); err != nil {
		t.Fatalf("wal status -json on a running relay: %v", err)
	}
	var st relay.WALStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || len(st.Streams) == 0 {
		t.Fatalf("wal status -json on a running relay: %v\n%s", err, out.String())
	}
	// With the relay stopped the directory is read instead.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	out.Reset()
	if err := writeWALStatus(path, false, &out, io.Discard); err != nil || strings.HasPrefix(out.String(), "(from") || !stream.MatchString(out.String()) {
		t.Fatalf("wal status on a stopped relay: %v\n%s", err, out.String())
	}
}
