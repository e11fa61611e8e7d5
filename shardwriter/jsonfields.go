package shardwriter

import (
	"bytes"
	"encoding/binary"
	"hash/maphash"
	"math/bits"
	"unicode/utf8"
)

// JSON expansion turns a record value holding a JSON object into one field
// per top-level key, as SLS's Kafka endpoint does for "<logstore>.json"
// topics and records with the header data-parse-format: json:
//
//   - string values are unquoted (escapes resolved; a lone UTF-16
//     surrogate becomes U+FFFD, as encoding/json does);
//   - numbers, true and false are kept as written;
//   - null becomes "";
//   - nested objects and arrays become their compact JSON text (whitespace
//     between tokens removed, strings kept as written);
//   - a key that appears twice keeps the place of its first appearance and
//     the value of its last, as JavaScript's JSON.parse: SLS shows one
//     column per key, and the last value is what most parsers keep;
//   - an empty key is skipped: an empty field name is not a valid one, and
//     "if any log entry is invalid, the entire request fails" (SLS's
//     PutLogs reference), which would cost the other logs of the group.
//
// Anything else — invalid JSON, text after the object, an array, a scalar,
// an object that yields no field ({} or only empty keys) — is not expanded
// and the caller keeps the value whole as field content. Strings are not
// checked for valid UTF-8: SLS stores bytes, and bytes are kept as sent.
//
// The scanner is hand-written: it reads the value once, slices strings
// without escapes and nested values without whitespace straight out of the
// record, and allocates nothing in the steady state. encoding/json's Decoder
// with UseNumber and RawMessage does the same job several times slower (see
// BenchmarkJSONFields).

// jsMaxDepth bounds the nesting of values, as encoding/json does: deeper
// values are treated as invalid JSON.
const jsMaxDepth = 10000

// jsLinearKeys is how many keys an object may have before duplicates are
// found through a hash table rather than among the earlier keys. Below it,
// a 64-bit filter of cheap key hashes skips the search for most new keys.
const jsLinearKeys = 48

// jsExpander expands JSON objects. It keeps its buffers between records; it
// is not safe for concurrent use.
type jsExpander struct {
	stack  []byte           // open containers of the nested value being scanned
	filter uint64           // jsKeyBit of the keys of the object so far
	seen   map[uint64]int32 // key hash → index in fields, for large objects
	seed   maphash.Seed
}

// expand appends to fs the fields of the JSON object v and returns them
// with ok set. Unescaped strings and compacted values are written to
// scratch, which is returned grown. When v is not an object yielding at
// least one field, ok is false and fs is returned as it was.
func (j *jsExpander) expand(fs []cvField, scratch []byte, v []byte) (_ []cvField, _ []byte, ok bool) {
	base := len(fs)
	i := jsSkipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return fs, scratch, false
	}
	i = jsSkipSpace(v, i+1)
	if i < len(v) && v[i] == '}' {
		return fs, scratch, false // {}: nothing to expand; keep it as content
	}
	j.filter = 0
	if j.seen != nil {
		clear(j.seen)
	}
	for {
		var key, val []byte
		if i >= len(v) || v[i] != '"' {
			return fs[:base], scratch, false
		}
		if key, scratch, i, ok = jsString(v, i, scratch); !ok {
			return fs[:base], scratch, false
		}
		i = jsSkipSpace(v, i)
		if i >= len(v) || v[i] != ':' {
			return fs[:base], scratch, false
		}
		i = jsSkipSpace(v, i+1)
		if i >= len(v) {
			return fs[:base], scratch, false
		}
		switch c := v[i]; c {
		case '"':
			val, scratch, i, ok = jsString(v, i, scratch)
		case '{', '[':
			start, spaced := i, false
			i, spaced, ok = j.skipNested(v, i)
			if ok {
				if spaced {
					n := len(scratch)
					scratch = jsCompact(scratch, v[start:i])
					val = scratch[n:]
				} else {
					val = v[start:i]
				}
			}
		case 't':
			val, i, ok = jsLiteral(v, i, "true")
		case 'f':
			val, i, ok = jsLiteral(v, i, "false")
		case 'n':
			_, i, ok = jsLiteral(v, i, "null")
			val = v[i:i] // null becomes ""
		default:
			start := i
			i, ok = jsNumber(v, i)
			val = v[start:i]
		}
		if !ok {
			return fs[:base], scratch, false
		}
		if len(key) > 0 {
			fs = j.add(fs, base, key, val)
		}
		i = jsSkipSpace(v, i)
		if i >= len(v) {
			return fs[:base], scratch, false
		}
		if v[i] == '}' {
			break
		}
		if v[i] != ',' {
			return fs[:base], scratch, false
		}
		i = jsSkipSpace(v, i+1)
	}
	if jsSkipSpace(v, i+1) != len(v) || len(fs) == base {
		return fs[:base], scratch, false
	}
	return fs, scratch, true
}

