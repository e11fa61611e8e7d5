package shardwriter

import (
	"unicode/utf8"
)

// Sanitizing makes every log valid before it is sent: PutLogs fails the
// whole request when one log is invalid ("if any log entry is invalid, the
// entire request fails", PutLogs reference), so one bad field of one
// shipper would otherwise cost every log of the group.
//
// SLS's rules for a log's fields, from the data model
// (https://www.alibabacloud.com/help/doc-detail/48871.htm, "Content"):
//
//	"The key is a UTF-8 encoded string of up to 128 bytes in length. It can
//	contain letters, digits, and underscores (_). The key cannot start with
//	a digit or contain the following keywords: __time__, __source__,
//	__topic__, __partition_time__, _extract_others_, __extract_others__.
//	The value can be a string of up to 1,048,576 bytes in length."
//
// Whether live SLS enforces the key syntax (letters, digits, underscore) is
// unclear: SLS's own Kafka endpoint stores Beats' `@timestamp` and
// `@metadata` keys. Both readings are covered: by default (lenient) only
// what is surely refused is fixed — empty keys, reserved names, keys over
// 128 bytes, invalid UTF-8; with ConvertOptions.StrictKeys the syntax is
// enforced too.
//
// The one renaming rule: a key SLS would refuse becomes "_" followed by the
// key, each invalid UTF-8 byte (and, with StrictKeys, each character other
// than an ASCII letter, digit or underscore) replaced by "_", cut to 128
// bytes at a character boundary. "__time__" becomes "___time__", "" becomes
// "_", "1st" (strict) becomes "_1st", "@timestamp" (strict) becomes
// "__timestamp". The result is never reserved (no reserved name is "_"
// followed by a name that is refused) and always starts with "_".
//
// Values: invalid UTF-8 bytes become U+FFFD (each byte one U+FFFD, as
// utf8.DecodeRune reads them); a value over 1,048,576 bytes is cut at a
// character boundary and ends with svCutMarker; a whole log that would not
// fit in a LogGroup (LogGroupLimits.MaxBytes, below SLS's 5 MB per group)
// has its largest values cut the same way until it fits.
//
// Each change is counted in slsrelay_log_fixes_total{kind}. A valid log
// costs a scan of its keys and utf8.Valid of its values, and no allocation.
const (
	svMaxKeyBytes   = 128
	svMaxValueBytes = 1_048_576
)

// svCutMarker ends a value that was cut.
const svCutMarker = "…[cut]"

// svKind names one kind of fix, as counted in the metric.
type svKind int

const (
	svEmptyKey svKind = iota
	svReservedKey
	svLongKey
	svKeyEncoding
	svKeySyntax
	svValueEncoding
	svLongValue
	svLongLog
	svBadTime // a log time outside SLS's window at send time (sendtime.go)
	svKinds
)

var svKindNames = [svKinds]string{"empty_key", "reserved_key", "long_key", "key_encoding", "key_syntax",
	"value_encoding", "long_value", "long_log", "time_outside_window"}

// svReserved reports whether key is one of SLS's reserved names.
func svReserved(key []byte) bool {
	if len(key) < 8 || key[0] != '_' {
		return false
	}
	switch string(key) { // no allocation: the compiler compares in place
	case "__time__", "__source__", "__topic__", "__partition_time__", "_extract_others_", "__extract_others__":
		return true
	}
	return false
}

// svStrictByte reports whether b may appear in a key under the strict
// reading: an ASCII letter, digit or underscore.
func svStrictByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9'
}

// keyProblem returns why SLS would refuse key, or -1 if it takes it.
func (c *Converter) keyProblem(key []byte) svKind {
	switch {
	case len(key) == 0:
		return svEmptyKey
	case len(key) > svMaxKeyBytes:
		return svLongKey
	case svReserved(key):
		return svReservedKey
	}
	if c.opt.StrictKeys {
		if key[0] >= '0' && key[0] <= '9' {
			return svKeySyntax
		}
		for _, b := range key {
			if !svStrictByte(b) {
				if b >= utf8.RuneSelf && !utf8.Valid(key) {
					return svKeyEncoding
				}
				return svKeySyntax
			}
		}
		return -1
	}
	for _, b := range key {
		if b >= utf8.RuneSelf {
			if !utf8.Valid(key) {
				return svKeyEncoding
			}
			break
		}
	}
	return -1
}

