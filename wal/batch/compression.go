package batch

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/snappy"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
)

// Compression codecs, as in the low three attribute bits of both formats.
const (
	CodecNone   int8 = 0
	CodecGzip   int8 = 1
	CodecSnappy int8 = 2
	CodecLZ4    int8 = 3
	CodecZstd   int8 = 4 // magic 2 and Produce v7+ only
)

func codecName(c int8) string {
	switch c {
	case CodecNone:
		return "none"
	case CodecGzip:
		return "gzip"
	case CodecSnappy:
		return "snappy"
	case CodecLZ4:
		return "lz4"
	case CodecZstd:
		return "zstd"
	}
	return fmt.Sprintf("codec %d", c)
}

// decompressor decodes every Kafka codec into one reusable output buffer,
// keeping its readers between calls so steady-state decoding does not
// allocate. Not safe for concurrent use.
type decompressor struct {
	out     []byte
	src     bytes.Reader
	gz      *gzip.Reader
	lz      *lz4.Reader
	zs      *zstd.Decoder
	zsLimit int
	patched []byte // magic 0 lz4 frames with their header checksum fixed
}

// decompress decodes src, compressed with codec, and returns the result,
// valid until the next call. magic is the message format (it selects the lz4
// header quirk). More than limit bytes of output is errDecompressedTooLarge.
func (d *decompressor) decompress(codec, magic int8, src []byte, limit int) ([]byte, error) {
	switch codec {
	case CodecGzip:
		return d.gunzip(src, limit)
	case CodecSnappy:
		return d.unsnappy(src, limit)
	case CodecLZ4:
		return d.unlz4(src, magic, limit)
	case CodecZstd:
		return d.unzstd(src, limit)
	}
	return nil, fmt.Errorf("compression codec %d is unknown", codec)
}

func (d *decompressor) gunzip(src []byte, limit int) ([]byte, error) {
	d.src.Reset(src)
	var err error
	if d.gz == nil {
		d.gz, err = gzip.NewReader(&d.src)
	} else {
		err = d.gz.Reset(&d.src)
	}
	if err != nil {
		return nil, err
	}
	return d.readAll(d.gz, 4*len(src), limit)
}

func (d *decompressor) unlz4(src []byte, magic int8, limit int) ([]byte, error) {
	if magic == 0 {
		// Kafka before 0.10 computed the frame header checksum over the
		// frame magic too (KAFKA-3160), and its magic 0 readers ignore
		// the checksum. Recompute it, on a copy: data must stay as stored.
		d.patched = append(d.patched[:0], src...)
		fixLZ4HeaderChecksum(d.patched)
		src = d.patched
	}
	d.src.Reset(src)
	if d.lz == nil {
		d.lz = lz4.NewReader(&d.src)
	} else {
		d.lz.Reset(&d.src)
	}
	return d.readAll(d.lz, 4*len(src), limit)
}

func (d *decompressor) unzstd(src []byte, limit int) ([]byte, error) {
	if d.zs == nil || d.zsLimit != limit {
		if d.zs != nil {
			d.zs.Close()
		}
		// One goroutine-free decoder; the memory limit also caps the
		// window a frame may ask for.
		zs, err := zstd.NewReader(nil,
			zstd.WithDecoderConcurrency(1),
			zstd.WithDecoderLowmem(true),
			zstd.WithDecoderMaxMemory(uint64(limit)))
		if err != nil {
			return nil, err
		}
		d.zs, d.zsLimit = zs, limit
	}
	out, err := d.zs.DecodeAll(src, d.out[:0])
	if cap(out) > cap(d.out) && cap(out) <= 2*limit {
		d.out = out[:0]
	}
	switch {
	case errors.Is(err, zstd.ErrDecoderSizeExceeded), errors.Is(err, zstd.ErrWindowSizeExceeded):
		return nil, errDecompressedTooLarge
	case err != nil:
		return nil, err
	case len(out) > limit:
		return nil, errDecompressedTooLarge
	}
	return out, nil
}

// xerialMagic starts snappy data framed by the Java snappy-java
// SnappyOutputStream that the Java client uses: the magic, a version and a
// compatible-version int32, then blocks of int32 length + raw snappy block.
var xerialMagic = []byte{0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0}

