package batchtest

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

func gzipCompress(tb testing.TB, raw []byte) []byte {
	return compressStream(tb, raw, func(w io.Writer) io.WriteCloser { return gzip.NewWriter(w) })
}

// lz4Compress writes an LZ4 frame with a correct header checksum, as
// producers since Kafka 0.10 do.
func lz4Compress(tb testing.TB, raw []byte) []byte {
	return compressStream(tb, raw, func(w io.Writer) io.WriteCloser { return lz4.NewWriter(w) })
}

// compressStream runs raw through a streaming compressor. The stream is
// only complete once Close has flushed it, so Close's error counts too.
func compressStream(tb testing.TB, raw []byte, open func(io.Writer) io.WriteCloser) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := open(&buf)
	if _, err := w.Write(raw); err != nil {
		tb.Fatal(err)
	}
	if err := w.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

func zstdCompress(tb testing.TB, raw []byte) []byte {
	tb.Helper()
	e, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		tb.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(raw, nil)
}

// xerialMagic opens a stream of snappy-java's SnappyOutputStream.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

// XerialFrame frames raw as snappy-java's SnappyOutputStream does, in
// blocks of at most block bytes; tests pick small blocks to cross block
// boundaries, or cut the result to make a truncated block.
func XerialFrame(raw []byte, block int) []byte {
	out := append([]byte{}, xerialMagic...)
	out = binary.BigEndian.AppendUint32(out, 1) // version
	out = binary.BigEndian.AppendUint32(out, 1) // compatible version
	for len(raw) > 0 {
		n := min(block, len(raw))
		enc := snappy.Encode(nil, raw[:n])
		out = binary.BigEndian.AppendUint32(out, uint32(len(enc)))
		out = append(out, enc...)
		raw = raw[n:]
	}
	return out
}
