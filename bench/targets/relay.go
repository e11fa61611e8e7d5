package targets

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/shardwriter"
	"github.com/slsrelay/slsrelay/wal"
)

// RelaySpec says which relay to build. It mirrors cmd/slsrelay's
// startRelay wiring (WAL → writers → catalog → engine with a backlog
// throttle), built from the packages since package main cannot be
// imported.
type RelaySpec struct {
	// Mode "e2e": engine → WAL → shardwriter → the stand-in at
	// StandInAddr. Mode "ack": engine → MemoryAppender{Discard} with a
	// static catalog, the ack path alone (ingest speed, nothing stored).
	Mode       string `json:"mode"`
	Dir        string `json:"dir"`
	Project    string `json:"project"`
	Topic      string `json:"topic"`
	Partitions int32  `json:"partitions"`
	AKID       string `json:"akid"`
	Secret     string `json:"secret"`
	// StandInAddr is the stand-in's real address; StandInHost the SDK
	// endpoint host name it answers to.
	StandInAddr string `json:"standInAddr,omitempty"`
	StandInHost string `json:"standInHost,omitempty"`
	// SLSQuota keeps the writers paced to SLS's per-shard quota (5 MB/s,
	// 500 writes/s); off by default so the bench measures the relay.
	SLSQuota bool   `json:"slsQuota,omitempty"`
	Sync     string `json:"sync,omitempty"` // wal.sync: batch (default) or interval
}

// RelayInfo is where a started relay listens.
type RelayInfo struct {
	Plain string `json:"plain"`
	TLS   string `json:"tls"`
	CA    string `json:"ca"`
	PID   int    `json:"pid"`
}

// RelayStats is a sample of the relay's buffer.
type RelayStats struct {
	BacklogBytes int64   `json:"backlogBytes"` // undelivered, stored (compressed)
	DiskBytes    int64   `json:"diskBytes"`
	Pressure     float64 `json:"pressure"`
}

// Relay is an in-process relay.
type Relay struct {
	Info    RelayInfo
	server  *engine.Server
	wal     *wal.WAL
	writers *shardwriter.Service
	thr     *engine.BacklogThrottle
}

// StartRelay builds and starts a relay in this process.
func StartRelay(spec RelaySpec) (_ *Relay, err error) {
	r := &Relay{}
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := os.MkdirAll(spec.Dir, 0o700); err != nil {
		return nil, err
	}
	var catalog engine.Catalog
	var app engine.Appender
	switch spec.Mode {
	case "ack":
		catalog = &engine.StaticCatalog{
			Projects: map[string]map[string]int32{spec.Project: {spec.Topic: spec.Partitions}},
			Keys:     map[string]string{spec.AKID: spec.Secret},
		}
		app = &engine.MemoryAppender{Discard: true}
	case "e2e":
		sync := wal.SyncBatch
		if spec.Sync != "" {
			if sync, err = wal.ParseSyncPolicy(spec.Sync); err != nil {
				return nil, err
			}
		}
		key := make([]byte, wal.KeySize)
		rand.Read(key)
		if r.wal, err = wal.Open(filepath.Join(spec.Dir, "wal"), wal.Options{Sync: sync, EncryptionKey: key, Logger: log}); err != nil {
			return nil, err
		}
		opts := shardwriter.Options{
			Endpoint:   spec.StandInHost,
			HTTPClient: slsfake.NewHTTPClient(spec.StandInAddr, hostOnly(spec.StandInHost)),
			Catalog:    shardwriter.CatalogOptions{StateFile: filepath.Join(spec.Dir, "catalog.json")},
			Logger:     log,
		}
		if !spec.SLSQuota {
			opts.ShardBytesPerSec, opts.ShardRequestsPerSec = -1, -1
		}
		if r.writers, err = shardwriter.New(r.wal, opts); err != nil {
			return nil, err
		}
		catalog, app = r.writers.Catalog(), r.wal
	default:
		return nil, fmt.Errorf("relay mode %q: want e2e or ack", spec.Mode)
	}
	tlsFiles, err := engine.EnsureSelfSigned(filepath.Join(spec.Dir, "tls"), []string{"localhost", "127.0.0.1"})
	if err != nil {
		return nil, err
	}
	certs, err := engine.NewCertReloader(tlsFiles.Cert, tlsFiles.Key)
	if err != nil {
		return nil, err
	}
	tlsCfg, err := certs.Config("")
	if err != nil {
		return nil, err
	}
	opts := engine.Options{
		Logger: log,
		Listeners: []engine.ListenerOptions{
			{Name: "plain", Protocol: engine.Plaintext, Bind: "127.0.0.1:0",
				Principal: &engine.Principal{Project: spec.Project, Credential: wal.Credential{AccessKeyID: spec.AKID, AccessKeySecret: spec.Secret}}},
			{Name: "tls", Protocol: engine.SASLSSL, Bind: "127.0.0.1:0", TLS: tlsCfg},
		},
	}
	if r.wal != nil {
		r.thr = engine.NewBacklogThrottle(engine.ThrottleOptions{}, r.backlog)
		opts.Throttle = r.thr
	}
	if r.server, err = engine.New(opts, catalog, app); err != nil {
		return nil, err
	}
	if err := r.server.Start(); err != nil {
		return nil, err
	}
	if r.writers != nil {
		r.writers.Start()
	}
	r.Info = RelayInfo{Plain: r.server.Addr("plain"), TLS: r.server.Addr("tls"), CA: tlsFiles.CA, PID: os.Getpid()}
	return r, nil
}

