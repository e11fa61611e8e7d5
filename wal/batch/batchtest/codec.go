package batchtest

import (
	"testing"

	"github.com/klauspost/compress/snappy"
)

// Codec is one way to compress a batch payload, as a producer would.
type Codec struct {
	Name     string
	ID       int8 // the codec bits of the batch or wrapper attributes
	Compress func(tb testing.TB, raw []byte) []byte
}

// The codecs Kafka defines. Snappy comes twice: Java producers frame it as
// snappy-java's SnappyOutputStream does (xerial), others write it raw.
var (
	None         = Codec{"none", 0, func(_ testing.TB, raw []byte) []byte { return raw }}
	Gzip         = Codec{"gzip", 1, gzipCompress}
	Snappy       = Codec{"snappy", 2, func(_ testing.TB, raw []byte) []byte { return snappy.Encode(nil, raw) }}
	SnappyXerial = Codec{"snappy-xerial", 2, func(_ testing.TB, raw []byte) []byte { return XerialFrame(raw, xerialTestBlock) }}
	LZ4          = Codec{"lz4", 3, lz4Compress}
	Zstd         = Codec{"zstd", 4, zstdCompress}
)

// Codecs lists every codec, in this order, for tests that run them all.
var Codecs = []Codec{None, Gzip, Snappy, SnappyXerial, LZ4, Zstd}

// xerialTestBlock is far smaller than snappy-java's 32 KiB blocks so that
// the records of a small test batch cross block boundaries.
const xerialTestBlock = 100
