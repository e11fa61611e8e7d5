package main

import (
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
)

// TestAdminPortClashStopsStartFirst: when admin.listen is taken, Start
// fails before any Kafka listener is opened: the Kafka port was never
// bound (the engine logs each listener it binds) and is free afterwards.
func TestAdminPortClashStopsStartFirst(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	kafka := freeLoopbackAddr(t)
	cfg, err := relay.ParseConfig("test.yaml", []byte("data_dir: "+filepath.Join(t.TempDir(), "data")+
		"\nlisteners: [{protocol: PLAINTEXT, bind: '"+kafka+"', project: p, access_key_id: a, access_key_secret: s}]"+
		"\nadmin: {listen: '"+busy.Addr().String()+"'}"+
		"\ncatalog: {static: {projects: {p: {l: 1}}, access_keys: {a: s}}}"+
		"\nsls: {endpoint: 'http://127.0.0.1:1'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	log := newOpsLog()
	r, err := relay.New(cfg, relay.Deps{Logger: slog.New(slog.NewTextHandler(log, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	err = r.Start()
	if err == nil || !strings.Contains(err.Error(), "admin.listen") {
		t.Fatalf("Start with admin.listen in use: %v", err)
	}
	time.Sleep(50 * time.Millisecond)
	if strings.Contains(log.String(), "msg=listening") {
		t.Fatalf("a Kafka listener was bound before the admin listener failed:\n%s", log.String())
	}
	ln, err := net.Listen("tcp", kafka)
	if err != nil {
		t.Fatalf("the Kafka port is held after the failed start: %v", err)
	}
	ln.Close()
}

// freeLoopbackAddr is a loopback address no one listens on: bound and
// released (another process could take it in between, which on a test
// host does not happen in practice).
func freeLoopbackAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
