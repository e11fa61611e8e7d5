package main

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slsrelay/slsrelay/wal"
)

func TestCheckConfigCommand(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.yaml")
	bad := filepath.Join(dir, "bad.yaml")
	local, err := os.ReadFile("../../configs/local.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(good, local, 0o644); err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(local), "protocol: SASL_SSL", "protocol: SASL_SSL\n    colour: blue", 1)
	if err := os.WriteFile(bad, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	f := func(args []string, wantCode int, wantOut, wantErr string) {
		t.Helper()
		var out, errOut bytes.Buffer
		handled, code := runAdmin(args, &out, &errOut)
		if !handled || code != wantCode || !strings.Contains(out.String(), wantOut) || !strings.Contains(errOut.String(), wantErr) {
			t.Fatalf("%v: handled %v, code %d, stdout %q, stderr %q; want code %d, %q, %q", args, handled, code, out.String(), errOut.String(), wantCode, wantOut, wantErr)
		}
	}
	f([]string{"check-config", good}, 0, "ok", "")
	f([]string{"check-config", bad}, 1, "", "listeners[1].colour: unknown key")
	f([]string{"check-config"}, 2, "", "usage")
	f([]string{"wal"}, 2, "", "usage: slsrelay wal status")
	f([]string{"version"}, 0, "slsrelay", "")
	if handled, _ := runAdmin([]string{"-config", good}, nil, nil); handled {
		t.Fatal("flags were taken for a subcommand")
	}
}

func TestWALStatusCommand(t *testing.T) {
	cfgPath := walWithBacklog(t)
	var out bytes.Buffer
	if err := writeWALStatus(cfgPath, false, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"STREAM", "proj/store/3  10    0          2", "disk:", "in 1 data files; pending 2 entries"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("output %q lacks %q", out.String(), want)
		}
	}
}

// TestAdminURL: where `wal status` reaches an admin listener bound to
// listen.
func TestAdminURL(t *testing.T) {
	f := func(listen, want string) {
		t.Helper()
		if got := adminURL(listen); got != want {
			t.Fatalf("adminURL(%q) = %q, want %q", listen, got, want)
		}
	}
	f("127.0.0.1:9190", "http://127.0.0.1:9190")
	f("0.0.0.0:9190", "http://127.0.0.1:9190")
	f(":9190", "http://127.0.0.1:9190")
	f("[::]:9190", "http://127.0.0.1:9190")
	f("10.0.0.5:9190", "http://10.0.0.5:9190")
	f("relay-0.relay:9190", "http://relay-0.relay:9190")
	f("[fe80::1%eth0]:9190", "http://[fe80::1%25eth0]:9190")
}

// walWithBacklog writes a config with its data_dir in a temporary directory
// and a backlog of two entries (5 records, 1000 bytes each) in stream
// proj/store/3, written the way the relay would open the WAL; it returns
// the config's path.
func walWithBacklog(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "relay.yaml")
	cfg := "data_dir: " + dir + "\nlisteners: [{protocol: PLAINTEXT, bind: '127.0.0.1:0'}]\nsls: {endpoint: x}\n"
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := openWALOffline(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	k := wal.StreamKey{Project: "proj", Logstore: "store", Partition: 3}
	for range 2 {
		e := &wal.Entry{Magic: 2, Records: 5, Credential: wal.Credential{AccessKeyID: "id", AccessKeySecret: "secret"}, Data: make([]byte, 1000)}
		if _, err := w.AppendWait(k, e, true); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return cfgPath
}
