package relay

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// ErrNoRelay: no socket at the control socket's path (no relay runs on
// this data_dir, or it has not bound the socket yet).
var ErrNoRelay = errors.New("no control socket")

// ErrStaleSocket: a socket is there but nobody answers on it — a relay
// ended without removing it (a crash, a kill -9); the next start removes
// it.
var ErrStaleSocket = errors.New("stale control socket: no relay answers on it")

// ControlClient talks to a running relay on its control socket (the
// protocol is in control.go). It implements DeadLetterAdmin. Safe for
// concurrent use.
type ControlClient struct {
	path string
	hc   *http.Client
}

// DialControl connects to the relay answering on the control socket at
// path, to check that one does: the error wraps ErrNoRelay or
// ErrStaleSocket when none does.
func DialControl(path string) (*ControlClient, error) {
	if err := checkSocketPath(path); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoRelay, err)
	}
	conn, err := net.DialTimeout("unix", path, 5*time.Second)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("%w at %q", ErrNoRelay, path)
	case errors.Is(err, syscall.ECONNREFUSED):
		return nil, fmt.Errorf("%q: %w", path, ErrStaleSocket)
	case err != nil:
		return nil, fmt.Errorf("cannot reach the relay on its control socket: %w", err)
	}
	err = checkRelayPeer(conn, path)
	conn.Close()
	if err != nil {
		return nil, err
	}
	// Each connection is checked: the file at path may have been
	// replaced since.
	dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		c, err := d.DialContext(ctx, "unix", path)
		if err != nil {
			return nil, err
		}
		if err := checkRelayPeer(c, path); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	}
	// Each request on a connection of its own: the relay's answers are
	// short, and a replay's stream ends with its connection's use.
	// A replay's answer starts at once and streams; a list's comes whole.
	tr := &http.Transport{DialContext: dial, DisableKeepAlives: true, ResponseHeaderTimeout: time.Minute}
	return &ControlClient{path: path, hc: &http.Client{Transport: tr}}, nil
}

// checkRelayPeer refuses a control socket served by a process that cannot
// be the relay, before a replay's AccessKey secret goes to it: the relay
// runs as this user, as root, or as the owner of the socket's directory
// (data_dir, or the directory start-up made for admin.control_socket).
// Anyone else answering there bound the path first, in a directory others
// may write in (/tmp): the relay would have refused to start on it.
func checkRelayPeer(c net.Conn, path string) error {
	uid, known, err := peerUID(c)
	if err != nil {
		return fmt.Errorf("cannot tell which user answers on the control socket %q: %w", path, err)
	}
	if !known || ownUserOrRoot(uid) {
		return nil
	}
	if owner, ok := dirOwner(filepath.Dir(path)); ok && owner == uid {
		return nil
	}
	return fmt.Errorf("the process answering on the control socket %q runs as uid %d, neither this user, root nor the owner of its directory: not taken for the relay (put admin.control_socket in a directory of the relay's user, or run the command as that user)", path, uid)
}

// Path is the socket the client talks to.
func (c *ControlClient) Path() string { return c.path }

// WALStatus returns the relay's `wal status`: the table, or JSON
// (WALStatus) with asJSON.
func (c *ControlClient) WALStatus(ctx context.Context, asJSON bool) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://relay"+controlWALStatus, nil)
	if err != nil {
		return "", err
	}
	if asJSON {
		req.Header.Set("Accept", "application/json")
	}
	b, err := c.do(req)
	return string(b), err
}

func (c *ControlClient) DeadLetters(ctx context.Context) ([]DeadLetterInfo, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://relay"+controlDeadLetters, nil)
	if err != nil {
		return nil, err
	}
	b, err := c.do(req)
	if err != nil {
		return nil, err
	}
	var out []DeadLetterInfo
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("the relay's dead-letter list: %w", err)
	}
	return out, nil
}

func (c *ControlClient) Replay(ctx context.Context, sel DeadLetterSelection, key *wal.Credential, done func(id uint64, offset int64)) error {
	cr := controlRequest{Select: sel}
	if key != nil {
		cr.AccessKey = &controlKey{ID: key.AccessKeyID, Secret: key.AccessKeySecret}
	}
	return c.stream(ctx, controlReplay, cr, func(e controlEvent) error {
		if e.Replayed == 0 || e.Offset == nil {
			return fmt.Errorf("unexpected line from the relay: %+v", e)
		}
		done(e.Replayed, *e.Offset)
		return nil
	})
}

func (c *ControlClient) Drop(ctx context.Context, sel DeadLetterSelection, done func(id uint64)) error {
	return c.stream(ctx, controlDrop, controlRequest{Select: sel}, func(e controlEvent) error {
		if e.Dropped == 0 {
			return fmt.Errorf("unexpected line from the relay: %+v", e)
		}
		done(e.Dropped)
		return nil
	})
}

// do sends req and returns the body of a 200 answer, or the relay's error.
func (c *ControlClient) do(req *http.Request) ([]byte, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("control socket %q: %w", c.path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("control socket %q: %w", c.path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(resp.Status, b)
	}
	return b, nil
}

// stream posts cr to path and hands each line of the answer to line until
// the last one (done or an error).
func (c *ControlClient) stream(ctx context.Context, path string, cr controlRequest, line func(controlEvent) error) error {
	body, err := json.Marshal(cr)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://relay"+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("control socket %q: %w", c.path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		return answerError(resp.Status, b)
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		var e controlEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return fmt.Errorf("the relay's answer: %w", err)
		}
		switch {
		case e.Error != "":
			return errors.New(e.Error)
		case e.Done:
			return nil
		}
		if err := line(e); err != nil {
			return err
		}
	}
	return fmt.Errorf("the relay's answer ended early (did it stop?): %v; `slsrelay dlq list` shows what is left", sc.Err())
}

// answerError is the relay's {"error": ...}, or the status and body.
func answerError(status string, body []byte) error {
	var e controlEvent
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return errors.New(e.Error)
	}
	return fmt.Errorf("the relay answered %s: %s", status, bytes.TrimSpace(body))
}
