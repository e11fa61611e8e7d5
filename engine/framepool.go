package engine

import (
	"sort"
	"sync"
)

// Request frames are read into buffers lent by requestFrames. A new buffer
// per frame was the largest cost of the ack path above what the socket
// reads and the CRC need: a frame of 64 KiB to 1 MB allocated, zeroed,
// then read over, and the garbage collector running for it
// (BenchmarkAckPath: 67 KB allocated per request). A Produce frame goes
// back once its response is encoded: by then every append of its batches
// has completed (Appender: Data is the appender's until done runs) and
// nothing else refers to it (kmsg copies names into strings; entries,
// dedup and metrics keep counts). Other frames are left to the garbage
// collector: their handlers may keep parts of them (a SASL exchange).
//
// The pool is sync.Pool by size class: buffers a quiet relay does not use
// are dropped by the collector instead of being held per connection.

// frameBuf is one request frame (without its size prefix) in a buffer
// that may go back to requestFrames.
type frameBuf struct {
	b     []byte // the frame: len is its size, the buffer may be larger
	class int    // index in frameClasses; -1 when not pooled
}

// framePool lends frame buffers. Safe for concurrent use.
type framePool struct {
	classes []sync.Pool // one per frameClasses size
}

// frameClasses are the pooled buffer sizes: four steps per power of two
// (at most 25 % more than asked), from 1 KiB to 14 MiB, then 16 MiB. A
// larger frame (max_request_bytes allows up to 100 MiB) gets a buffer of
// its own.
var frameClasses = func() []int {
	var sizes []int
	for shift := 8; shift <= 21; shift++ {
		for m := 4; m <= 7; m++ {
			sizes = append(sizes, m<<shift)
		}
	}
	return append(sizes, 16<<20)
}()

// requestFrames is the pool every transport reads frames into.
var requestFrames = &framePool{classes: make([]sync.Pool, len(frameClasses))}

// get returns a buffer for a frame of n bytes; its contents are whatever
// the previous frame left, so the caller fills all n.
func (p *framePool) get(n int) *frameBuf {
	c := sort.SearchInts(frameClasses, n)
	if c == len(frameClasses) {
		return &frameBuf{b: make([]byte, n), class: -1}
	}
	if f, ok := p.classes[c].Get().(*frameBuf); ok {
		f.b = f.b[:n]
		return f
	}
	return &frameBuf{b: make([]byte, n, frameClasses[c]), class: c}
}

// put gives f back; nothing may use its bytes afterwards. A nil f is
// ignored.
func (p *framePool) put(f *frameBuf) {
	if f == nil || f.class < 0 {
		return
	}
	p.classes[f.class].Put(f)
}
