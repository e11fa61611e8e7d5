package main

// Crashes under load, on the real binaries: the relay (slsrelay) and the
// SLS stand-in (slsfake, keeping everything it is sent) each in its own
// process; a franz-go producer sends 8,000 records/s of 512 bytes, gzip,
// to a logstore of 2 shards over PLAINTEXT (wal.sync: batch) while the
// relay is SIGKILLed and restarted 20 times, about every 1.5 s. The writers
// are paced below the inflow (fixed, 1.5 MB/s per shard against about
// 2.2 MB/s of raw logs), so that at every kill a backlog is being
// delivered: the case in which a writer that commits only after a whole
// read sent again everything since its last commit (with that writer this
// test measured 0 duplicates without the backlog, and many with it: see
// README). Every acknowledged record must reach SLS, and the records
// delivered twice (the LogGroups in flight at each kill, plus the batches
// a producer sends again after losing its connection) must stay under 5 %
// of those acknowledged. It takes about two minutes and runs only with
// SLSRELAY_LONG_TESTS=1:
//
//	SLSRELAY_LONG_TESTS=1 go test -count=1 -run TestOpsCrashRedelivery -v ./cmd/slsrelay/

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.yaml.in/yaml/v3"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
)

const (
	crashKills       = 20
	crashEvery       = 1500 * time.Millisecond
	crashRecordsPerS = 8000
	crashRecordBytes = 512
	crashMaxDupShare = 0.05
)

