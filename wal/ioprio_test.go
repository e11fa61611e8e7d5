package wal

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestIdleIOThread: the thread is in the idle class after the call, as
// ioprio_get(2) reads it back.
func TestIdleIOThread(t *testing.T) {
	got := make(chan uintptr, 1)
	errs := make(chan error, 1)
	go func() { // its thread ends with it
		if err := idleIOThread(); err != nil {
			errs <- err
			return
		}
		prio, _, errno := unix.Syscall(unix.SYS_IOPRIO_GET, ioprioWhoProcess, 0, 0)
		if errno != 0 {
			errs <- errno
			return
		}
		got <- prio
	}()
	select {
	case err := <-errs:
		t.Skipf("ioprio not available here: %v", err)
	case prio := <-got:
		if class := prio >> ioprioClassShift; class != ioprioClassIdle {
			t.Fatalf("I/O class %d (ioprio %#x), want %d (idle)", class, prio, ioprioClassIdle)
		}
	}
}
