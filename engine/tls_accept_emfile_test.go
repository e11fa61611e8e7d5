package engine

import (
	"crypto/tls"
	"errors"
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"
)

// emfileAloneEnv runs TestTLSListenerSurvivesEMFILE's body in the process
// it is set in.
const emfileAloneEnv = "ENGINE_TEST_EMFILE_ALONE"

// TestTLSListenerSurvivesEMFILE: an accept that fails for want of a file
// descriptor (EMFILE, the process's limit on open files, under a flood of
// connections) must not end a TLS listener. Its accept loop returned on
// any error, leaving the socket listening with no one accepting: every
// connection after it completed the kernel's handshake, sat in the backlog
// and waited out its client's timeout, for as long as the process lived.
// Here a connection is made while the limit is one descriptor short of
// accepting it; once the limit is back, its TLS handshake must complete.
// The body runs in a process of its own: a lowered limit hits every test
// running beside it.
func TestTLSListenerSurvivesEMFILE(t *testing.T) {
	if os.Getenv(emfileAloneEnv) == "" {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTLSListenerSurvivesEMFILE$", "-test.v")
		cmd.Env = append(os.Environ(), emfileAloneEnv+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v:\n%s", err, out)
		}
		return
	}
	_, serverTLS := selfSignedTLS(t)
	srv, err := New(Options{Listeners: []ListenerOptions{{Name: "L", Bind: "127.0.0.1:0", Protocol: SASLSSL, TLS: serverTLS}},
		EventLoops: 1, Logger: testLogger()}, testCatalog(), &MemoryAppender{})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	addr := srv.Addr("L")

	var was syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &was); err != nil {
		t.Fatal(err)
	}
	// The lowest limit the client's socket fits in: the listener's accept
	// then needs one more descriptor than there is.
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn
	for lim := uint64(len(ents)) - 2; conn == nil && lim < uint64(len(ents))+8; lim++ {
		low := was
		low.Cur = lim
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
			t.Fatal(err)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn = c
		} else if !errors.Is(err, syscall.EMFILE) {
			_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &was)
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // the listener's accept fails meanwhile
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &was); err != nil {
		t.Fatal(err)
	}
	if conn == nil {
		t.Fatal("no connection made under the lowered limit")
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true}) // loopback, the test's own certificate
	if err := tc.Handshake(); err != nil {
		t.Fatalf("TLS handshake with a connection made while accepts failed: %v", err)
	}
	c2, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("a connection after the limit was back: %v", err)
	}
	c2.Close()
}
