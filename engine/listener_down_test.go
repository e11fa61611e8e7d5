package engine

import (
	"net"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
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
		fd := kafkatest.ListeningSocket(t, os.Getpid(), srv.Addr("L"))
		err := unix.Shutdown(fd, unix.SHUT_RD)
		unix.Close(fd)
		if err != nil {
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
