package relay_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/wal"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// TestControlSocketReplayAndDrop: dead letters of a running relay, replayed
// and dropped by id range through ControlClient: a replay is delivered by
// the running writers (the stand-in gets each replayed record once), a
// drop is gone, and requests that name nothing or carry half a key are
// refused without acting.
func TestControlSocketReplayAndDrop(t *testing.T) {
	r := relaytest.Start(t, relaytest.Config(t))
	const logstore = "test-logstore-2"
	k := wal.StreamKey{Project: relaytest.Project, Logstore: logstore, Partition: 0}
	// Dead letters 1-4, a record each, never in the stream: as delivery
	// would have moved them.
	for i := range 4 {
		data := batchtest.UncompressedRecordBatch([]batchtest.Record{{Value: []byte(fmt.Sprintf("dead-%d", i+1)), Timestamp: time.Now().UnixMilli()}}, nil)
		e := &wal.Entry{Magic: 2, Records: 1, Credential: wal.Credential{AccessKeyID: "old-akid", AccessKeySecret: "old-secret"}, Data: data}
		if _, err := r.WAL().DeadLetter(k, e, "test"); err != nil {
			t.Fatal(err)
		}
	}
	c, err := relay.DialControl(r.Config().ControlSocket())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	list, err := c.DeadLetters(ctx)
	if err != nil || len(list) != 4 || list[0].ID != 1 || list[3].Logstore != logstore || list[3].Records != 1 || list[3].Reason != "test" {
		t.Fatalf("list: %+v, %v", list, err)
	}

	refused := func(what string, err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want an error saying %q", what, err, want)
		}
	}
	none := func(uint64, int64) { t.Error("a refused request acted") }
	refused("replay of nothing", c.Replay(ctx, relay.DeadLetterSelection{}, nil, none), "no dead letters selected")
	refused("replay with half a key", c.Replay(ctx, relay.DeadLetterSelection{All: true}, &wal.Credential{AccessKeyID: "x"}, none), "access_key needs id and secret")
	refused("replay of a missing one", c.Replay(ctx, relay.DeadLetterSelection{IDs: []uint64{99}}, nil, none), "cannot replay dead letter 99")

	var replayed []uint64
	key := &wal.Credential{AccessKeyID: relaytest.AKID, AccessKeySecret: relaytest.Secret}
	if err := c.Replay(ctx, relay.DeadLetterSelection{Ranges: []relay.IDRange{{From: 2, To: 3}, {From: 10, To: 20}}}, key, func(id uint64, _ int64) {
		replayed = append(replayed, id)
	}); err != nil || fmt.Sprint(replayed) != "[2 3]" {
		t.Fatalf("replay 2-3: %v, %v", replayed, err)
	}
	var dropped []uint64
	if err := c.Drop(ctx, relay.DeadLetterSelection{IDs: []uint64{4}}, func(id uint64) { dropped = append(dropped, id) }); err != nil || fmt.Sprint(dropped) != "[4]" {
		t.Fatalf("drop 4: %v, %v", dropped, err)
	}
	// A filter alone: nothing of another stream or key.
	for _, sel := range []relay.DeadLetterSelection{{Stream: relaytest.Project + "/" + logstore + "/1"}, {AccessKeyID: "new-akid"}} {
		if err := c.Drop(ctx, sel, func(id uint64) { t.Errorf("%+v dropped %d", sel, id) }); err != nil {
			t.Fatalf("drop %+v: %v", sel, err)
		}
	}
	refused("a bad stream", c.Drop(ctx, relay.DeadLetterSelection{Stream: "nope"}, func(uint64) {}), "is not project/logstore")
	if list, err := c.DeadLetters(ctx); err != nil || len(list) != 1 || list[0].ID != 1 || list[0].AccessKeyID != "old-akid" {
		t.Fatalf("left after replay and drop: %+v, %v; want dead letter 1 of old-akid", list, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.Addrs.StandIn.LogCount(relaytest.Project, logstore) < 2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	var got []string
	for _, l := range r.Addrs.StandIn.Logs(relaytest.Project, logstore) {
		for _, kv := range l.Contents {
			got = append(got, kv.Value)
		}
	}
	if strings.Join(got, ",") != "dead-2,dead-3" {
		t.Fatalf("the stand-in holds %q, want dead-2 and dead-3 once each", got)
	}
	if strings.Contains(r.Log.String(), relaytest.Secret) {
		t.Error("the relay logged the replay key's secret")
	}
}

// TestControlSocketRaw: the protocol as control.go describes it, spoken
// over the socket with a plain HTTP client: unknown fields and paths are
// refused, and /v1/wal/status answers the table or JSON.
func TestControlSocketRaw(t *testing.T) {
	r := relaytest.Start(t, relaytest.Config(t))
	sock := r.Config().ControlSocket()
	hc := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	do := func(method, path, accept, body string) (int, string, string) {
		t.Helper()
		req, err := http.NewRequest(method, "http://relay"+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
	}
	f := func(method, path, accept, body string, wantCode int, wantType, wantBody string) {
		t.Helper()
		code, ct, b := do(method, path, accept, body)
		if code != wantCode || !strings.HasPrefix(ct, wantType) || !strings.Contains(b, wantBody) {
			t.Errorf("%s %s: %d %s %q; want %d %s %q", method, path, code, ct, b, wantCode, wantType, wantBody)
		}
	}
	f("GET", "/v1/wal/status", "", "", 200, "text/plain", "STREAM")
	f("GET", "/v1/wal/status", "text/html, application/json;q=0.9", "", 200, "application/json", `"streams"`)
	f("GET", "/v1/dead-letters", "", "", 200, "application/json", "[]")
	f("POST", "/v1/dead-letters/replay", "", `{"select":{"all":true},"colour":1}`, 400, "application/json", "unknown field")
	f("POST", "/v1/dead-letters/drop", "", `{"select":{"all":true},"access_key":{"id":"a","secret":"s3cr3t"}}`, 400, "application/json", "replay only")
	f("POST", "/v1/dead-letters/drop", "", `{"select":{"all":true}}`, 200, "application/x-ndjson", `{"done":true}`)
	f("DELETE", "/v1/dead-letters", "", "", 405, "", "")
	f("GET", "/v1/nothing", "", "", 404, "", "")
	// The body of a refused key names no secret.
	if _, _, b := do("POST", "/v1/dead-letters/drop", "", `{"select":{"all":true},"access_key":{"id":"a","secret":"s3cr3t"}}`); strings.Contains(b, "s3cr3t") {
		t.Errorf("the answer echoes the secret: %s", b)
	}
}

// TestAdminWALStatusJSON: the admin listener's /wal/status answers the
// table, and JSON (WALStatus) to Accept: application/json.
func TestAdminWALStatusJSON(t *testing.T) {
	r := relaytest.Start(t, relaytest.Config(t))
	get := func(accept string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+r.Addrs.Admin+"/wal/status", nil)
		if accept != "" {
			req.Header.Set("Accept", accept)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.Header.Get("Content-Type"), string(b)
	}
	if ct, b := get(""); !strings.HasPrefix(ct, "text/plain") || !strings.HasPrefix(b, "STREAM") {
		t.Errorf("no Accept: %s %q, want the table", ct, b)
	}
	ct, b := get("application/json")
	var st relay.WALStatus
	dec := json.NewDecoder(strings.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); ct != "application/json" || err != nil || st.Streams == nil {
		t.Errorf("Accept: application/json: %s %q (%v), want WALStatus", ct, b, err)
	}
}

// TestDialControl: no socket, and a socket nobody answers on (a relay
// that crashed), are told apart from a relay that answers.
func TestDialControl(t *testing.T) {
	dir := t.TempDir()
	if _, err := relay.DialControl(dir + "/none.sock"); !errors.Is(err, relay.ErrNoRelay) {
		t.Errorf("no socket: %v, want ErrNoRelay", err)
	}
	stale := dir + "/stale.sock"
	ln, err := net.Listen("unix", stale)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	if _, err := relay.DialControl(stale); !errors.Is(err, relay.ErrStaleSocket) {
		t.Errorf("stale socket: %v, want ErrStaleSocket", err)
	}
}

// TestControlSocketPathTooLong: a data_dir too deep for the default
// socket path leaves the relay without one (it says so); a control_socket
// set too long stops start-up.
func TestControlSocketPathTooLong(t *testing.T) {
	cfg := relaytest.Config(t)
	cfg.DataDir = filepath.Join(cfg.DataDir, strings.Repeat("d", 110))
	r := relaytest.Start(t, cfg)
	if !strings.Contains(r.Log.String(), "no control socket") {
		t.Errorf("deep data_dir: the relay did not say it has no control socket:\n%s", r.Log.String())
	}
	if _, err := relay.DialControl(cfg.ControlSocket()); !errors.Is(err, relay.ErrNoRelay) {
		t.Errorf("DialControl of the too long path: %v, want ErrNoRelay", err)
	}
	r.Close()
	cfg.Admin.ControlSocket = cfg.ControlSocket()
	err := relaytest.StartError(cfg)
	if err == nil || !strings.Contains(err.Error(), "longer than a Unix socket path may be") {
		t.Errorf("a control_socket set too long: %v, want start-up refused", err)
	}
}

// TestControlSocketSharedPath: a second relay (its own data_dir) set to
// the control socket a running relay serves does not start and leaves the
// first one's socket in place; once the first stops, it starts on it.
func TestControlSocketSharedPath(t *testing.T) {
	shared := filepath.Join(t.TempDir(), "control.sock")
	cfgA := relaytest.Config(t)
	cfgA.Admin.ControlSocket = shared
	a := relaytest.Start(t, cfgA)

	cfgB := relaytest.Config(t)
	cfgB.Admin.ControlSocket = shared
	err := relaytest.StartError(cfgB)
	if err == nil || !strings.Contains(err.Error(), "another relay holds") {
		t.Fatalf("second relay on a served control socket: %v, want start-up refused", err)
	}
	c, err := relay.DialControl(shared)
	if err != nil {
		t.Fatalf("the first relay's socket after the second tried: %v", err)
	}
	if _, err := c.DeadLetters(context.Background()); err != nil {
		t.Fatalf("the first relay no longer answers on its socket: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	relaytest.Start(t, cfgB)
	if _, err := relay.DialControl(shared); err != nil {
		t.Fatalf("the second relay's socket: %v", err)
	}
}
