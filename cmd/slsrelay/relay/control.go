package relay

// The control socket: how `slsrelay dlq` and `slsrelay wal status` act on
// a running relay, which keeps its WAL open (badger locks the directory,
// so no second process may open it). It is a Unix socket, by default
// <data_dir>/control.sock (admin.control_socket), with mode 0600, and the
// relay also checks each connecting process's user (SO_PEERCRED where the
// system has it): only the relay's own user, and root, are served. That is
// its authentication — the admin listener, which has none, serves nothing
// that changes state.
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
// path) or a file that is not a socket stops start-up instead. The CLI
// takes a stale socket for a stopped relay and opens the WAL itself.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// maxSocketPath is the longest path a Unix socket can be bound at
// (sun_path is 108 bytes on Linux, with its terminating NUL).
const maxSocketPath = 107

// Control protocol paths.
const (
	controlWALStatus   = "/v1/wal/status"
	controlDeadLetters = "/v1/dead-letters"
	controlReplay      = "/v1/dead-letters/replay"
	controlDrop        = "/v1/dead-letters/drop"
)

// controlRequest is the body of a replay or drop.
type controlRequest struct {
	Select DeadLetterSelection `json:"select"`
	// AccessKey, for a replay, is the key the replayed entries carry.
	AccessKey *controlKey `json:"access_key,omitempty"`
}

type controlKey struct {
	ID     string `json:"id"`
	Secret string `json:"secret"`
}

// controlEvent is one line of a replay's or drop's answer.
type controlEvent struct {
	Replayed uint64 `json:"replayed,omitempty"`
	Offset   *int64 `json:"offset,omitempty"` // with Replayed
	Dropped  uint64 `json:"dropped,omitempty"`
	Done     bool   `json:"done,omitempty"`
	Error    string `json:"error,omitempty"`
}

// controlServer serves the control socket.
type controlServer struct {
	path string
	srv  *http.Server
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
	if err := removeStaleSocket(path, r.log); err != nil {
		return fmt.Errorf("admin.control_socket: %w", err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("admin.control_socket: %w", err)
	}
	// The directory is the relay's (data_dir is made 0700); the mode is
	// set at once all the same, and peerListener checks each caller.
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return fmt.Errorf("admin.control_socket: cannot restrict %q to its owner: %w", path, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+controlWALStatus, r.serveWALStatus)
	mux.HandleFunc("GET "+controlDeadLetters, r.serveDeadLetters)
	mux.HandleFunc("POST "+controlReplay, r.serveReplay)
	mux.HandleFunc("POST "+controlDrop, r.serveDrop)
	c := &controlServer{path: path, srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}}
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

// serveWALStatus answers the table, or JSON when asked for it (Accept:
// application/json): the control socket's and the admin listener's
// /wal/status.
func (r *Relay) serveWALStatus(w http.ResponseWriter, req *http.Request) {
	if r.wal == nil {
		http.Error(w, "WAL not open", http.StatusServiceUnavailable)
		return
	}
	if acceptsJSON(req) {
		w.Header().Set("Content-Type", "application/json")
		WriteWALStatusJSON(w, r.wal.Stats())
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	WriteWALStatus(w, r.wal.Stats())
}

// acceptsJSON tells whether req's Accept names application/json.
func acceptsJSON(req *http.Request) bool {
	for _, v := range req.Header.Values("Accept") {
		for _, part := range strings.Split(v, ",") {
			mt, _, _ := strings.Cut(part, ";")
			if strings.EqualFold(strings.TrimSpace(mt), "application/json") {
				return true
			}
		}
	}
	return false
}

func (r *Relay) serveDeadLetters(w http.ResponseWriter, req *http.Request) {
	list, err := WALDeadLetters{r.wal}.DeadLetters(req.Context())
	if err != nil {
		controlError(w, http.StatusInternalServerError, err)
		return
	}
	if list == nil {
		list = []DeadLetterInfo{}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(list)
}

func (r *Relay) serveReplay(w http.ResponseWriter, req *http.Request) {
	cr, ok := readControlRequest(w, req)
	if !ok {
		return
	}
	var key *wal.Credential
	if k := cr.AccessKey; k != nil {
		if k.ID == "" || k.Secret == "" {
			controlError(w, http.StatusBadRequest, errors.New("access_key needs id and secret"))
			return
		}
		key = &wal.Credential{AccessKeyID: k.ID, AccessKeySecret: k.Secret}
	}
	events := newEventStream(w)
	err := WALDeadLetters{r.wal}.Replay(req.Context(), cr.Select, key, func(id uint64, off int64) {
		attrs := []any{"id", id, "offset", off}
		if key != nil {
			attrs = append(attrs, "access_key_id", key.AccessKeyID)
		}
		r.log.Info("dead letter replayed (control socket)", attrs...)
		events.send(controlEvent{Replayed: id, Offset: &off})
	})
	events.end(err)
}

func (r *Relay) serveDrop(w http.ResponseWriter, req *http.Request) {
	cr, ok := readControlRequest(w, req)
	if !ok {
		return
	}
	if cr.AccessKey != nil {
		controlError(w, http.StatusBadRequest, errors.New("access_key goes with replay only"))
		return
	}
	events := newEventStream(w)
	err := WALDeadLetters{r.wal}.Drop(req.Context(), cr.Select, func(id uint64) {
		r.log.Info("dead letter dropped (control socket)", "id", id)
		events.send(controlEvent{Dropped: id})
	})
	events.end(err)
}

// readControlRequest decodes a replay's or drop's body; on error it has
// answered.
func readControlRequest(w http.ResponseWriter, req *http.Request) (controlRequest, bool) {
	var cr controlRequest
	dec := json.NewDecoder(io.LimitReader(req.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cr); err != nil {
		// The decoder's message quotes no value, so no secret.
		controlError(w, http.StatusBadRequest, fmt.Errorf("bad request body: %w", err))
		return cr, false
	}
	if cr.Select.Empty() {
		controlError(w, http.StatusBadRequest, errors.New("no dead letters selected"))
		return cr, false
	}
	return cr, true
}

func controlError(w http.ResponseWriter, status int, err error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(controlEvent{Error: err.Error()})
}

// eventStream writes a replay's or drop's answer line by line, each
// flushed, so the command shows each dead letter as it is done.
type eventStream struct {
	w   http.ResponseWriter
	enc *json.Encoder
	rc  *http.ResponseController
}

func newEventStream(w http.ResponseWriter) *eventStream {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	return &eventStream{w: w, enc: json.NewEncoder(w), rc: http.NewResponseController(w)}
}

func (s *eventStream) send(e controlEvent) {
	if s.enc.Encode(e) == nil {
		_ = s.rc.Flush()
	}
}

// end writes the last line: done, or err.
func (s *eventStream) end(err error) {
	if err != nil {
		s.send(controlEvent{Error: err.Error()})
		return
	}
	s.send(controlEvent{Done: true})
}
