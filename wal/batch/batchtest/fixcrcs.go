package batchtest

import "encoding/binary"

// FixCRCs returns a copy of data with the CRC of every top-level batch or
// message whose framing holds recomputed. Fuzz targets use it: random bytes
// almost never carry a valid CRC, and with it the fuzzer gets past the
// checksums to record parsing and decompression.
func FixCRCs(data []byte) []byte {
	data = append([]byte{}, data...)
	for b := data; len(b) > magicAt; {
		size := logOverhead + int(binary.BigEndian.Uint32(b[lengthAt:]))
		if size < logOverhead || size > len(b) {
			break
		}
		switch b[magicAt] {
		case 2:
			if size >= batchHeaderLen {
				FixRecordBatchCRC(b[:size])
			}
		case 0, 1:
			if size >= messageV0MinLen {
				FixMessageCRC(b[:size])
			}
		}
		b = b[size:]
	}
	return data
}
