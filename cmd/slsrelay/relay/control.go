package relay

// The control socket: how `slsrelay dlq` and `slsrelay wal status` act on
// a running relay, which keeps its WAL open (badger locks the directory,
// so no second process may open it). It is a Unix socket, by default
// <data_dir>/control.sock (admin.control_socket), with mode 0600, and the
// relay also checks each connecting process's user (SO_PEERCRED where the
// system has it): only the relay's own user, and root, are served. That is
// its authentication — the admin listener, which has none, serves nothing
// that changes state. The commands check the other way too
// (checkRelayPeer): a socket served by a user other than theirs, root or
// the owner of its directory is not the relay's, and gets no request (a
// replay carries an AccessKey secret).
//
// The protocol is HTTP/1.1 over the socket (ControlClient speaks it):
//
//	GET  /v1/wal/status          the table, or JSON (WALStatus) with
//	                             Accept: application/json
//	GET  /v1/dead-letters        JSON: []DeadLetterInfo
//	POST /v1/dead-letters/replay {"select": DeadLetterSelection,
//	                              "access_key": {"id", "secret"} (optional)}
//	POST /v1/dead-letters/drop   {"select": DeadLetterSelection}
//
// Replay and drop answer 200 and a stream of JSON lines, one per dead
// letter as it is done ({"replayed": id, "offset": n} or {"dropped": id}),
// ended by {"done": true} or {"error": "..."}; a stream without that last
// line was cut (the relay stopped). Other errors are a status and
// {"error": "..."}. An AccessKeySecret sent with a replay is never logged
// nor echoed.
//
// A stale socket — the file a relay that crashed left behind, on which
// nobody answers — is removed when the next relay starts: New has taken
// the WAL's lock by then, so no relay on this data_dir can be serving it.
// A socket on which a relay does answer (a shared admin.control_socket
// path) or a file that is not a socket stops start-up instead, as does
// <socket>.lock held by another relay (see controlLock). The CLI
// takes a stale socket for a stopped relay and opens the WAL itself.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// maxSocketPath is the longest path a Unix socket can be bound at
// (sun_path is 108 bytes on Linux, with its terminating NUL).
const maxSocketPath = 107

// controlServer serves the control socket.
type controlServer struct {
	path string
	srv  *http.Server
	lock *controlLock
}

// startControl binds the control socket and serves it; nothing without a
// WAL or with admin.control_socket off.
func (r *Relay) startControl() error {
	path := r.cfg.ControlSocket()
	if path == "" || r.wal == nil {
		return nil
	}
	if err := checkSocketPath(path); err != nil {
		if r.cfg.Admin.ControlSocket != "" {
			return err
		}
		// The default, under a deep data_dir: the relay runs all the
		// same, and the commands then need it stopped.
		r.log.Warn("no control socket: set a shorter admin.control_socket for `slsrelay dlq` and `wal status` on the running relay", "err", err)
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("admin.control_socket: %w", err)
	}
	lock, err := lockControlSocket(path)
	if err != nil {
		return fmt.Errorf("admin.control_socket: %w", err)
	}
	if err := removeStaleSocket(path, r.log); err != nil {
		lock.release()
		return fmt.Errorf("admin.control_socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		lock.release()
		return fmt.Errorf("admin.control_socket: %w", err)
	}
	// The directory is the relay's (data_dir is made 0700); the mode is
	// set at once all the same, and peerListener checks each caller.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		lock.release()
		return fmt.Errorf("admin.control_socket: cannot restrict %q to its owner: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+controlWALStatus, r.serveWALStatus)
	mux.HandleFunc("GET "+controlDeadLetters, r.serveDeadLetters)
	mux.HandleFunc("POST "+controlReplay, r.serveReplay)
	mux.HandleFunc("POST "+controlDrop, r.serveDrop)
	c := &controlServer{path: path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, lock: lock}
	r.control = c
	go func() {
		if err := c.srv.Serve(&peerListener{Listener: ln, log: r.log, allow: ownUserOrRoot}); err != nil && !errors.Is(err, http.ErrServerClosed) {
			r.log.Error("control socket stopped", "path", path, "err", err)
		}
	}()
	r.log.Info("control socket listening", "path", path)
	return nil
}

// checkSocketPath reports a control socket path no socket can be bound at.
func checkSocketPath(path string) error {
	if len(path) > maxSocketPath {
		return fmt.Errorf("admin.control_socket: %q is %d bytes, longer than a Unix socket path may be (%d): set a shorter admin.control_socket", path, len(path), maxSocketPath)
	}
	return nil
}

// ControlSocketUnbindable says why the relay runs without a control
// socket although admin.control_socket is not off: the default path
// <data_dir>/control.sock is too long for a Unix socket. Nil otherwise.
func (c *Config) ControlSocketUnbindable() error {
	if c.Admin.ControlSocket != "" {
		// Off, or set: a set path too long stops start-up instead.
		return nil
	}
	return checkSocketPath(c.ControlSocket())
}

// probeControlSocket is check-config's look at the control socket: a path
// a socket can be bound at, in a directory start-up can write in.
func (c *Config) probeControlSocket() error {
	path := c.ControlSocket()
	if path == "" {
		return nil
	}
	if err := checkSocketPath(path); err != nil {
		return err
	}
	if dir := filepath.Dir(path); dir != filepath.Clean(c.DataDir) {
		// data_dir has its own finding.
		return writableDir("admin.control_socket's directory", dir)
	}
	return nil
}

// stop lets requests in flight finish until ctx ends, then closes them;
// the socket file is removed (net.UnixListener unlinks it on Close).
func (c *controlServer) stop(ctx context.Context) error {
	// The lock goes last, once the socket file is unlinked.
	defer c.lock.release()
	if err := c.srv.Shutdown(ctx); err != nil {
		return c.srv.Close()
	}
	return nil
}

// removeStaleSocket makes way for the control socket at path: nothing
// there is fine; a socket nobody answers on is a crashed relay's and is
// removed; a socket someone answers on, or any other file, is an error.
func removeStaleSocket(path string, log *slog.Logger) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return err
	case fi.Mode().Type() != os.ModeSocket:
		return fmt.Errorf("%q exists and is not a socket: remove it or set another admin.control_socket", path)
	}
	conn, err := net.DialTimeout("unix", path, 2*time.Second)
	if err == nil {
		conn.Close()
		return fmt.Errorf("a process answers on %q: is another relay using this admin.control_socket?", path)
	}
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("cannot tell whether %q is in use: %w", path, err)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("cannot remove the stale socket %q: %w", path, err)
	}
	log.Warn("removed a stale control socket (left by a relay that did not stop cleanly)", "path", path)
	return nil
}

// peerListener hands out only the connections of processes whose user
// allow accepts (where the system tells the peer's user).
type peerListener struct {
	net.Listener
	log   *slog.Logger
	allow func(uid int) bool
}

// ownUserOrRoot is the control socket's rule: the relay's user, or root.
func ownUserOrRoot(uid int) bool { return uid == os.Getuid() || uid == 0 }

func (l *peerListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, known, err := peerUID(c)
		if err == nil && (!known || l.allow(uid)) {
			return c, nil
		}
		l.log.Warn("control socket: connection refused", "peer_uid", uid, "err", err)
		c.Close()
	}
}
