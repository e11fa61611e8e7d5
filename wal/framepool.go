package wal

import (
	"sort"
	"sync"
)

// Reading an entry reads its whole frame (entry header and batch) with one
// pread into a buffer, and the entry's Data points into it. A new buffer per
// entry costs more than the read itself: a large allocation is zeroed, and
// the heap it grows is faulted in page by page and given back by the
// scavenger, over and over. A Reader that reuses buffers (ReuseData) takes
// them from framePool and gives them back when its caller commits past the
// entry.
//
// The pool is shared by every Reader, by size class, on sync.Pool: buffers
// a quiet relay does not use are dropped by the garbage collector instead
// of being held per stream.

// frameBuf is a buffer lent by framePool.
type frameBuf struct {
	b     []byte
	class int // index in frameClasses; -1 when not pooled
}

// bytes returns the buffer, nil for no frameBuf (read into a new one).
func (f *frameBuf) bytes() []byte {
	if f == nil {
		return nil
	}
	return f.b
}

// framePool lends frame buffers. A nil *framePool lends none: frames are
// read into new buffers, the caller's to keep. Safe for concurrent use.
type framePool struct {
	classes []sync.Pool // one per frameClasses size
}

// frameClasses are the buffer sizes: four steps per power of two (at most
// 25 % more than asked), from 4 KiB to 64 MiB; a larger frame (the WAL
// takes batches up to max.message.bytes, 1 MB by default) gets a buffer of
// its own.
var frameClasses = func() []int {
	var sizes []int
	for shift := 10; shift <= 23; shift++ { // up to 7<<23, 56 MiB
		for m := 4; m <= 7; m++ {
			sizes = append(sizes, m<<shift)
		}
	}
	return append(sizes, 64<<20)
}()

// sharedFrames is the pool of every Reader that reuses buffers.
var sharedFrames = &framePool{classes: make([]sync.Pool, len(frameClasses))}

// get returns a buffer of at least n bytes (nil from a nil pool).
func (p *framePool) get(n int) *frameBuf {
	if p == nil {
		return nil
	}
	c := sort.SearchInts(frameClasses, n)
	if c == len(frameClasses) {
		return &frameBuf{b: make([]byte, n), class: -1}
	}
	if f, ok := p.classes[c].Get().(*frameBuf); ok {
		return f
	}
	return &frameBuf{b: make([]byte, frameClasses[c]), class: c}
}

// put gives f back; nothing may use its bytes afterwards.
func (p *framePool) put(f *frameBuf) {
	if p == nil || f == nil || f.class < 0 {
		return
	}
	p.classes[f.class].Put(f)
}
