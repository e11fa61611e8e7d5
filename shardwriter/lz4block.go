package shardwriter

import "github.com/pierrec/lz4/v4"

// lz4Encoder writes one LZ4 block (the body PutLogs takes with
// x-log-compresstype lz4: a raw block, no frame), with pierrec/lz4's
// Compressor as the SDK does (log_store.go PostRawLogs), but its state kept
// from block to block rather than taken from a pool shared by the process.
//
// A hand-written greedy encoder (hash table in L1, LZ4's skip rule) was
// tried and was no faster than pierrec/lz4 on 1 KiB log lines, at a
// slightly worse ratio: pierrec/lz4 stays.
//
// Not safe for concurrent use; the zero value is ready.
type lz4Encoder struct{ c lz4.Compressor }

// compress appends the LZ4 block of src to dst and returns it.
func (e *lz4Encoder) compress(dst, src []byte) []byte {
	start := len(dst)
	bound := lz4.CompressBlockBound(len(src))
	if cap(dst)-start < bound {
		grown := make([]byte, start, start+bound)
		copy(grown, dst)
		dst = grown
	}
	// With room for the bound, CompressBlock never reports the data as
	// incompressible (n == 0): it writes literals then.
	n, err := e.c.CompressBlock(src, dst[start:start+bound])
	if err != nil || n == 0 {
		// Cannot happen with a full-size buffer; a block of literals
		// only is still a valid body, as the SDK's copyIncompressible.
		return lz4Literals(dst[:start], src)
	}
	return dst[:start+n]
}

// lz4Literals appends an LZ4 block of src as literals only: one token, the
// length, the bytes (LZ4 block format,
// https://github.com/lz4/lz4/blob/dev/doc/lz4_Block_format.md).
func lz4Literals(dst, src []byte) []byte {
	n := len(src)
	if n < 15 {
		return append(append(dst, byte(n)<<4), src...)
	}
	dst = append(dst, 0xf0)
	for n -= 15; n >= 255; n -= 255 {
		dst = append(dst, 255)
	}
	return append(append(dst, byte(n)), src...)
}
