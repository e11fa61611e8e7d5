package wal

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// The ioprio_set(2) values (linux/ioprio.h): the class sits above
// ioprioClassShift bits of level; who = 0 with IOPRIO_WHO_PROCESS is the
// calling thread.
const (
	ioprioWhoProcess = 1
	ioprioClassIdle  = 3
	ioprioClassShift = 13
)

// idleIOThread locks the calling goroutine to its thread for good (the
// thread ends with the goroutine) and gives the thread the idle I/O
// class: the block layer's schedulers that honour it (mq-deadline, bfq)
// serve its requests only when no other class waits, so the spare's
// zeros go behind the group commits' writes. mq-deadline still serves
// an idle request once it has waited prio_aging_expire (10 s by default),
// so a busy disk delays a spare (the next file then starts empty) but
// never starves it, and Close waits at most that long for the chunk in
// flight. Best effort: where the class is not honoured, or cannot be
// set, nothing changes.
func idleIOThread() error {
	runtime.LockOSThread()
	_, _, errno := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, ioprioClassIdle<<ioprioClassShift)
	if errno != 0 {
		return errno
	}
	return nil
}
