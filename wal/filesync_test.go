package wal

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// The file syncer fdatasyncs every badger log since the previous sync —
// the ones badger left and the active ones — oldest first, value logs
// before memtable logs, then runs DB.Sync, whose ENOMEM (a mapping being
// remapped) is no error; its other errors are reported.
func TestFileSyncer(t *testing.T) {
	dir := t.TempDir()
	touch := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	var synced []string
	hooks := &atomic.Pointer[faultHooks]{}
	hooks.Store(&faultHooks{badgerFileSynced: func(n string) { synced = append(synced, n) }})
	f := newFileSyncer(dir)
	f.faults = hooks
	defer f.close()
	expect := func(dbSync func() error, want ...string) {
		t.Helper()
		synced = nil
		if err := f.sync(dbSync); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(synced, want) {
			t.Errorf("fdatasynced %v, want %v", synced, want)
		}
	}
	ok := func() error { return nil }
	touch("000001.vlog", "00001.mem", "MANIFEST")
	expect(ok, "000001.vlog", "00001.mem")
	touch("000002.vlog", "00002.mem", "00003.mem") // rotated
	expect(ok, "000001.vlog", "000002.vlog", "00001.mem", "00002.mem", "00003.mem")
	expect(ok, "000002.vlog", "00003.mem") // the active ones only
	expect(func() error { return unix.ENOMEM }, "000002.vlog", "00003.mem")
	if err := f.sync(func() error { return unix.EIO }); !errors.Is(err, unix.EIO) {
		t.Fatalf("EIO from DB.Sync: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "000002.vlog")); err != nil {
		t.Fatal(err)
	}
	touch("000003.vlog")
	expect(ok, "000003.vlog", "00003.mem")
	if _, open := f.files["000002.vlog"]; open {
		t.Error("a deleted file's descriptor is kept")
	}
}

// A write that starts a new memtable just before DB.Sync: DB.Sync syncs
// the new log, so the one it left must be fdatasynced by the syncer,
// although it was the newest when the sync was asked for
// (TestPowerLossMemtableRotatedDuringSync shows the entry lost otherwise).
func TestFileSyncerLogStartedBeforeDBSync(t *testing.T) {
	dir := t.TempDir()
	touch := func(n string) {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	touch("000001.vlog")
	touch("00001.mem")
	f := newFileSyncer(dir)
	defer f.close()
	if err := f.sync(func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := f.sync(func() error { touch("00002.mem"); return nil }); err != nil {
		t.Fatal(err)
	}
	if _, synced := f.files["00001.mem"]; !synced {
		t.Error("the memtable log left just before DB.Sync was not fdatasynced")
	}
}
