package batch

import "fmt"

// A v2 record (varints are zigzag):
//
//	length varint | attributes int8 | timestampDelta varlong |
//	offsetDelta varint | keyLength varint | key | valueLength varint |
//	value | headerCount varint | headers
//
// and a header is keyLength varint | key | valueLength varint | value.
// length counts everything after itself.

// recordView is one parsed v2 record; its slices point into the batch (or
// the decompressed records).
type recordView struct {
	timestampDelta int64
	offsetDelta    int32
	key, value     []byte // nil when null
	numHeaders     int32
	headers        []byte // the encoded headers, already checked
}

// nextRecord parses the record at the start of b and returns it and the
// bytes after it. It checks the record the way Kafka's DefaultRecord.readFrom
// does: the body must hold exactly what the length says, lengths must fit,
// header count and header key lengths must not be negative. A negative key
// or value length means null, as in Kafka.
func nextRecord(b []byte) (r recordView, rest []byte, err error) {
	length, n := varint(b)
	if n == 0 {
		return r, nil, fmt.Errorf("bad length varint")
	}
	b = b[n:]
	if length < 0 || int64(length) > int64(len(b)) {
		return r, nil, fmt.Errorf("record length %d, but %d bytes are left", length, len(b))
	}
	body, rest := b[:length], b[length:]

	if len(body) < 1 {
		return r, nil, fmt.Errorf("record body is empty")
	}
	body = body[1:] // attributes: unused by Kafka
	if r.timestampDelta, n = varlong(body); n == 0 {
		return r, nil, fmt.Errorf("bad timestamp delta varlong")
	}
	body = body[n:]
	if r.offsetDelta, n = varint(body); n == 0 {
		return r, nil, fmt.Errorf("bad offset delta varint")
	}
	body = body[n:]
	if r.key, body, err = varBytes(body, "key"); err != nil {
		return r, nil, err
	}
	if r.value, body, err = varBytes(body, "value"); err != nil {
		return r, nil, err
	}
	if r.numHeaders, n = varint(body); n == 0 {
		return r, nil, fmt.Errorf("bad header count varint")
	}
	body = body[n:]
	if r.numHeaders < 0 {
		return r, nil, fmt.Errorf("invalid header count %d", r.numHeaders)
	}
	// Each header takes at least two bytes: a cheap bound that keeps a
	// huge count from looping long over a short body.
	if int64(r.numHeaders)*2 > int64(len(body)) {
		return r, nil, fmt.Errorf("%d headers cannot fit in %d bytes", r.numHeaders, len(body))
	}
	r.headers = body
	for i := int32(0); i < r.numHeaders; i++ {
		var k []byte
		if k, body, err = varBytes(body, "header key"); err != nil {
			return r, nil, err
		}
		if k == nil {
			return r, nil, fmt.Errorf("header %d has a null key", i)
		}
		if _, body, err = varBytes(body, "header value"); err != nil {
			return r, nil, err
		}
	}
	if len(body) != 0 {
		return r, nil, fmt.Errorf("%d bytes left inside the record after its headers", len(body))
	}
	return r, rest, nil
}

// nextHeader reads one header from b, which nextRecord already checked.
func nextHeader(b []byte) (key, value, rest []byte) {
	key, b, _ = varBytes(b, "")
	value, b, _ = varBytes(b, "")
	return key, value, b
}

// varBytes reads a varint length and that many bytes. A negative length is
// null (nil). what names the field in errors.
func varBytes(b []byte, what string) (v, rest []byte, err error) {
	l, n := varint(b)
	if n == 0 {
		return nil, nil, fmt.Errorf("bad %s length varint", what)
	}
	b = b[n:]
	if l < 0 {
		return nil, b, nil
	}
	if int64(l) > int64(len(b)) {
		return nil, nil, fmt.Errorf("%s length %d, but %d bytes are left", what, l, len(b))
	}
	return b[:l:l], b[l:], nil
}