// add appends the field key=val to fs, or replaces the value of an earlier
// field of the same object (fs[base:]) with the same key.
func (j *jsExpander) add(fs []cvField, base int, key, val []byte) []cvField {
	obj := fs[base:]
	if len(obj) < jsLinearKeys {
		if bit := jsKeyBit(key); j.filter&bit == 0 {
			j.filter |= bit // a key never seen
		} else {
			for k := range obj {
				if bytes.Equal(obj[k].key, key) {
					obj[k].val = val
					return fs
				}
			}
		}
		fs = append(fs, cvField{key, val})
		if len(fs)-base == jsLinearKeys {
			j.index(fs[base:])
		}
		return fs
	}
	h := maphash.Bytes(j.seed, key)
	if k, hit := j.seen[h]; hit {
		if bytes.Equal(obj[k].key, key) {
			obj[k].val = val
			return fs
		}
		// A hash collision: rare enough to settle by a full scan.
		for k := range obj {
			if bytes.Equal(obj[k].key, key) {
				obj[k].val = val
				return fs
			}
		}
	} else {
		j.seen[h] = int32(len(obj))
	}
	return append(fs, cvField{key, val})
}

// jsKeyBit maps a non-empty key to one of 64 bits, from its length and
// its first and last bytes: enough to tell most keys of a document apart.
func jsKeyBit(key []byte) uint64 {
	h := uint(len(key))*0x9E3779B1 ^ uint(key[0])*0x85EBCA77 ^ uint(key[len(key)-1])*0xC2B2AE3D
	return 1 << (h >> 7 & 63)
}

// index fills the hash table with the keys of obj, all distinct, once the
// object grows past jsLinearKeys.
func (j *jsExpander) index(obj []cvField) {
	if j.seen == nil {
		j.seed = maphash.MakeSeed()
		j.seen = make(map[uint64]int32)
	}
	for k := range obj {
		h := maphash.Bytes(j.seed, obj[k].key)
		if _, dup := j.seen[h]; !dup {
			j.seen[h] = int32(k)
		}
	}
}

// jsSpace marks JSON's four whitespace bytes.
var jsSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}

func jsSkipSpace(v []byte, i int) int {
	for i < len(v) && jsSpace[v[i]] {
		i++
	}
	return i
}

// jsPlain marks the bytes that stand for themselves inside a JSON string:
// all but the quote, the backslash and control characters.
var jsPlain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// jsPlainRun returns the index of the first byte at or after v[i] that
// does not stand for itself in a string. Strings are most of a document's
// bytes, so it looks at eight bytes at a time: a word holds a quote, a
// backslash or a control character when one of these masks flags a byte
// (the classic "has zero byte" / "has byte less than" tricks; a flag can be
// wrong only above a right one, so the lowest flag is exact).
func jsPlainRun(v []byte, i int) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	for ; i+8 <= len(v); i += 8 {
		w := binary.LittleEndian.Uint64(v[i:])
		q, b := w^('"'*ones), w^('\\'*ones) // zero bytes where w has '"', '\\'
		m := (w-0x20*ones)&^w | (q-ones)&^q | (b-ones)&^b
		if m &= highs; m != 0 {
			return i + bits.TrailingZeros64(m)/8
		}
	}
	for i < len(v) && jsPlain[v[i]] {
		i++
	}
	return i
}

