package engine

import (
	"net"
	"net/netip"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestListenerDownWhenAcceptEnds: a listener whose accepts end other than
// by its own stop serves no one from then on. gnet ends its whole engine
// on the first accept that fails with anything but EAGAIN, EINTR,
// ECONNRESET or ECONNABORTED (gnet's acceptor_unix.go: accept0 returns
// ErrAcceptSocket, the main reactor exits, the engine shuts down), so one
// EMFILE under a flood of connections does it; a TLS listener stops on an
// accept error it cannot wait out. The node must then say it is not ready
// (/readyz: a load balancer takes it out), refuse connections rather than
// leave them in a backlog no one accepts from, and Close must not fail on
// the listener already gone. The accept failure is made here by shutting
// the listening socket through its descriptor in this process, as a stop
// that is not the listener's own (accept then fails with EINVAL).
func TestListenerDownWhenAcceptEnds(t *testing.T) {
	t.Parallel()
	eachListenerKind(t, func(lo ListenerOptions) {
		srv := startOneListener(t, lo)
		closed := false
		defer func() {
			if !closed {
				_ = srv.Close()
			}
		}()
		if !srv.Ready() || len(srv.StoppedListeners()) != 0 {
			t.Fatalf("%s: not ready after Start (stopped: %q)", lo.Protocol, srv.StoppedListeners())
		}
		fd := listeningFD(t, srv.Addr("L"))
		if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for srv.Ready() && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if srv.Ready() {
			t.Errorf("%s: the listener's accepts ended, and the server still says it is ready", lo.Protocol)
		}
		select {
		case name := <-srv.ListenerDown():
			if name != "L" {
				t.Errorf("%s: ListenerDown gave %q, want L", lo.Protocol, name)
			}
		case <-time.After(5 * time.Second):
			t.Errorf("%s: ListenerDown gave nothing", lo.Protocol)
		}
		if got := srv.StoppedListeners(); len(got) != 1 || got[0] != "L" {
			t.Errorf("%s: StoppedListeners = %q, want [L]", lo.Protocol, got)
		}
		if c, err := net.DialTimeout("tcp", srv.Addr("L"), time.Second); err == nil {
			c.Close()
			t.Errorf("%s: the stopped listener still takes connections", lo.Protocol)
		}
		closed = true
		if err := srv.Close(); err != nil {
			t.Errorf("%s: Close after the listener stopped by itself: %v", lo.Protocol, err)
		}
		select {
		case name := <-srv.ListenerDown():
			t.Errorf("%s: ListenerDown gave %q again after Close", lo.Protocol, name)
		default:
		}
	})
}

// listeningFD finds a descriptor of this process for the listening TCP
// socket bound to addr.
func listeningFD(t *testing.T, addr string) int {
	t.Helper()
	want, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err != nil || on != 1 {
			continue
		}
		sa, err := unix.Getsockname(fd)
		if in4, ok := sa.(*unix.SockaddrInet4); err == nil && ok &&
			netip.AddrPortFrom(netip.AddrFrom4(in4.Addr), uint16(in4.Port)) == want {
			return fd
		}
	}
	t.Fatalf("no listening socket of this process is bound to %s", addr)
	return -1
}
