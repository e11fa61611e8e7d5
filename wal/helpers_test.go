package wal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"log/slog"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var testKey = bytes.Repeat([]byte{0x42}, KeySize)

const testSecret = "S3cr3tAcc3ssK3yV4lu3XyZ0123456"

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

func testOptions(t testing.TB) Options {
	return Options{EncryptionKey: testKey, Logger: testLogger(t), ReclaimInterval: -1}
}

func openTest(t testing.TB, dir string, o Options) *WAL {
	t.Helper()
	w, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return w
}

func sk(i int) StreamKey {
	return StreamKey{Project: "proj", Logstore: fmt.Sprintf("store%d", i%3), Partition: int32(i)}
}

// payload makes a self-checking batch body: id, length, crc, then
// pseudo-random (incompressible) bytes derived from id.
func payload(id uint64, size int) []byte {
	if size < 16 {
		size = 16
	}
	b := make([]byte, size)
	binary.BigEndian.PutUint64(b, id)
	r := rand.New(rand.NewPCG(id, 7))
	for i := 16; i < size; i += 8 {
		var x [8]byte
		binary.LittleEndian.PutUint64(x[:], r.Uint64())
		copy(b[i:], x[:])
	}
	binary.BigEndian.PutUint32(b[8:], uint32(size))
	binary.BigEndian.PutUint32(b[12:], crc32.ChecksumIEEE(b[16:]))
	return b
}

// checkPayload returns the id of a payload made by payload, or an error.
func checkPayload(b []byte) (uint64, error) {
	if len(b) < 16 {
		return 0, fmt.Errorf("payload of %d bytes", len(b))
	}
	if int(binary.BigEndian.Uint32(b[8:])) != len(b) {
		return 0, fmt.Errorf("payload length %d, header says %d", len(b), binary.BigEndian.Uint32(b[8:]))
	}
	if crc32.ChecksumIEEE(b[16:]) != binary.BigEndian.Uint32(b[12:]) {
		return 0, fmt.Errorf("payload crc mismatch")
	}
	return binary.BigEndian.Uint64(b), nil
}

func testEntry(id uint64, size int, records int32) *Entry {
	return &Entry{
		Magic: 2, Codec: 1, Records: records, ReceivedAt: time.Now().UnixNano(),
		Producer: "10.0.0.1:5555", ClientID: "filebeat",
		Credential: Credential{AccessKeyID: "LTAI5tTestKeyId", AccessKeySecret: testSecret},
		Data:       payload(id, size),
	}
}

func mustAppend(t testing.TB, w *WAL, k StreamKey, e *Entry, durable bool) int64 {
	t.Helper()
	off, err := w.AppendWait(k, e, durable)
	if err != nil {
		t.Fatalf("append: %v", err)
	}
	return off
}

// waitIndexed returns once everything answered so far is readable: an
// append is answered once synced, and readable (and counted in Stats)
// once the indexer wrote its rows, just after.
func waitIndexed(t testing.TB, w *WAL) {
	t.Helper()
	if err := w.syncBarrier(); err != nil {
		t.Fatalf("waiting for the indexer: %v", err)
	}
}

// readAll reads everything readable now from r (without committing),
// waiting 200 ms at the end for what an append in flight may add.
func readAll(t testing.TB, r *Reader) []*Entry {
	t.Helper()
	return readWaiting(t, r, 200*time.Millisecond, false)
}

// readWaiting reads from r until nothing more comes within wait (Read
// checks its context only when nothing is readable). With gaps it passes
// each gap in the stream's offsets (a CorruptError for offsets no entry is
// stored at) with Commit(Next), as a consumer would, and reads on:
// recovery indexes a frame found past a gap (replayFrame), and after a
// power loss unsynced frames written later can be on disk while earlier
// ones are not (TestPowerLoss).
func readWaiting(t testing.TB, r *Reader, wait time.Duration, gaps bool) []*Entry {
	t.Helper()
	var out []*Entry
	for {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		es, err := r.Read(ctx, 4<<20, 256)
		cancel()
		var ce *CorruptError
		switch {
		case errors.Is(err, context.DeadlineExceeded):
			return out
		case gaps && errors.As(err, &ce) && strings.Contains(ce.Err.Error(), "no entries stored"):
			t.Logf("stream %v: no entries from offset %d to %d (lost unsynced frames before a frame found on disk); passed", ce.Stream, ce.Offset, ce.Next)
			if err := r.Commit(ce.Next); err != nil {
				t.Fatalf("commit past the gap: %v", err)
			}
		case err != nil:
			t.Fatalf("read: %v", err)
		}
		out = append(out, es...)
	}
}

func mkdir(t testing.TB) string {
	d := t.TempDir()
	if err := os.MkdirAll(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}

// dropInProgress makes a WAL look as if Reclaim's DropPrefix were running:
// dbWriteMu held, and badger's sync blocked (as badger's own lock blocks
// it during a drop) until end. It counts badger's syncs.
type dropInProgress struct {
	t     testing.TB
	w     *WAL
	done  chan struct{}
	syncs atomic.Int32
	once  sync.Once
}

func startDrop(t testing.TB, w *WAL) *dropInProgress {
	d := &dropInProgress{t: t, w: w, done: make(chan struct{})}
	injectFaults(w, &faultHooks{dbSync: func() error {
		<-d.done
		d.syncs.Add(1)
		return w.db.Sync()
	}})
	w.dbWriteMu.Lock()
	t.Cleanup(d.end) // before the WAL's Close
	return d
}

func (d *dropInProgress) end() {
	d.once.Do(func() {
		d.w.dbWriteMu.Unlock()
		close(d.done)
	})
}

// appendAnswered makes a synced append and reports whether it was
// answered within the time given (failing the test if with an error).
func (d *dropInProgress) appendAnswered(id uint64, within time.Duration) bool {
	d.t.Helper()
	acked := make(chan error, 1)
	d.w.Append(sk(0), testEntry(id, 1<<10, 1), true, func(_ int64, err error) { acked <- err })
	select {
	case err := <-acked:
		if err != nil {
			d.t.Fatal(err)
		}
		return true
	case <-time.After(within):
		return false
	}
}
