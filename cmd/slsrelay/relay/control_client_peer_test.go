package relay

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
)

// strangerSocketEnv makes TestControlStrangerHelper serve a control
// socket at its path.
const strangerSocketEnv = "SLSRELAY_TEST_STRANGER_SOCKET"

// TestDialControlRefusesStranger: a control socket in a directory others
// may write in, bound by another user (not root, not the directory's
// owner), is not taken for the relay: a replay's AccessKey secret would go
// to that user. The same directory's socket of this user is.
func TestDialControlRefusesStranger(t *testing.T) {
	if runtime.GOOS != "linux" || os.Getuid() != 0 {
		t.Skip("needs Linux and root, to run a listener as another user")
	}
	// A /tmp-like directory: root's, writable by all, sticky.
	dir, err := os.MkdirTemp("", "slsrelay-stranger-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o1777); err != nil {
		t.Fatal(err)
	}
	// This test binary, where the other user may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "helper")
	b, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, b, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "control.sock")
	cmd := exec.Command(bin, "-test.run=^TestControlStrangerHelper$")
	cmd.Env = append(os.Environ(), strangerSocketEnv+"="+path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if sc.Text() == "stranger ready" {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the helper ended before it listened")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the helper did not listen within 30 s")
	}
	if _, err := DialControl(path); err == nil || !strings.Contains(err.Error(), "uid 65534") {
		t.Fatalf("DialControl on another user's socket: %v, want a refusal naming uid 65534", err)
	}

	// This user's socket in the same directory is the relay's.
	own := filepath.Join(dir, "own.sock")
	ln, err := net.Listen("unix", own)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if _, err := DialControl(own); err != nil {
		t.Fatalf("DialControl on this user's socket: %v", err)
	}
}

// TestControlStrangerHelper is the other user's process of
// TestDialControlRefusesStranger: it serves a control socket that answers
// everything until its stdin closes.
func TestControlStrangerHelper(t *testing.T) {
	path := os.Getenv(strangerSocketEnv)
	if path == "" {
		t.Skip("run by TestDialControlRefusesStranger")
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(path, 0o777)
	go http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "[]") }))
	os.Stdout.WriteString("stranger ready\n")
	_, _ = io.Copy(io.Discard, os.Stdin)
	ln.Close()
}
