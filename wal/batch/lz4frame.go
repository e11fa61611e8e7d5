package batch

import (
	"encoding/binary"
	"math/bits"
)

// An LZ4 frame (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md)
// starts with the magic 0x184D2204 (little-endian), a FLG byte, a BD byte,
// an optional 8-byte content size (FLG bit 3), an optional 4-byte dictionary
// id (FLG bit 0), then HC: the second byte of xxh32(FLG..end of descriptor).
const lz4FrameMagic = 0x184D2204

// lz4HeaderChecksumOffset returns the offset of HC in frame, or -1 if frame
// does not start with a complete LZ4 frame descriptor.
func lz4HeaderChecksumOffset(frame []byte) int {
	if len(frame) < 7 || binary.LittleEndian.Uint32(frame) != lz4FrameMagic {
		return -1
	}
	off := 6
	flg := frame[4]
	if flg&0x08 != 0 {
		off += 8
	}
	if flg&0x01 != 0 {
		off += 4
	}
	if off >= len(frame) {
		return -1
	}
	return off
}

// fixLZ4HeaderChecksum rewrites, in place, the header checksum of the LZ4
// frame at the start of frame to the value the frame format specifies. Kafka
// before 0.10 hashed the frame magic along with the descriptor (KAFKA-3160).
func fixLZ4HeaderChecksum(frame []byte) {
	if off := lz4HeaderChecksumOffset(frame); off >= 0 {
		frame[off] = byte(xxh32(frame[4:off], 0) >> 8)
	}
}

// xxh32 is XXH32 (https://github.com/Cyan4973/xxHash/blob/dev/doc/xxhash_spec.md),
// needed only for the few bytes of an LZ4 frame descriptor.
func xxh32(b []byte, seed uint32) uint32 {
	const (
		p1 uint32 = 2654435761
		p2 uint32 = 2246822519
		p3 uint32 = 3266489917
		p4 uint32 = 668265263
		p5 uint32 = 374761393
	)
	round := func(acc, lane uint32) uint32 {
		return bits.RotateLeft32(acc+lane*p2, 13) * p1
	}
	n := len(b)
	var h uint32
	if n >= 16 {
		v1, v2, v3, v4 := seed+p1+p2, seed+p2, seed, seed-p1
		for ; len(b) >= 16; b = b[16:] {
			v1 = round(v1, binary.LittleEndian.Uint32(b[0:]))
			v2 = round(v2, binary.LittleEndian.Uint32(b[4:]))
			v3 = round(v3, binary.LittleEndian.Uint32(b[8:]))
			v4 = round(v4, binary.LittleEndian.Uint32(b[12:]))
		}
		h = bits.RotateLeft32(v1, 1) + bits.RotateLeft32(v2, 7) + bits.RotateLeft32(v3, 12) + bits.RotateLeft32(v4, 18)
	} else {
		h = seed + p5
	}
	h += uint32(n)
	for ; len(b) >= 4; b = b[4:] {
		h += binary.LittleEndian.Uint32(b) * p3
		h = bits.RotateLeft32(h, 17) * p4
	}
	for _, c := range b {
		h += uint32(c) * p5
		h = bits.RotateLeft32(h, 11) * p1
	}
	h ^= h >> 15
	h *= p2
	h ^= h >> 13
	h *= p3
	h ^= h >> 16
	return h
}
