package shardwriter

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slsrelay/slsrelay/wal"
)

// Service runs one writer per WAL stream, for streams that exist at start
// and those that appear later, and offers the Catalog the front end uses.
// Close stops the writers at a clean position. Safe for concurrent use.
type Service struct {
	opts    Options
	wal     *wal.WAL
	clients *clientPool
	catalog *Catalog
	clock   *slsClock // SLS's clock, from the Date of its answers
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	stats Stats

	// projectPaceMu protects projectPace: each project's pacer, shared
	// by its writers, created on first use.
	projectPaceMu sync.Mutex
	projectPace   map[string]*pacer
}

// projectPacer returns project's pacer: unlimited until SLS answers a
// project quota code (adaptive pacing), nil for fixed pacing.
func (s *Service) projectPacer(project string) *pacer {
	if s.opts.Pace != "adaptive" {
		return nil
	}
	s.projectPaceMu.Lock()
	defer s.projectPaceMu.Unlock()
	p := s.projectPace[project]
	if p == nil {
		if s.projectPace == nil {
			s.projectPace = make(map[string]*pacer)
		}
		p = newPacer(0, 0, true)
		s.projectPace[project] = p
	}
	return p
}

// Stats counts what the writers did. Read it with Service.Stats.
type Stats struct {
	LogGroups   atomic.Int64 // PutLogs answered 200
	Logs        atomic.Int64 // logs in them
	RawBytes    atomic.Int64 // protobuf bytes in them
	Retries     atomic.Int64 // failed writes that were retried
	DeadLetters atomic.Int64 // entries moved to dead letters
}

// New makes a Service for w; Start starts its writers.
func New(w *wal.WAL, opts Options) (*Service, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	// Every SLS answer, the catalog's included, tells the writers SLS's
	// time (slsclock.go).
	clock := &slsClock{}
	opts.HTTPClient = observeDates(opts.HTTPClient, clock)
	clients, err := newClientPool(&opts)
	if err != nil {
		return nil, err
	}
	cat, err := newCatalog(clients, &opts)
	if err != nil {
		return nil, err
	}
	s := &Service{opts: opts, wal: w, clients: clients, catalog: cat, clock: clock, log: opts.Logger}
	cat.stats = &s.stats
	cat.proof.clock = clock
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Catalog returns the catalog to give the front end.
func (s *Service) Catalog() *Catalog { return s.catalog }

// Stats returns the writers' counters.
func (s *Service) Stats() *Stats { return &s.stats }

// Start starts a writer for every stream, now and as streams appear.
func (s *Service) Start() {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.wal.WatchStreams(s.ctx, func(k wal.StreamKey) {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.runWriter(k)
			}()
		})
	}()
}

// Close stops the writers. What they delivered and not yet committed is
// delivered again after a restart (at least once).
func (s *Service) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

func (s *Service) runWriter(k wal.StreamKey) {
	for {
		r, err := s.wal.Reader(k)
		if err == nil {
			r.ReuseData() // the writer is done with an entry's Data before it commits past it
			w := newWriter(s, k, r)
			w.run(s.ctx)
			_ = r.Close()
			return
		}
		s.log.Error("cannot open WAL reader", "stream", streamName(k), "err", err)
		if !sleepCtx(s.ctx, s.opts.RetryInterval) {
			return
		}
	}
}

func streamName(k wal.StreamKey) string {
	return fmt.Sprintf("%s/%s/%d", k.Project, k.Logstore, k.Partition)
}

// sleepCtx waits d or until ctx is done; it reports whether to go on.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
