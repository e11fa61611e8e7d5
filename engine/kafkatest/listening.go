package kafkatest

import (
	"errors"
	"net/netip"
	"os"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"
)

// ListeningSocket returns a descriptor, of this process and the caller's to
// close, for the listening TCP socket bound to addr in process pid (this
// process or a child of it). Tests that must make a listener's accepts fail
// from outside the listener shut it through this descriptor
// (shutdown(2) acts on the socket, whoever holds it). Another process's
// descriptor is copied with pidfd_getfd (Linux 5.6); where a seccomp
// profile or a ptrace policy forbids that, the test is skipped, saying why.
func ListeningSocket(t testing.TB, pid int, addr string) int {
	t.Helper()
	want, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	self := pid == os.Getpid()
	pidfd := -1
	if !self {
		if pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
			t.Skipf("pidfd_open: %v", err)
		}
		defer unix.Close(pidfd)
	}
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		var fd int
		if self {
			fd, err = unix.Dup(target)
		} else {
			fd, err = unix.PidfdGetfd(pidfd, target, 0)
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
				t.Skipf("pidfd_getfd on process %d: %v", pid, err)
			}
		}
		if err != nil {
			continue // closed meanwhile
		}
		if isListeningOn(fd, want) {
			return fd
		}
		unix.Close(fd)
	}
	t.Fatalf("no listening socket of process %d is bound to %s", pid, addr)
	return -1
}

// isListeningOn reports whether fd is a listening IPv4 TCP socket bound to
// want.
func isListeningOn(fd int, want netip.AddrPort) bool {
	if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
		return false
	}
	sa, err := unix.Getsockname(fd)
	in4, ok := sa.(*unix.SockaddrInet4)
	return err == nil && ok && netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)) == want
}