// sanitize fixes fs in place so that SLS takes the log, and returns its
// body size (lgLogBodySize); fixed keys and values are written to
// c.scratch. maxLog bounds the encoded log (with its tag and length) at
// time sec.
func (c *Converter) sanitize(fs []cvField, sec uint32, maxLog int) int {
	for i := range fs {
		if len(fs[i].key) == len(cvContentKey) && &fs[i].key[0] == &cvContentKey[0] {
			// The converter's own key: valid. Only the value is checked.
			if len(fs[i].val) > svMaxValueBytes || !utf8.Valid(fs[i].val) {
				c.fixValue(&fs[i])
			}
			continue
		}
		f := &fs[i]
		if k := c.keyProblem(f.key); k >= 0 {
			f.key = c.renameKey(f.key)
			c.fixed(k)
		}
		if len(f.val) > svMaxValueBytes || !utf8.Valid(f.val) {
			c.fixValue(f)
		}
	}
	body := lgLogBodySize(sec, fs)
	if over := lgLogSize(body) - maxLog; over > 0 {
		c.fitLog(fs, over)
		c.fixed(svLongLog)
		body = lgLogBodySize(sec, fs)
	}
	return body
}

// fixValue repairs f's value if it is not UTF-8 and cuts it if it is too
// long.
func (c *Converter) fixValue(f *cvField) {
	if !utf8.Valid(f.val) {
		f.val = c.repairUTF8(f.val)
		c.fixed(svValueEncoding)
	}
	if len(f.val) > svMaxValueBytes {
		f.val = c.cutValue(f.val, svMaxValueBytes)
		c.fixed(svLongValue)
	}
}

// renameKey applies the renaming rule (see above) to key.
func (c *Converter) renameKey(key []byte) []byte {
	n := len(c.scratch)
	out := append(c.scratch, '_')
	for i := 0; i < len(key); {
		r, size := utf8.DecodeRune(key[i:])
		keep := !(r == utf8.RuneError && size == 1) && (!c.opt.StrictKeys || size == 1 && svStrictByte(key[i]))
		w := 1
		if keep {
			w = size
		}
		if len(out)-n+w > svMaxKeyBytes {
			break
		}
		if keep {
			out = append(out, key[i:i+size]...)
		} else {
			out = append(out, '_')
		}
		i += size
	}
	c.scratch = out
	return out[n:]
}

// repairUTF8 returns v with each invalid byte replaced by U+FFFD.
func (c *Converter) repairUTF8(v []byte) []byte {
	n := len(c.scratch)
	out := c.scratch
	for i := 0; i < len(v); {
		r, size := utf8.DecodeRune(v[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, v[i:i+size]...)
		}
		i += size
	}
	c.scratch = out
	return out[n:]
}

// cutValue returns v cut to at most limit bytes, ending with svCutMarker.
// v is valid UTF-8, and so is the result.
func (c *Converter) cutValue(v []byte, limit int) []byte {
	keep := max(limit-len(svCutMarker), 0)
	if keep > len(v) {
		keep = len(v)
	}
	for keep > 0 && keep < len(v) && !utf8.RuneStart(v[keep]) {
		keep--
	}
	n := len(c.scratch)
	c.scratch = append(append(c.scratch, v[:keep]...), svCutMarker...)
	return c.scratch[n:]
}

// fitLog cuts the largest values of fs until the log is at least over
// bytes smaller (or no value is left to cut).
func (c *Converter) fitLog(fs []cvField, over int) {
	for over > 0 {
		big := -1
		for i := range fs {
			if len(fs[i].val) > len(svCutMarker) && (big < 0 || len(fs[i].val) > len(fs[big].val)) {
				big = i
			}
		}
		if big < 0 {
			return
		}
		old := len(fs[big].val)
		// A varint shorter by a byte or two is ignored: it only helps.
		fs[big].val = c.cutValue(fs[big].val, max(old-over, 0))
		over -= old - len(fs[big].val)
	}
}

// fixed counts one fix of kind k.
func (c *Converter) fixed(k svKind) {
	logFixes[k].Inc()
	c.fixes[k]++
}
