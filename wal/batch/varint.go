package batch

import "encoding/binary"

// Kafka's v2 records use zigzag varints: "varint" for 32-bit values (at most
// 5 bytes) and "varlong" for 64-bit ones (at most 10 bytes). Like Kafka's
// ByteUtils, an encoding longer than that is an error and excess high bits in
// the last byte are dropped.

// varint reads a zigzag varint from the start of b. n is the number of bytes
// read, or 0 if b ends inside the varint or it is longer than 5 bytes.
func varint(b []byte) (v int32, n int) {
	if len(b) > 0 && b[0] < 0x80 { // the common case: one byte
		u := uint32(b[0])
		return int32(u>>1) ^ -int32(u&1), 1
	}
	var u uint32
	for i := 0; i < 5 && i < len(b); i++ {
		c := b[i]
		u |= uint32(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int32(u>>1) ^ -int32(u&1), i + 1
		}
	}
	return 0, 0
}

// varlong reads a zigzag varlong from the start of b. n is the number of
// bytes read, or 0 if b ends inside the varlong or it is longer than 10 bytes.
func varlong(b []byte) (v int64, n int) {
	if len(b) > 0 && b[0] < 0x80 {
		u := uint64(b[0])
		return int64(u>>1) ^ -int64(u&1), 1
	}
	var u uint64
	for i := 0; i < 10 && i < len(b); i++ {
		c := b[i]
		u |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			return int64(u>>1) ^ -int64(u&1), i + 1
		}
	}
	return 0, 0
}

func be16(b []byte) uint16 { return binary.BigEndian.Uint16(b) }
func be32(b []byte) uint32 { return binary.BigEndian.Uint32(b) }
func be64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }
