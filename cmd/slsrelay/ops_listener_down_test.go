package main

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// TestOpsListenerDownRestarts: a Kafka listener whose accepts end other
// than by the relay's own stop (gnet ends its engine on an accept error
// such as EMFILE) cannot come back in the same process. The daemon then
// answers /healthz 503 naming it (a liveness probe restarts the pod),
// drains and exits 1 (systemd's Restart=on-failure restarts it). The
// failure is made from outside, as in engine's
// TestListenerDownWhenAcceptEnds: the test takes a copy of the child's
// listening socket (pidfd_getfd; the child is this process's own) and
// shuts it, so the child's accept fails with EINVAL (kafkatest.ListeningSocket).
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

	fd := kafkatest.ListeningSocket(t, c.cmd.Process.Pid, cfg.plain())
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
