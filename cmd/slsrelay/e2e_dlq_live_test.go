package main

// Dead letters handled on a running relay: `slsrelay dlq list|replay|drop`
// and `wal status -json`, run as the built binary and as the command
// function, reach the relay on its control socket while producers write to
// the very streams being replayed into; the replayed records reach the
// stand-in exactly once, the dropped ones never. A second relay on the
// same data_dir is refused (the WAL's lock) and the commands keep working;
// a socket left by a relay killed with SIGKILL is taken for a stopped
// relay, and removed by the next start.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
)

// cliRun runs `slsrelay args...`: the built binary when bin is set, else
// the command function in this process. It returns the exit code, stdout
// and stderr.
func cliRun(t testing.TB, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	return cliRunIn(t, bin, env, "", args...)
}

// cliRunIn is cliRun with stdin as the command's standard input.
func cliRunIn(t testing.TB, bin string, env []string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	if bin == "" {
		return runCLI(args, strings.NewReader(stdin), &out, &errb), out.String(), errb.String()
	}
	cmd := exec.Command(bin, args...)
	cmd.Env, cmd.Stdin, cmd.Stdout, cmd.Stderr = env, strings.NewReader(stdin), &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("running %s %v: %v", bin, args, err)
	}
	return cmd.ProcessState.ExitCode(), out.String(), errb.String()
}

// listedIDs runs `dlq list -json` and returns the ids.
func listedIDs(t testing.TB, bin string, env []string, cfgPath string) []uint64 {
	t.Helper()
	code, out, stderr := cliRun(t, bin, env, "dlq", "list", "-json", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("dlq list -json: exit %d, stderr %q", code, stderr)
	}
	var list []relay.DeadLetterInfo
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("dlq list -json: %v\n%s", err, out)
	}
	ids := []uint64{}
	for _, d := range list {
		ids = append(ids, d.ID)
	}
	return ids
}

// walStatusJSON runs `wal status -json` and decodes it.
func walStatusJSON(t testing.TB, bin string, env []string, cfgPath string) relay.WALStatus {
	t.Helper()
	code, out, stderr := cliRun(t, bin, env, "wal", "status", "-json", "-config", cfgPath)
	if code != 0 {
		t.Fatalf("wal status -json: exit %d, stderr %q", code, stderr)
	}
	var st relay.WALStatus
	dec := json.NewDecoder(strings.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("wal status -json: %v\n%s", err, out)
	}
	return st
}

// checkSocketMode fails unless path is a socket only its owner may use.
func checkSocketMode(t testing.TB, path string) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatalf("control socket: %v", err)
	}
	if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
		t.Fatalf("control socket %s: mode %v, want a socket with 0600", path, fi.Mode())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != os.Getuid() {
		t.Fatalf("control socket owned by uid %d, not the relay's %d", st.Uid, os.Getuid())
	}
}