func TestOpsCrashRedelivery(t *testing.T) {
	if os.Getenv("SLSRELAY_LONG_TESTS") != "1" {
		t.Skip("a minute of SIGKILLs under load; set SLSRELAY_LONG_TESTS=1")
	}
	bin := slsrelayBinary(t)
	dir := t.TempDir()
	ca := selfSigned(t, filepath.Join(dir, "tls"))
	fakeAddr := startFakeProcess(t, dir)
	fakeEndpoint := slsfake.DefaultEndpointHost + ":" + portOf(fakeAddr)

	cfg := newChildConfig(t, dir, ca.Cert, ca.Key)
	cfg.sendTo(fakeEndpoint)
	cfg.SLS.Linger = 200 * time.Millisecond // the default, not the tests' short one
	cfg.WAL.SyncMode = "batch"
	cfg.SLS.Pace, cfg.SLS.ShardBytesPerSec = "fixed", 1_500_000 // a backlog at every kill
	cfgPath := filepath.Join(dir, "slsrelay.yaml")
	cfg.write(t, cfgPath)
	env := childEnv("HTTP_PROXY=http://" + fakeAddr)
	store := e2eStore(6)

	c := startChild(t, "slsrelay (run 0)", bin, cfgPath, env)
	c.waitReady(t, cfg.admin(), 30*time.Second)

	cl, err := kgo.NewClient(
		kgo.SeedBrokers(cfg.plain()),
		kgo.ProducerBatchCompression(kgo.GzipCompression()),
		kgo.RecordPartitioner(kgo.RoundRobinPartitioner()),
		kgo.DialTimeout(2*time.Second), kgo.RequestTimeoutOverhead(5*time.Second),
		kgo.RecordDeliveryTimeout(2*time.Minute), kgo.RetryTimeout(2*time.Minute),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
		kgo.MaxBufferedRecords(200_000),
	)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	var (
		mu      sync.Mutex
		acked   = map[string]bool{}
		failed  int
		lastErr error
		pending sync.WaitGroup
		sentN   int
	)
	pad := strings.Repeat("x", crashRecordBytes)
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var loop sync.WaitGroup
	loop.Add(1)
	go func() {
		defer loop.Done()
		// 80 records every 10 ms: 8,000 records/s.
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		for ctx.Err() == nil {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return
			}
			for range crashRecordsPerS / 100 {
				sentN++
				id := e2eID(sentN)
				v := id + " crash load " + pad
				rec := &kgo.Record{Topic: store, Value: []byte(v[:crashRecordBytes])}
				pending.Add(1)
				cl.Produce(context.Background(), rec, func(_ *kgo.Record, err error) {
					mu.Lock()
					if err == nil {
						acked[id] = true
					} else {
						failed++
						lastErr = err
					}
					mu.Unlock()
					pending.Done()
				})
			}
		}
	}()

	for i := 1; i <= crashKills; i++ {
		time.Sleep(crashEvery)
		if err := c.cmd.Process.Kill(); err != nil {
			t.Fatalf("SIGKILL %d: %v", i, err)
		}
		if _, ok := c.exited(10 * time.Second); !ok {
			t.Fatalf("the relay still runs 10 s after SIGKILL %d", i)
		}
		c = startChild(t, fmt.Sprintf("slsrelay (run %d)", i), bin, cfgPath, env)
		c.waitReady(t, cfg.admin(), 30*time.Second)
	}
	stop()
	loop.Wait()
	waitDone(t, &pending, 3*time.Minute, "every produce callback")
	mu.Lock()
	t.Logf("%d kills: %d records produced, %d acknowledged, %d failed (last: %v)", crashKills, sentN, len(acked), failed, lastErr)
	mu.Unlock()
	if len(acked) < sentN/2 {
		t.Fatalf("only %d of %d records acknowledged", len(acked), sentN)
	}

	sc := &sls.Client{Endpoint: fakeEndpoint, AccessKeyID: relaytest.AKID, AccessKeySecret: relaytest.Secret,
		HTTPClient: slsfake.NewHTTPClient(fakeAddr, slsfake.DefaultEndpointHost)}
	reader := &testRelay{sls: sc}
	var delivered map[string][]pulled
	var missing []string
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if fakeLogs(t, fakeAddr) >= int64(len(acked)) {
			delivered = byID(reader.pullAll(t, store))
			missing = missing[:0]
			for id := range acked {
				if len(delivered[id]) == 0 {
					missing = append(missing, id)
				}
			}
			if len(missing) == 0 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d acknowledged records not in SLS 3 minutes after the load, e.g. %v", len(missing), missing[:min(10, len(missing))])
		}
		time.Sleep(2 * time.Second)
	}
	dups, extra := 0, 0
	for id, logs := range delivered {
		if acked[id] {
			dups += len(logs) - 1
		} else if id != "" {
			extra += len(logs)
		}
	}
	share := float64(dups) / float64(len(acked))
	t.Logf("every one of %d acknowledged records in SLS; %d duplicates (%.2f %% of acknowledged), %d unacknowledged records delivered",
		len(acked), dups, 100*share, extra)
	if share > crashMaxDupShare {
		t.Errorf("duplicates are %.2f %% of acknowledged records, want at most %.0f %%", 100*share, 100*crashMaxDupShare)
	}
	c.signal(t, 15)
	c.exited(opsGrace)
}

// startFakeProcess builds cmd/slsfake and runs it in its own process with
// the e2e logstores and an unbounded store, returning its address.
func startFakeProcess(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "slsfake")
	if out, err := exec.Command("go", "build", "-o", bin, "../slsfake").CombinedOutput(); err != nil {
		t.Fatalf("go build ../slsfake: %v\n%s", err, out)
	}
	fc := e2eFakeConfig()
	fc.MaxStoredBytes = -1
	b, err := yaml.Marshal(fc)
	if err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "slsfake.yaml")
	if err := os.WriteFile(cfgPath, b, 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	cmd := exec.Command(bin, "-listen", addr, "-config", cfgPath)
	log := newOpsLog()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("slsfake output:\n%s", log)
		}
	})
	waitFor(t, 10*time.Second, "the stand-in process to answer", func() bool {
		code, _, err := httpGet(addr, "/_stats")
		return err == nil && code == http.StatusOK
	})
	return addr
}

// fakeLogs returns how many logs the stand-in process accepted.
func fakeLogs(t testing.TB, addr string) int64 {
	t.Helper()
	code, body, err := httpGet(addr, "/_stats")
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /_stats: %d %v", code, err)
	}
	var st slsfake.Stats
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatalf("GET /_stats: %v", err)
	}
	return st.PutLogs
}
