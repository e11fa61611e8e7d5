package engine

import (
	"bytes"
	"crypto/tls"
	"reflect"
	"sync/atomic"
	"unsafe"
)

// crypto/tls keeps, for a connection's life, the buffer it reads records
// into (rawInput, grown to the largest record: about 24 KiB after one
// request of 16 KiB records) and the one it gathers handshake messages in
// (hand, the ClientHello's size). It never shrinks them and has no API to
// do so: after one Produce an idle SASL_SSL connection would hold 36 KiB,
// of which 24 are that record buffer. releaseTLSBuffers drops them while
// they are empty, so an idle connection holds none; the next record gets
// a new one.
//
// It reaches the unexported fields by name and type through reflect, and
// does nothing unless rawInput and hand are bytes.Buffers and input a
// bytes.Reader, as in every Go release since 1.12 (conn.go): a toolchain
// that changes them only loses the saving (BenchmarkIdleConns shows it).

// tlsConnBuffers are the offsets of the fields in tls.Conn; ok is false
// when they are not what releaseTLSBuffers expects.
var tlsConnBuffers = func() (b struct {
	rawInput, input, hand uintptr
	ok                    bool
}) {
	t := reflect.TypeFor[tls.Conn]()
	field := func(name string, want reflect.Type) (uintptr, bool) {
		f, ok := t.FieldByName(name)
		return f.Offset, ok && f.Type == want && len(f.Index) == 1
	}
	bufT, readerT := reflect.TypeFor[bytes.Buffer](), reflect.TypeFor[bytes.Reader]()
	var ok1, ok2, ok3 bool
	b.rawInput, ok1 = field("rawInput", bufT)
	b.input, ok2 = field("input", readerT)
	b.hand, ok3 = field("hand", bufT)
	b.ok = ok1 && ok2 && ok3
	return b
}()

// tlsRecordBuffersReleased counts the record buffers releaseTLSBuffers
// let go of, for tests.
var tlsRecordBuffersReleased atomic.Int64

// releaseTLSBuffers lets go of c's read buffers where they hold nothing.
// Only the goroutine that reads c may call it, between reads: crypto/tls
// touches these fields only inside Read and Handshake.
func releaseTLSBuffers(c *tls.Conn) {
	if !tlsConnBuffers.ok {
		return
	}
	p := unsafe.Pointer(c)
	raw := (*bytes.Buffer)(unsafe.Add(p, tlsConnBuffers.rawInput))
	input := (*bytes.Reader)(unsafe.Add(p, tlsConnBuffers.input))
	hand := (*bytes.Buffer)(unsafe.Add(p, tlsConnBuffers.hand))
	// input reads plaintext out of rawInput's memory: both go together.
	if raw.Len() == 0 && input.Len() == 0 && raw.Cap() > 0 {
		*raw, *input = bytes.Buffer{}, bytes.Reader{}
		tlsRecordBuffersReleased.Add(1)
	}
	if hand.Len() == 0 {
		*hand = bytes.Buffer{}
	}
}
