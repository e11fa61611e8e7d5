package relay

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// controlLock is an exclusive flock on <control socket>.lock, held for as
// long as the relay serves the socket. The WAL's own lock keeps two
// relays off one data_dir, but admin.control_socket may name a path two
// relays share; without this lock, two of them starting after a crash
// could both find the old socket stale, and the second would remove the
// socket the first had just bound. The kernel drops the lock when its
// holder dies, so a crash never leaves it behind; the file itself stays.
type controlLock struct{ f *os.File }

// lockControlSocket takes the lock for the socket at path, or says which
// file another relay holds.
func lockControlSocket(path string) (*controlLock, error) {
	name := path + ".lock"
	f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot open %q: %w", name, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("another relay holds %q: is it using this admin.control_socket? set another path", name)
		}
		return nil, fmt.Errorf("cannot lock %q: %w", name, err)
	}
	return &controlLock{f: f}, nil
}

// release drops the lock (closing the file releases the flock).
func (l *controlLock) release() error { return l.f.Close() }
