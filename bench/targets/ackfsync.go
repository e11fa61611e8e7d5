package targets

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// The acknowledge-after-fsync endpoint ("ack-fsync" in the bench): AckOnly,
// but a Produce is answered only once its request frame is written to a
// file and fdatasync'd, in groups (what arrives while a sync runs goes in
// the next one, as in the relay's WAL). It is what any endpoint that
// answers acks=-1 only from the disk pays on this machine's disk, and
// nothing else: the floor under the relay's own ack latency, next to
// ack-only's, which stores nothing.

// groupLog appends frames to one file and makes them durable in groups.
// append is safe for concurrent use.
type groupLog struct {
	path string
	f    *os.File

	mu      sync.Mutex // protects pending, waiters and closed
	pending []byte
	waiters []chan error
	closed  bool

	wake chan struct{}
	done chan struct{}
}

// groupLogMax bounds the file: once past it, the next group starts it over.
const groupLogMax = 1 << 30

func openGroupLog(dir string) (*groupLog, error) {
	path := filepath.Join(dir, "ack-fsync.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open %q: %w", path, err)
	}
	g := &groupLog{path: path, f: f, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go g.loop()
	return g, nil
}

// append queues a copy of b; the channel is told once b is synced (or why
// not).
func (g *groupLog) append(b []byte) <-chan error {
	c := make(chan error, 1)
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		c <- os.ErrClosed
		return c
	}
	g.pending = append(g.pending, b...)
	g.waiters = append(g.waiters, c)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	return c
}

func (g *groupLog) loop() {
	defer close(g.done)
	var written int64
	var spare []byte
	for range g.wake {
		g.mu.Lock()
		data, waiters, closed := g.pending, g.waiters, g.closed
		g.pending, g.waiters = spare[:0], nil
		g.mu.Unlock()
		err := g.writeSync(data, &written)
		for _, c := range waiters {
			c <- err
		}
		spare = data
		if closed {
			return
		}
	}
}

func (g *groupLog) writeSync(data []byte, written *int64) error {
	if len(data) == 0 {
		return nil
	}
	if *written > groupLogMax {
		if err := g.f.Truncate(0); err != nil {
			return fmt.Errorf("cannot truncate %q: %w", g.path, err)
		}
		if _, err := g.f.Seek(0, 0); err != nil {
			return fmt.Errorf("cannot seek %q: %w", g.path, err)
		}
		*written = 0
	}
	if _, err := g.f.Write(data); err != nil {
		return fmt.Errorf("cannot write %q: %w", g.path, err)
	}
	*written += int64(len(data))
	if err := unix.Fdatasync(int(g.f.Fd())); err != nil {
		return fmt.Errorf("cannot fdatasync %q: %w", g.path, err)
	}
	return nil
}

// close syncs what is queued, stops the loop and removes the file.
func (g *groupLog) close() error {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default:
	}
	<-g.done
	err := g.f.Close()
	os.Remove(g.path)
	return err
}
