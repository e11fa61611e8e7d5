package main

import (
	"errors"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOpsListenerDownRestarts: a Kafka listener whose accepts end other
// than by the relay's own stop (gnet ends its engine on an accept error
// such as EMFILE) cannot come back in the same process. The daemon then
// answers /healthz 503 naming it (a liveness probe restarts the pod),
// drains and exits 1 (systemd's Restart=on-failure restarts it). The
// failure is made from outside, as in engine's
// TestListenerDownWhenAcceptEnds: the test takes a copy of the child's
// listening socket (pidfd_getfd; the child is this process's own) and
// shuts it, so the child's accept fails with EINVAL.
func TestOpsListenerDownRestarts(t *testing.T) {
	t.Parallel()
	bin := slsrelayBinary(t)
	dir := t.TempDir()
	ca := selfSigned(t, filepath.Join(dir, "tls"))
	cfg := newChildConfig(t, dir, ca.Cert, ca.Key)
	cfg.Limits.DrainLinger = 2 * time.Second
	cfgPath := filepath.Join(dir, "slsrelay.yaml")
	cfg.write(t, cfgPath)
	c := startChild(t, "slsrelay", bin, cfgPath, childEnv())
	c.waitReady(t, cfg.admin(), 30*time.Second)
	if code, body, err := httpGet(cfg.admin(), "/healthz"); err != nil || code != http.StatusOK {
		t.Fatalf("/healthz before: %d %q %v, want 200", code, body, err)
	}

	fd := childListeningFD(t, c.cmd.Process.Pid, cfg.plain())
	if err := unix.Shutdown(fd, unix.SHUT_RD); err != nil {
		t.Fatalf("shutdown of the child's listening socket: %v", err)
	}
	unix.Close(fd)

	// During the drain's linger the admin listener still answers.
	var code int
	var body string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		var err error
		if code, body, err = httpGet(cfg.admin(), "/healthz"); err == nil && code != http.StatusOK {
			break
		}
	}
	name := cfg.Listeners[0].Name
	if code != http.StatusServiceUnavailable || !strings.Contains(body, name) {
		t.Errorf("/healthz after the listener stopped: %d %q, want 503 naming %q", code, body, name)
	}
	exit, ok := c.exited(30 * time.Second)
	if !ok {
		c.quit()
		t.Fatal("the relay still runs 30 s after its listener stopped")
	}
	if exit != 1 {
		t.Errorf("exit code %d, want 1 (a failure, for Restart=on-failure)", exit)
	}
	if len(c.stderr.lines("a Kafka listener stopped accepting connections", "listener="+name)) == 0 {
		t.Errorf("no log line names the stopped listener")
	}
}

// childListeningFD returns a descriptor of this process for the listening
// TCP socket bound to addr in process pid (pidfd_getfd, Linux 5.6).
func childListeningFD(t *testing.T, pid int, addr string) int {
	t.Helper()
	want, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Skipf("pidfd_open: %v", err)
	}
	defer unix.Close(pidfd)
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		target, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		fd, err := unix.PidfdGetfd(pidfd, target, 0)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS) {
			// A seccomp profile or a ptrace policy that forbids it.
			t.Skipf("pidfd_getfd on the child: %v", err)
		}
		if err != nil {
			continue
		}
		if on, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN); err == nil && on == 1 {
			if sa, err := unix.Getsockname(fd); err == nil {
				if in, ok := sa.(*unix.SockaddrInet4); ok && netip.AddrPortFrom(netip.AddrFrom4(in.Addr), uint16(in.Port)) == want {
					return fd
				}
			}
		}
		unix.Close(fd)
	}
	t.Fatalf("no listening socket on %s in process %d", addr, pid)
	return -1
}