// TestE2EDLQLive: three dead letters on a running relay; while two
// producers write to the same logstore, `wal status -json` and `dlq list`
// (the binary) show them, `dlq drop` (the function) drops the first,
// `dlq replay -all -key-file -` (the binary, the key on stdin) replays the others through the
// running WAL and writers. Every record reaches the stand-in exactly once
// but the dropped ones. A second relay on the same data_dir is refused
// while the commands keep working.
func TestE2EDLQLive(t *testing.T) {
	t.Parallel()
	const logstore = "e2e-03"
	bin := slsrelayBinary(t)
	env := childEnv()
	start := time.Now()
	r := startTestRelay(t)
	cfgPath := writeConfig(t, r.cfg)
	sock := r.cfg.ControlSocket()
	checkSocketMode(t, sock)

	cl := newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...)
	// A first batch proves the key may write; then SLS refuses the
	// logstore's writes for good: each batch becomes a dead letter.
	proving := loadRecords(900000, 1, 1)
	if err := produceKgo(t, cl, logstore, proving); err != nil {
		t.Fatalf("produce the proving batch: %v", err)
	}
	r.waitLogs(t, relaytest.Project, logstore, 1, e2eTimeout)
	fault, err := r.fake.AddFault(slsfake.Fault{Ops: []string{slsfake.OpPutLogs}, Logstore: logstore, Status: 400, ErrorCode: "PostBodyInvalid"})
	if err != nil {
		t.Fatal(err)
	}
	var batches [][]sent
	for i := range 3 {
		recs := loadRecords(800000+100*i, 4+i, 1)
		for j := range recs {
			recs[j].Partition = int32(i % 2)
		}
		if err := produceKgo(t, cl, logstore, recs); err != nil {
			t.Fatalf("produce: %v", err)
		}
		waitFor(t, e2eTimeout, fmt.Sprintf("dead letter %d", i+1), func() bool { return r.WAL().DeadLetterCount() == i+1 })
		batches = append(batches, recs)
	}
	r.fake.RemoveFault(fault)

	// Producers write to the same logstore, both partitions, from here on.
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	ids := &atomic.Int64{}
	var loads []*load
	var wg sync.WaitGroup
	for range 2 {
		l := &load{cl: newKgo(t, r.kgoOpts(lPlain, relaytest.Password)...), topic: logstore, partitions: 2, batch: 25, pause: 5 * time.Millisecond, ids: ids}
		loads = append(loads, l)
		wg.Add(1)
		go func() { defer wg.Done(); l.run(ctx) }()
	}
	waitFor(t, e2eTimeout, "the producers' first batches", func() bool {
		for _, l := range loads {
			if n, _ := l.ackedBetween(start, time.Now()); n == 0 {
				return false
			}
		}
		return true
	})

	st := walStatusJSON(t, bin, env, cfgPath)
	if st.DeadLetters != 3 || len(st.Streams) == 0 {
		t.Fatalf("wal status -json on the running relay: %+v, want 3 dead letters and the streams", st)
	}
	code, out, stderr := cliRun(t, bin, env, "dlq", "list", "-config", cfgPath)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.Contains(out, "400 PostBodyInvalid") {
		t.Fatalf("dlq list (binary): exit %d, stderr %q, stdout:\n%s", code, stderr, out)
	}
	t.Logf("dlq list on the running relay:\n%s", out)
	dead := listedIDs(t, bin, env, cfgPath)
	if len(dead) != 3 {
		t.Fatalf("dlq list -json: ids %v, want 3", dead)
	}
	// -stream narrows the list: the second batch went to partition 1.
	code, out, stderr = cliRun(t, "", nil, "dlq", "list", "-stream", relaytest.Project+"/"+logstore+"/1", "-config", cfgPath)
	if lines := strings.Split(strings.TrimSpace(out), "\n"); code != 0 || len(lines) != 2 || !strings.HasPrefix(lines[1], fmt.Sprint(dead[1])+" ") {
		t.Fatalf("dlq list -stream: exit %d, stderr %q, stdout:\n%s", code, stderr, out)
	}

	code, out, stderr = cliRun(t, "", nil, "dlq", "drop", "-config", cfgPath, fmt.Sprint(dead[0]))
	if code != 0 || out != fmt.Sprintf("dropped %d\n", dead[0]) {
		t.Fatalf("dlq drop (function): exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// The key the replayed entries carry, on stdin as `kubectl exec -i`
	// passes it: the stand-in's demo key, so that they are delivered.
	code, out, stderr = cliRunIn(t, bin, env, relaytest.Password+"\n", "dlq", "replay", "-all", "-key-file", "-", "-config", cfgPath)
	replayed := regexp.MustCompile(`(?m)^replayed (\d+) at offset \d+ with AccessKey `+relaytest.AKID+`$`).FindAllStringSubmatch(out, -1)
	if code != 0 || len(replayed) != 2 || replayed[0][1] != fmt.Sprint(dead[1]) || replayed[1][1] != fmt.Sprint(dead[2]) {
		t.Fatalf("dlq replay -all (binary): exit %d, stdout %q, stderr %q; want %d and %d replayed", code, out, stderr, dead[1], dead[2])
	}
	if strings.Contains(out+stderr+r.Log.String(), relaytest.Secret) {
		t.Fatalf("the replay key's secret was printed or logged")
	}
	if got := listedIDs(t, "", nil, cfgPath); len(got) != 0 {
		t.Fatalf("dlq list after drop and replay: %v, want none", got)
	}
	if code, _, stderr := cliRun(t, "", nil, "dlq", "replay", "-config", cfgPath, fmt.Sprint(dead[1])); code != 1 || !strings.Contains(stderr, fmt.Sprintf("cannot replay dead letter %d", dead[1])) {
		t.Errorf("dlq replay of a replayed dead letter: exit %d, stderr %q; want 1 and why", code, stderr)
	}

	// A second relay on the same data_dir is refused by the WAL's lock,
	// and leaves the first one's socket alone.
	second, err := relay.New(r.cfg, relay.Deps{})
	if err == nil {
		second.Close()
		t.Fatal("a second relay on the same data_dir started")
	}
	if !walLocked(err) {
		t.Errorf("second relay: %v, want the WAL's lock", err)
	}
	checkSocketMode(t, sock)
	if st := walStatusJSON(t, "", nil, cfgPath); st.DeadLetters != 0 {
		t.Errorf("wal status -json after the second relay: %d dead letters, want 0", st.DeadLetters)
	}

	time.Sleep(300 * time.Millisecond) // the producers write on after the replay
	stop()
	wg.Wait()
	want := append(append([]sent(nil), proving...), append(batches[1], batches[2]...)...)
	for _, l := range loads {
		if len(l.errs) > 0 {
			t.Fatalf("a producer failed: %v", l.errs[0])
		}
		want = append(want, l.acked...)
	}
	setWindow(want, start.Add(-time.Minute), time.Now().Add(time.Minute))
	r.waitIDs(t, logstore, want, e2eTimeout)
	time.Sleep(200 * time.Millisecond) // anything sent twice would arrive now
	r.checkDelivered(t, logstore, want, true)
	t.Logf("%d producer records, %d replayed, %d dropped", len(want)-1-len(batches[1])-len(batches[2]), len(batches[1])+len(batches[2]), len(batches[0]))

	// Stopped, the relay has removed its socket: the commands open the WAL.
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the control socket after a clean stop: %v, want it removed", err)
	}
	if code, out, stderr := cliRun(t, "", nil, "dlq", "list", "-config", cfgPath); code != 0 || strings.TrimSpace(out) != "ID  STREAM  RECORDS  AT  KEY  REASON" || stderr != "" {
		t.Fatalf("dlq list on the stopped relay: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
}

// TestE2EDLQStaleSocket: a relay killed with SIGKILL leaves its socket;
// the commands then take the relay for stopped (and say why) and open the
// WAL, and the next relay removes the socket and serves a new one.
func TestE2EDLQStaleSocket(t *testing.T) {
	t.Parallel()
	bin := slsrelayBinary(t)
	env := childEnv()
	dir := t.TempDir()
	ca := selfSigned(t, filepath.Join(dir, "tls"))
	cfg := newChildConfig(t, dir, ca.Cert, ca.Key)
	cfgPath := filepath.Join(dir, "slsrelay.yaml")
	cfg.write(t, cfgPath)
	sock := cfg.ControlSocket()

	c := startChild(t, "slsrelay (first)", bin, cfgPath, env)
	c.waitReady(t, cfg.admin(), 30*time.Second)
	checkSocketMode(t, sock)
	if st := walStatusJSON(t, bin, env, cfgPath); st.DeadLetters != 0 {
		t.Fatalf("wal status -json: %+v", st)
	}
	// `wal status` without -json, live: the table, and where it came from.
	if code, out, stderr := cliRun(t, "", nil, "wal", "status", "-config", cfgPath); code != 0 || !strings.HasPrefix(out, "(from the running relay, control socket "+sock+")\nSTREAM") {
		t.Fatalf("wal status on the running relay: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	c.signal(t, syscall.SIGKILL)
	if _, ok := c.exited(10 * time.Second); !ok {
		t.Fatal("the relay outlived SIGKILL")
	}
	if fi, err := os.Lstat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
		t.Fatalf("after SIGKILL: %v, want the socket left behind", err)
	}
	for _, args := range [][]string{{"dlq", "list"}, {"wal", "status", "-json"}} {
		code, out, stderr := cliRun(t, bin, env, append(args, "-config", cfgPath)...)
		if code != 0 || !strings.Contains(stderr, "no relay answers on the control socket") || out == "" {
			t.Errorf("%v with a stale socket: exit %d, stdout %q, stderr %q; want the WAL's answer and a note", args, code, out, stderr)
		}
	}
	c2 := startChild(t, "slsrelay (second)", bin, cfgPath, env)
	c2.waitReady(t, cfg.admin(), 30*time.Second)
	if !strings.Contains(c2.stderr.String(), "removed a stale control socket") {
		t.Errorf("the second relay did not say it removed the stale socket")
	}
	checkSocketMode(t, sock)
	if code, out, stderr := cliRun(t, bin, env, "dlq", "list", "-config", cfgPath); code != 0 || stderr != "" || !strings.HasPrefix(out, "ID") {
		t.Errorf("dlq list on the restarted relay: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	// A relay that does answer keeps its socket: a start on the same
	// path (another data_dir) is refused, by the socket's lock.
	other := *cfg.Config
	other.DataDir = filepath.Join(dir, "other")
	other.Admin.ControlSocket = sock
	other.SLS.StandIn = &relay.StandInConfig{Listen: "127.0.0.1:0"}
	err := relaytest.StartError(&other)
	if err == nil || !strings.Contains(err.Error(), "another relay holds") {
		t.Errorf("a relay on the socket of a running one: %v, want refused", err)
	}
	if _, err := net.Dial("unix", sock); err != nil {
		t.Errorf("the running relay's socket after the refused start: %v", err)
	}
}

// TestE2EDLQRelayStarting: a relay that holds the WAL (New has opened it)
// but has not bound its control socket yet (Start not yet run: WAL
// recovery at start-up) makes the commands fail with a hint, not hang or
// open the WAL.
func TestE2EDLQRelayStarting(t *testing.T) {
	t.Parallel()
	cfg := e2eConfig(t)
	rl, err := relay.New(cfg, relay.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	defer rl.Close()
	cfgPath := writeConfig(t, cfg)
	for _, args := range [][]string{{"dlq", "list"}, {"dlq", "drop", "-all"}} {
		code, out, stderr := cliRun(t, "", nil, append(args, "-config", cfgPath)...)
		if code != 1 || out != "" || !strings.Contains(stderr, "is it still starting?") {
			t.Errorf("%v while the relay starts: exit %d, stdout %q, stderr %q; want 1 and a hint", args, code, out, stderr)
		}
	}
}