// jsString reads the string starting with the quote at v[i]. It returns
// its contents — a slice of v when it has no escapes, otherwise unescaped
// into scratch — and the index after the closing quote.
func jsString(v []byte, i int, scratch []byte) (s, _ []byte, end int, ok bool) {
	i++
	start := i
	i = jsPlainRun(v, i)
	if i >= len(v) {
		return nil, scratch, i, false
	}
	if v[i] == '"' {
		return v[start:i], scratch, i + 1, true
	}
	if v[i] != '\\' {
		return nil, scratch, i, false // a control character
	}
	n := len(scratch)
	scratch = append(scratch, v[start:i]...)
	for i < len(v) {
		c := v[i]
		switch {
		case c == '"':
			return scratch[n:], scratch, i + 1, true
		case c == '\\':
			if i+1 >= len(v) {
				return nil, scratch, i, false
			}
			switch e := v[i+1]; e {
			case '"', '\\', '/':
				scratch = append(scratch, e)
			case 'b':
				scratch = append(scratch, '\b')
			case 'f':
				scratch = append(scratch, '\f')
			case 'n':
				scratch = append(scratch, '\n')
			case 'r':
				scratch = append(scratch, '\r')
			case 't':
				scratch = append(scratch, '\t')
			case 'u':
				r, next, ok := jsUnicodeEscape(v, i)
				if !ok {
					return nil, scratch, i, false
				}
				scratch = utf8.AppendRune(scratch, r)
				i = next
				continue
			default:
				return nil, scratch, i, false
			}
			i += 2
		case jsPlain[c]:
			j := jsPlainRun(v, i+1)
			scratch = append(scratch, v[i:j]...)
			i = j
		default:
			return nil, scratch, i, false
		}
	}
	return nil, scratch, i, false
}

// jsUnicodeEscape decodes the \uXXXX escape at v[i], joining a surrogate
// pair written as two escapes. An unpaired surrogate decodes to U+FFFD.
// It returns the index after the escape (or pair).
func jsUnicodeEscape(v []byte, i int) (r rune, next int, ok bool) {
	r, ok = jsHex4(v, i+2)
	if !ok {
		return 0, i, false
	}
	next = i + 6
	if r < 0xD800 || r > 0xDFFF {
		return r, next, true
	}
	if r <= 0xDBFF && next+1 < len(v) && v[next] == '\\' && v[next+1] == 'u' {
		if lo, ok := jsHex4(v, next+2); ok && lo >= 0xDC00 && lo <= 0xDFFF {
			return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), next + 6, true
		}
	}
	return utf8.RuneError, next, true
}