const xerialHeaderLen = 16

func (d *decompressor) unsnappy(src []byte, limit int) ([]byte, error) {
	if len(src) < xerialHeaderLen || !bytes.Equal(src[:len(xerialMagic)], xerialMagic) {
		out, err := d.snappyBlock(d.out[:0], src, limit)
		if err == nil {
			d.out = out[:0]
		}
		return out, err
	}
	out := d.out[:0]
	for b := src[xerialHeaderLen:]; len(b) > 0; {
		if len(b) < 4 {
			return nil, fmt.Errorf("xerial snappy: %d bytes of partial block length", len(b))
		}
		n := be32(b)
		b = b[4:]
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("xerial snappy: block length %d, but %d bytes are left", n, len(b))
		}
		var err error
		if out, err = d.snappyBlock(out, b[:n], limit-len(out)); err != nil {
			return nil, err
		}
		b = b[n:]
	}
	d.out = out[:0]
	return out, nil
}

// maxSnappyRatio bounds what a snappy block can expand to: its longest
// element, a 3-byte copy, yields 64 bytes. A declared length past that is a
// lie, and trusting it would allocate for nothing.
const maxSnappyRatio = 22

// snappyBlock appends the decoding of one raw snappy block to dst.
func (d *decompressor) snappyBlock(dst, src []byte, limit int) ([]byte, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return nil, err
	}
	if n > limit {
		return nil, errDecompressedTooLarge
	}
	if n > maxSnappyRatio*len(src)+8 {
		return nil, fmt.Errorf("snappy block claims %d bytes from %d", n, len(src))
	}
	dst = grow(dst, n)
	got, err := snappy.Decode(dst[len(dst):len(dst)+n], src)
	if err != nil {
		return nil, err
	}
	// dst has room for n bytes, so Decode wrote in place.
	if len(got) != n {
		return nil, fmt.Errorf("snappy block decoded to %d bytes, declared %d", len(got), n)
	}
	return dst[:len(dst)+n], nil
}

// readAll reads r to EOF into d.out, failing once it passes limit. hint is
// the capacity to start from.
func (d *decompressor) readAll(r io.Reader, hint, limit int) ([]byte, error) {
	out := d.out[:0]
	if cap(out) < hint {
		out = make([]byte, 0, min(hint, limit+1))
	}
	for zeroReads := 0; ; {
		if len(out) == cap(out) {
			if len(out) > limit {
				d.out = out[:0]
				return nil, errDecompressedTooLarge
			}
			out = grow(out, min(len(out)+len(out)/2+512, limit+1-len(out)))
		}
		// Never read past limit+1: one byte over is enough to know.
		end := min(cap(out), limit+1)
		n, err := r.Read(out[len(out):end])
		out = out[:len(out)+n]
		// A reader that keeps returning nothing without an error would
		// spin here forever; io.ReadAll has the same guard in spirit.
		if n == 0 && err == nil {
			if zeroReads++; zeroReads > 100 {
				d.out = out[:0]
				return nil, io.ErrNoProgress
			}
		} else {
			zeroReads = 0
		}
		if len(out) > limit {
			d.out = out[:0]
			return nil, errDecompressedTooLarge
		}
		if err == io.EOF {
			d.out = out[:0]
			return out, nil
		}
		if err != nil {
			d.out = out[:0]
			return nil, err
		}
	}
}

// grow returns b with room for at least n more bytes.
func grow(b []byte, n int) []byte {
	if n <= cap(b)-len(b) {
		return b
	}
	nb := make([]byte, len(b), len(b)+max(n, len(b)))
	copy(nb, b)
	return nb
}

// Validate is a function, not a method, so it borrows decompressors (for
// compressed MessageSets) from a pool.
var decompressors = sync.Pool{New: func() any { return new(decompressor) }}

func getDecompressor() *decompressor { return decompressors.Get().(*decompressor) }

func putDecompressor(d *decompressor) {
	// Do not pin a one-off huge buffer in the pool.
	if cap(d.out) > 4<<20 {
		d.out = nil
	}
	if cap(d.patched) > 4<<20 {
		d.patched = nil
	}
	decompressors.Put(d)
}
