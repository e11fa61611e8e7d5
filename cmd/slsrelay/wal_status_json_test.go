package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
)

// TestWALStatusJSON: `wal status -json` on a stopped relay's WAL parses
// and carries the backlog that was written.
func TestWALStatusJSON(t *testing.T) {
	cfgPath := walWithBacklog(t)
	var out, errOut bytes.Buffer
	if code := runCLI([]string{"wal", "status", "-json", "-config", cfgPath}, nil, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var st relay.WALStatus
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out.String())
	}
	want := relay.WALStreamStatus{Project: "proj", Logstore: "store", Partition: 3, NextOffset: 10, PendingEntries: 2}
	if len(st.Streams) != 1 || st.PendingEntries != 2 || st.DiskBytes <= 0 || st.DataFiles != 1 {
		t.Fatalf("status %+v", st)
	}
	got := st.Streams[0]
	got.PendingBytes, got.OldestPendingSeconds = 0, 0
	if got != want || st.Streams[0].PendingBytes <= 0 || st.Streams[0].OldestPendingSeconds < 0 {
		t.Fatalf("stream %+v, want %+v with pending bytes", st.Streams[0], want)
	}
	if strings.Contains(out.String(), "secret") {
		t.Fatal("the status holds the entries' secret")
	}
}

// TestLiveWALStatusJSON: with the relay running, -json asks its admin
// listener for JSON and takes nothing else; the table is taken as it is.
func TestLiveWALStatusJSON(t *testing.T) {
	f := func(contentType, body string, asJSON bool, wantErr string) {
		t.Helper()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/wal/status" {
				http.NotFound(w, r)
				return
			}
			if asJSON != (r.Header.Get("Accept") == "application/json") {
				http.Error(w, "Accept: "+r.Header.Get("Accept"), http.StatusBadRequest)
				return
			}
			w.Header().Set("Content-Type", contentType)
			w.Write([]byte(body))
		}))
		defer srv.Close()
		cfg := &relay.Config{Admin: relay.AdminConfig{Listen: strings.TrimPrefix(srv.URL, "http://")}}
		got, err := liveWALStatus(cfg, asJSON)
		switch {
		case wantErr == "" && (err != nil || got != body):
			t.Errorf("%s as JSON %v: %q, %v; want %q", contentType, asJSON, got, err, body)
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s as JSON %v: %q, %v; want error %q", contentType, asJSON, got, err, wantErr)
		}
	}
	f("text/plain; charset=utf-8", "STREAM ...\n", false, "")
	f("application/json", `{"streams":[]}`, true, "")
	f("application/json; charset=utf-8", `{"streams":[]}`, true, "")
	f("text/plain; charset=utf-8", "STREAM ...\n", true, "not JSON")
}
