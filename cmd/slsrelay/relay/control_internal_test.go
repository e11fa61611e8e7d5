package relay

import (
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
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
