package wal

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// The file syncer covers what DB.Sync misses: files that stopped being
// current since the previous sync, and everything when DB.Sync hit a
// mapping being remapped (ENOMEM). Other DB.Sync errors are reported.
func TestFileSyncer(t *testing.T) {
	dir := t.TempDir()
	touch := func(names ...string) {
		for _, n := range names {
			if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	touch("000001.vlog", "00001.mem", "MANIFEST")
	f := newFileSyncer(dir)
	defer f.close()
	ok := func() error { return nil }
	if err := f.sync(ok); err != nil {
		t.Fatal(err)
	}
	if len(f.files) != 0 {
		t.Fatalf("nothing rotated, yet %d files were synced by hand", len(f.files))
	}
	touch("000002.vlog", "00002.mem") // both rotated
	if err := f.sync(ok); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"000001.vlog", "00001.mem"} {
		if _, synced := f.files[n]; !synced {
			t.Errorf("%s stopped being current and was not synced", n)
		}
	}
	if _, synced := f.files["000002.vlog"]; synced {
		t.Error("the current value log was synced twice")
	}
	if err := f.sync(func() error { return unix.ENOMEM }); err != nil {
		t.Fatalf("ENOMEM from DB.Sync: %v, want a fallback to fdatasync", err)
	}
	if _, synced := f.files["000002.vlog"]; !synced {
		t.Error("after ENOMEM the current value log was not synced by hand")
	}
	if err := f.sync(func() error { return unix.EIO }); !errors.Is(err, unix.EIO) {
		t.Fatalf("EIO from DB.Sync: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "000001.vlog")); err != nil {
		t.Fatal(err)
	}
	if err := f.sync(ok); err != nil {
		t.Fatal(err)
	}
	if _, open := f.files["000001.vlog"]; open {
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
