package load

import "sync/atomic"

// IDSet is a lock-free bitmap of record ids (1 … 2^32): which ids were
// acknowledged. Set is safe for concurrent use.
type IDSet struct {
	chunks [1 << 12]atomic.Pointer[idChunk]
	n      atomic.Int64
	max    atomic.Uint64
}

const chunkBits = 20 // ids per chunk

type idChunk [1 << (chunkBits - 6)]atomic.Uint64

// Set marks id; it reports whether it was new.
func (s *IDSet) Set(id uint64) bool {
	ci := id >> chunkBits
	if ci >= uint64(len(s.chunks)) {
		return false
	}
	c := s.chunks[ci].Load()
	if c == nil {
		c = new(idChunk)
		if !s.chunks[ci].CompareAndSwap(nil, c) {
			c = s.chunks[ci].Load()
		}
	}
	off := id & (1<<chunkBits - 1)
	bit := uint64(1) << (off & 63)
	if c[off>>6].Or(bit)&bit != 0 {
		return false
	}
	s.n.Add(1)
	for {
		m := s.max.Load()
		if id <= m || s.max.CompareAndSwap(m, id) {
			break
		}
	}
	return true
}

// Has reports whether id is set.
func (s *IDSet) Has(id uint64) bool {
	ci := id >> chunkBits
	if ci >= uint64(len(s.chunks)) {
		return false
	}
	c := s.chunks[ci].Load()
	if c == nil {
		return false
	}
	off := id & (1<<chunkBits - 1)
	return c[off>>6].Load()&(1<<(off&63)) != 0
}

// Len is the number of ids set.
func (s *IDSet) Len() int64 { return s.n.Load() }

// Max is the largest id set.
func (s *IDSet) Max() uint64 { return s.max.Load() }

// Range calls fn for every id set, in order.
func (s *IDSet) Range(fn func(id uint64)) {
	for ci := range s.chunks {
		c := s.chunks[ci].Load()
		if c == nil {
			continue
		}
		for wi := range c {
			w := c[wi].Load()
			for w != 0 {
				b := uint64(0)
				for w&(1<<b) == 0 {
					b++
				}
				w &^= 1 << b
				fn(uint64(ci)<<chunkBits | uint64(wi)<<6 | b)
			}
		}
	}
}