// jsHex4 decodes the four hex digits at v[i:].
func jsHex4(v []byte, i int) (rune, bool) {
	if i+4 > len(v) {
		return 0, false
	}
	var r rune
	for _, c := range v[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// jsSkipString validates the string starting with the quote at v[i]
// without unescaping it, and returns the index after it.
func jsSkipString(v []byte, i int) (int, bool) {
	i++
	for {
		if i = jsPlainRun(v, i); i >= len(v) {
			return i, false
		}
		switch c := v[i]; {
		case c == '"':
			return i + 1, true
		case c == '\\':
			if i+1 >= len(v) {
				return i, false
			}
			switch v[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if _, ok := jsHex4(v, i+2); !ok {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default:
			return i, false
		}
	}
}

// jsLiteral checks that v[i:] starts with lit (true, false or null).
func jsLiteral(v []byte, i int, lit string) ([]byte, int, bool) {
	end := i + len(lit)
	if end > len(v) || string(v[i:end]) != lit {
		return nil, i, false
	}
	return v[i:end], end, true
}

// jsNumber checks the JSON number at v[i] and returns the index after it:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func jsNumber(v []byte, i int) (int, bool) {
	if i < len(v) && v[i] == '-' {
		i++
	}
	switch {
	case i < len(v) && v[i] == '0':
		i++
	case i < len(v) && '1' <= v[i] && v[i] <= '9':
		i = jsDigits(v, i+1)
	default:
		return i, false
	}
	if i < len(v) && v[i] == '.' {
		j := jsDigits(v, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(v) && (v[i] == 'e' || v[i] == 'E') {
		i++
		if i < len(v) && (v[i] == '+' || v[i] == '-') {
			i++
		}
		j := jsDigits(v, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func jsDigits(v []byte, i int) int {
	for i < len(v) && '0' <= v[i] && v[i] <= '9' {
		i++
	}
	return i
}

// skipNested validates the object or array starting at v[i] and returns
// the index after it, and whether whitespace separates any of its tokens.
// It keeps the open containers in j.stack rather than recursing, so a
// deeply nested value costs a byte per level.
func (j *jsExpander) skipNested(v []byte, i int) (end int, spaced, ok bool) {
	stack := j.stack[:0]
	defer func() { j.stack = stack[:0] }()
	// skip skips whitespace, noting that there was some. Beats and most
	// shippers write none: one byte compared, and on.
	skip := func(i int) int {
		if i < len(v) && jsSpace[v[i]] {
			spaced = true
			return jsSkipSpace(v, i)
		}
		return i
	}
	// Each turn of the loop reads one value at v[i], then the separators
	// and closing brackets that follow it.
	for {
		if i >= len(v) {
			return i, spaced, false
		}
		switch c := v[i]; c {
		case '{', '[':
			// encoding/json allows 10000 levels, counting the top-level
			// object this value belongs to.
			if len(stack) >= jsMaxDepth-1 {
				return i, spaced, false
			}
			stack = append(stack, c)
			i = skip(i + 1)
			if i < len(v) && v[i] == c+2 { // '{'+2 == '}', '['+2 == ']'
				stack = stack[:len(stack)-1]
				i, ok = i+1, true
				break
			}
			if c == '{' {
				if i, ok = jsSkipKey(v, i, skip); !ok {
					return i, spaced, false
				}
			}
			continue
		case '"':
			i, ok = jsSkipString(v, i)
		case 't':
			_, i, ok = jsLiteral(v, i, "true")
		case 'f':
			_, i, ok = jsLiteral(v, i, "false")
		case 'n':
			_, i, ok = jsLiteral(v, i, "null")
		default:
			i, ok = jsNumber(v, i)
		}
		if !ok {
			return i, spaced, false
		}
		// After a value: close containers, or move to the next element.
		for {
			if len(stack) == 0 {
				return i, spaced, true
			}
			i = skip(i)
			if i >= len(v) {
				return i, spaced, false
			}
			top := stack[len(stack)-1]
			if v[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if v[i] != ',' {
				return i, spaced, false
			}
			i = skip(i + 1)
			if top == '{' {
				if i, ok = jsSkipKey(v, i, skip); !ok {
					return i, spaced, false
				}
			}
			break
		}
	}
}

// jsSkipKey validates `"key" :` at v[i] and the whitespace after it.
func jsSkipKey(v []byte, i int, skip func(int) int) (int, bool) {
	if i >= len(v) || v[i] != '"' {
		return i, false
	}
	i, ok := jsSkipString(v, i)
	if !ok {
		return i, false
	}
	i = skip(i)
	if i >= len(v) || v[i] != ':' {
		return i, false
	}
	return skip(i + 1), true
}

// jsCompact appends the valid JSON value v to dst without the whitespace
// between its tokens.
func jsCompact(dst, v []byte) []byte {
	for i := 0; i < len(v); {
		c := v[i]
		if jsSpace[c] {
			i++
			continue
		}
		if c != '"' {
			dst = append(dst, c)
			i++
			continue
		}
		end, _ := jsSkipString(v, i)
		dst = append(dst, v[i:end]...)
		i = end
	}
	return dst
}
