package wal

import (
	"sync"
	"time"
)

// The syncer fsyncs on its own goroutine so that the committer can write the
// next group while the previous one is being synced: the disk is busy
// with one fsync after the other and each covers whatever was written while
// the previous one ran. Readers are shown entries only once synced, so a
// committed position never points past what survives a crash.

type syncerState struct {
	mu       sync.Mutex
	acks     []ack                // written, waiting for an fsync
	written  map[*stream]position // stream ends reached by those writes
	dirty    bool                 // something written since the last fsync
	barriers []chan struct{}      // closed after the next fsync
	wake     chan struct{}
	closing  chan struct{}
	done     chan struct{}
}

func (w *WAL) startSyncer() {
	s := &w.syncer
	s.written = make(map[*stream]position)
	s.wake = make(chan struct{}, 1)
	s.closing = make(chan struct{})
	s.done = make(chan struct{})
	go w.syncLoop()
}

// toSyncer hands over what one transaction wrote. Committer only.
func (w *WAL) toSyncer(acks []ack, written map[*stream]position) {
	s := &w.syncer
	s.mu.Lock()
	s.acks = append(s.acks, acks...)
	for st, p := range written {
		if p.Offset >= s.written[st].Offset {
			s.written[st] = p
		}
	}
	s.dirty = true
	s.mu.Unlock()
	w.wakeSyncer() // under SyncInterval it arms its timer
}

func (w *WAL) wakeSyncer() {
	select {
	case w.syncer.wake <- struct{}{}:
	default:
	}
}

// syncBarrier returns once everything written so far is synced.
func (w *WAL) syncBarrier() {
	c := make(chan struct{})
	s := &w.syncer
	s.mu.Lock()
	s.barriers = append(s.barriers, c)
	s.mu.Unlock()
	w.wakeSyncer()
	<-c
}

func (w *WAL) syncLoop() {
	s := &w.syncer
	defer close(s.done)
	files := newFileSyncer(w.dir)
	defer files.close()
	var lastSync time.Time
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		closing := false
		select {
		case <-s.wake:
		case <-timer.C:
		case <-s.closing:
			closing = true
		}
		s.mu.Lock()
		if !s.dirty && len(s.barriers) == 0 {
			s.mu.Unlock()
			if closing {
				return
			}
			continue
		}
		if w.opts.Sync == SyncInterval && !closing && len(s.barriers) == 0 {
			if wait := w.opts.SyncInterval - time.Since(lastSync); wait > 0 {
				s.mu.Unlock()
				timer.Reset(wait)
				continue
			}
		}
		acks, written, barriers, dirty := s.acks, s.written, s.barriers, s.dirty
		s.acks, s.written, s.barriers, s.dirty = nil, make(map[*stream]position), nil, false
		s.mu.Unlock()

		var err error
		if dirty {
			t0 := time.Now()
			err = files.sync(w.db.Sync)
			w.syncNanos.Add(int64(time.Since(t0)))
			fsyncDuration.UpdateDuration(t0)
			w.syncs.Add(1)
			lastSync = time.Now()
		}
		if err != nil {
			err = w.diskError("sync", err)
			// Not acknowledged; the stream ends are published by the next
			// successful fsync.
			s.mu.Lock()
			for st, p := range written {
				if p.Offset >= s.written[st].Offset {
					s.written[st] = p
				}
			}
			s.mu.Unlock()
		} else {
			for st, p := range written {
				st.mu.Lock()
				if p.Offset > st.readable.Offset {
					st.readable = p
					close(st.wake)
					st.wake = make(chan struct{})
				}
				st.mu.Unlock()
			}
		}
		for _, a := range acks {
			w.answer(a, err)
		}
		for _, c := range barriers {
			close(c)
		}
		if closing {
			return
		}
	}
}
