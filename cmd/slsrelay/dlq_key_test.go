package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// `dlq replay -key-env/-key-file` gives the replayed entries another
// AccessKey, read from the environment, a file or stdin (-key-file -), and never prints its
// secret.
func TestDLQReplayWithAnotherKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "slsrelay.yaml")
	cfg := "data_dir: " + dir + "\nlisteners: [{protocol: PLAINTEXT, bind: '127.0.0.1:1'}]\nsls: {endpoint: cn-hangzhou.log.aliyuncs.com}\n"
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	old := wal.Credential{AccessKeyID: "read-only-akid", AccessKeySecret: "read-only-secret"}
	k := wal.StreamKey{Project: "p", Logstore: "ls", Partition: 0}
	// takeAll reads the stream's n pending entries and commits past them.
	// (An append is answered once synced and readable once indexed, just
	// after: one Read may return fewer.)
	takeAll := func(w *wal.WAL, n int) []*wal.Entry {
		t.Helper()
		r, err := w.Reader(k)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
		defer cancel()
		var es []*wal.Entry
		for len(es) < n {
			more, err := r.Read(ctx, 1<<20, 100)
			if err != nil {
				t.Fatalf("read %d of %d entries: %v", len(es), n, err)
			}
			es = append(es, more...)
		}
		if err := r.Commit(es[len(es)-1].BaseOffset + 1); err != nil {
			t.Fatal(err)
		}
		return es
	}
	deadLetters := func(n int) {
		t.Helper()
		w, err := openWALOffline(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		for i := 0; i < n; i++ {
			data := batchtest.UncompressedRecordBatch([]batchtest.Record{{Value: []byte("v"), Timestamp: time.Now().UnixMilli()}}, nil)
			done := make(chan error, 1)
			w.Append(k, &wal.Entry{Magic: 2, Records: 1, Credential: old, Data: data}, true, func(_ int64, err error) { done <- err })
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		}
		for _, e := range takeAll(w, n) {
			if _, err := w.DeadLetter(k, e, "SLS answered 401 Unauthorized: denied by sts or ram, action: log:PostLogStoreLogs"); err != nil {
				t.Fatal(err)
			}
		}
	}
	replayedKeys := func() []string {
		t.Helper()
		w, err := openWALOffline(path)
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		var keys []string
		for _, e := range takeAll(w, 2) {
			keys = append(keys, e.Credential.AccessKeyID+"#"+e.Credential.AccessKeySecret)
		}
		return keys
	}
	const secret = "writer-secret-do-not-print"
	t.Setenv("SLSRELAY_REPLAY_KEY", "writer-akid#"+secret)
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, []byte("file-akid#"+secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(stdin string, args []string, wantKey string) {
		t.Helper()
		deadLetters(2)
		var outb, errb bytes.Buffer
		code := runCLI(append([]string{"dlq", "replay", "-config", path}, args...), strings.NewReader(stdin), &outb, &errb)
		out, stderr := outb.String(), errb.String()
		if code != 0 || strings.Count(out, "with AccessKey "+strings.Split(wantKey, "#")[0]) != 2 {
			t.Fatalf("dlq replay %v: exit %d, stdout %q, stderr %q", args, code, out, stderr)
		}
		if strings.Contains(out+stderr, secret) {
			t.Fatalf("the secret was printed: %q %q", out, stderr)
		}
		if got := replayedKeys(); len(got) != 2 || got[0] != wantKey || got[1] != wantKey {
			t.Fatalf("replayed entries carry %v, want %s", got, wantKey)
		}
	}
	f("", []string{"-key-env", "SLSRELAY_REPLAY_KEY", "-all"}, "writer-akid#"+secret)
	f("", []string{"-key-file", keyFile, "-all"}, "file-akid#"+secret)
	f("stdin-akid#"+secret+"\n", []string{"-key-file", "-", "-all"}, "stdin-akid#"+secret)

	fails := func(wantErr string, args ...string) {
		t.Helper()
		code, out, stderr := dlq(args...)
		if code != 1 || !strings.Contains(stderr, wantErr) || strings.Contains(out+stderr, secret) {
			t.Errorf("dlq %v: exit %d, stderr %q; want 1 and %q, without the secret", args, code, stderr, wantErr)
		}
	}
	t.Setenv("SLSRELAY_BAD_KEY", secret)
	fails("is not set", "replay", "-config", path, "-key-env", "SLSRELAY_UNSET_KEY", "-all")
	fails("does not hold one AKID#AKSECRET", "replay", "-config", path, "-key-env", "SLSRELAY_BAD_KEY", "-all")
	fails("not both", "replay", "-config", path, "-key-env", "SLSRELAY_REPLAY_KEY", "-key-file", keyFile, "-all")
	fails("replay only", "list", "-config", path, "-key-env", "SLSRELAY_REPLAY_KEY")
}
