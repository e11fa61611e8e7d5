package relay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// removeStaleSocket makes way only for a socket nobody answers on.
func TestRemoveStaleSocket(t *testing.T) {
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	listen := func(name string, keep bool) string {
		t.Helper()
		path := filepath.Join(dir, name)
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		if keep {
			t.Cleanup(func() { ln.Close() })
			return path
		}
		ln.(*net.UnixListener).SetUnlinkOnClose(false)
		ln.Close()
		return path
	}
	regular := filepath.Join(dir, "regular")
	if err := os.WriteFile(regular, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	f := func(path, wantErr string, wantGone bool) {
		t.Helper()
		err := removeStaleSocket(path, log)
		switch {
		case wantErr == "" && err != nil, wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%s: %v, want error %q", filepath.Base(path), err, wantErr)
		}
		if _, err := os.Lstat(path); os.IsNotExist(err) != wantGone {
			t.Errorf("%s: removed %v, want %v", filepath.Base(path), !wantGone, wantGone)
		}
	}
	f(filepath.Join(dir, "none"), "", true)
	f(listen("stale", false), "", true)
	f(listen("live", true), "a process answers on", false)
	f(regular, "is not a socket", false)
}

func TestParseDeadLetterSelection(t *testing.T) {
	f := func(args []string, all bool, want DeadLetterSelection, wantErr string) {
		t.Helper()
		got, err := ParseDeadLetterSelection(args, all)
		switch {
		case wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)):
			t.Errorf("%q: %v, want error %q", args, err, wantErr)
		case wantErr == "" && (err != nil || !equalSelection(got, want)):
			t.Errorf("%q: %+v, %v; want %+v", args, got, err, want)
		}
	}
	f(nil, false, DeadLetterSelection{}, "")
	f(nil, true, DeadLetterSelection{All: true}, "")
	f([]string{"3", "7-9", "12-12"}, false, DeadLetterSelection{IDs: []uint64{3}, Ranges: []IDRange{{7, 9}, {12, 12}}}, "")
	f([]string{"x"}, false, DeadLetterSelection{}, `dead letter id "x" is not a number`)
	f([]string{"9-7"}, false, DeadLetterSelection{}, `range "9-7"`)
	f([]string{"7-"}, false, DeadLetterSelection{}, `range "7-"`)
	f([]string{"-7"}, false, DeadLetterSelection{}, `not a number`)
}

func equalSelection(a, b DeadLetterSelection) bool {
	return a.All == b.All && slices.Equal(a.IDs, b.IDs) && slices.Equal(a.Ranges, b.Ranges)
}

// peerListener hands out the connections of the users it allows and
// closes the others (SO_PEERCRED names this process's user).
func TestPeerListener(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("SO_PEERCRED")
	}
	f := func(allow func(int) bool, wantServed bool) {
		t.Helper()
		path := filepath.Join(t.TempDir(), "s.sock")
		ln, err := net.Listen("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		var logs strings.Builder
		pl := &peerListener{Listener: ln, log: slog.New(slog.NewTextHandler(&logs, nil)), allow: allow}
		served := make(chan bool, 1)
		go func() {
			c, err := pl.Accept()
			if err == nil {
				c.Close()
			}
			served <- err == nil
		}()
		c, err := net.Dial("unix", path)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(2 * time.Second))
		// A refused connection is closed by the listener: the read ends.
		_, rerr := c.Read(make([]byte, 1))
		if wantServed {
			if got := <-served; !got {
				t.Error("the allowed user's connection was not handed out")
			}
			return
		}
		ln.Close() // ends the Accept loop
		if got := <-served; got || rerr == nil || errors.Is(rerr, os.ErrDeadlineExceeded) || !strings.Contains(logs.String(), fmt.Sprintf("peer_uid=%d", os.Getuid())) {
			t.Errorf("a refused user: served %v, read %v, log %q; want the connection closed and logged", got, rerr, logs.String())
		}
	}
	f(func(uid int) bool { return uid == os.Getuid() }, true)
	f(func(int) bool { return false }, false)
}

// A selection's filters narrow its ids and ranges, or alone select what
// they match; Check refuses a stream that is not project/logstore[/n].
func TestDeadLetterSelectionMatches(t *testing.T) {
	d := DeadLetterInfo{ID: 7, Project: "p", Logstore: "ls", Partition: 2, AccessKeyID: "ak"}
	f := func(sel DeadLetterSelection, want bool) {
		t.Helper()
		if err := sel.Check(); err != nil {
			t.Fatalf("%+v: %v", sel, err)
		}
		if got := sel.Matches(d); got != want {
			t.Errorf("%+v matches %v, want %v", sel, got, want)
		}
	}
	f(DeadLetterSelection{}, true)
	f(DeadLetterSelection{IDs: []uint64{7}}, true)
	f(DeadLetterSelection{IDs: []uint64{8}}, false)
	f(DeadLetterSelection{Ranges: []IDRange{{1, 6}, {7, 7}}}, true)
	f(DeadLetterSelection{Ranges: []IDRange{{8, 9}}}, false)
	f(DeadLetterSelection{Stream: "p/ls"}, true)
	f(DeadLetterSelection{Stream: "p/ls/2"}, true)
	f(DeadLetterSelection{Stream: "p/ls/1"}, false)
	f(DeadLetterSelection{Stream: "p/ls/002"}, true)
	f(DeadLetterSelection{Stream: "p/ls/01"}, false)
	f(DeadLetterSelection{Stream: "p/other"}, false)
	f(DeadLetterSelection{AccessKeyID: "ak"}, true)
	f(DeadLetterSelection{AccessKeyID: "other"}, false)
	f(DeadLetterSelection{All: true, Stream: "p/ls", AccessKeyID: "ak"}, true)
	f(DeadLetterSelection{IDs: []uint64{7}, AccessKeyID: "other"}, false)
	f(DeadLetterSelection{Ranges: []IDRange{{8, 9}}, Stream: "p/ls"}, false)
	for _, bad := range []string{"p", "p/", "/ls", "p/ls/x", "p/ls/1/2", "p/ls/-1", "p/ls/+2", "p/ls/2147483648"} {
		if err := (DeadLetterSelection{Stream: bad}).Check(); err == nil {
			t.Errorf("stream %q was taken", bad)
		}
	}
}

// The control socket's lock: one holder at a time, free again once
// released, and a lock file left behind (a crash) is no obstacle.
func TestLockControlSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "control.sock")
	first, err := lockControlSocket(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lockControlSocket(path); err == nil || !strings.Contains(err.Error(), "another relay holds") {
		t.Fatalf("second lock while held: %v, want refused", err)
	}
	if err := first.release(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path + ".lock"); err != nil {
		t.Fatalf("the lock file: %v", err)
	}
	again, err := lockControlSocket(path)
	if err != nil {
		t.Fatalf("lock after release (file left behind): %v", err)
	}
	again.release()
}