func hostOnly(hostport string) string {
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[:i]
		}
	}
	return hostport
}

// backlog is how far delivery is behind, for the throttle.
func (r *Relay) backlog() engine.Backlog { return engine.BacklogOf(r.wal.Stats()) }

// Stats samples the WAL (zero for the ack-path relay).
func (r *Relay) Stats() RelayStats {
	if r.wal == nil {
		return RelayStats{}
	}
	st := r.wal.Stats()
	return RelayStats{BacklogBytes: st.PendingBytes, DiskBytes: st.DiskBytes, Pressure: st.Pressure}
}

// Close shuts down as SIGTERM does: answer what was read, stop the
// writers at a clean position, close the WAL.
func (r *Relay) Close() error {
	var errs []error
	if r.server != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		errs = append(errs, r.server.Shutdown(ctx))
		cancel()
	}
	if r.thr != nil {
		r.thr.Close()
	}
	if r.writers != nil {
		errs = append(errs, r.writers.Close())
	}
	if r.wal != nil {
		errs = append(errs, r.wal.Close())
	}
	return errors.Join(errs...)
}

// ChildFlag is the flag cmd/slsbench re-executes itself with to run a
// relay as a child process, so the relay's CPU and RSS are its own and not
// mixed with the load generator's.
const ChildFlag = "-relay-child"

// RunRelayChild is the child's main: start the relay of specJSON, print its
// RelayInfo as a JSON line, then a RelayStats line every 250 ms, and shut
// down when stdin closes.
func RunRelayChild(specJSON string) error {
	var spec RelaySpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	r, err := StartRelay(spec)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	out.Encode(r.Info)
	done := make(chan struct{})
	go func() {
		io.Copy(io.Discard, os.Stdin)
		close(done)
	}()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return r.Close()
		case <-t.C:
			if out.Encode(r.Stats()) != nil {
				return r.Close()
			}
		}
	}
}

// ChildRelay is a relay running in a child process (see RunRelayChild).
type ChildRelay struct {
	Info  RelayInfo
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex
	last  RelayStats
	done  chan struct{}
}

// StartRelayChild runs exe ChildFlag spec and waits for its RelayInfo.
func StartRelayChild(exe string, spec RelaySpec) (*ChildRelay, error) {
	js, _ := json.Marshal(spec)
	cmd := exec.Command(exe, ChildFlag, string(js))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &ChildRelay{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &c.Info) != nil {
		stdin.Close()
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("relay child did not start")
	}
	c.Info.PID = cmd.Process.Pid
	go func() {
		defer close(c.done)
		for sc.Scan() {
			var st RelayStats
			if json.Unmarshal(sc.Bytes(), &st) == nil {
				c.mu.Lock()
				c.last = st
				c.mu.Unlock()
			}
		}
	}()
	return c, nil
}

// Stats is the child's latest sample.
func (c *ChildRelay) Stats() RelayStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Close asks the child to shut down (closing its stdin) and waits for it;
// after 30 s it is killed.
func (c *ChildRelay) Close() error {
	c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(30 * time.Second):
		c.cmd.Process.Kill()
	}
	return c.cmd.Wait()
}
