package slsfake

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// groupSummary is what PutLogs needs to know about a LogGroup body.
type groupSummary struct {
	logs             int
	minTime, maxTime uint32
}

// scanLogGroup checks that b is a well-formed LogGroup as SLS's log.proto
// defines it (proto2, so required fields must be present) and counts its
// logs, without building the message: PutLogs stores the bytes as they came
// and this keeps the bench's hot path free of allocations. With rules, it
// also applies SLS's content rules (validate.go); a rule's refusal comes
// back as an *APIError, a malformed message as a plain error.
//
//	LogGroup   { repeated Log Logs=1; optional string Category=2, Topic=3,
//	             Source=4, MachineUUID=5; repeated LogTag LogTags=6 }
//	Log        { required uint32 Time=1; repeated LogContent Contents=2;
//	             optional fixed32 TimeNs=4 }
//	LogContent { required string Key=1; required string Value=2 }  (LogTag alike)
func scanLogGroup(b []byte, rules *contentRules) (groupSummary, error) {
	var s groupSummary
	err := scanFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			if typ != protowire.BytesType {
				return errors.New("LogGroup.Logs is not length-delimited")
			}
			if rules != nil && s.logs >= rules.maxLogs {
				return badRequest("PostBodyTooLarge", fmt.Sprintf("Logs must be less than or equal to %d entries.", rules.maxLogs))
			}
			t, err := scanLog(v, rules)
			if err != nil {
				return wrapScan(fmt.Sprintf("log %d", s.logs), err)
			}
			if s.logs == 0 || t < s.minTime {
				s.minTime = t
			}
			s.maxTime = max(s.maxTime, t)
			s.logs++
		case 2, 3, 4, 5:
			if typ != protowire.BytesType {
				return fmt.Errorf("LogGroup field %d is not a string", num)
			}
			if rules != nil {
				if aerr := checkText(fmt.Sprintf("LogGroup field %d", num), v); aerr != nil {
					return aerr
				}
			}
		case 6:
			if typ != protowire.BytesType {
				return errors.New("LogGroup.LogTags is not length-delimited")
			}
			k, val, err := scanPair(v)
			if err != nil {
				return fmt.Errorf("tag: %w", err)
			}
			if rules != nil {
				if aerr := checkText("tag key", k); aerr != nil {
					return aerr
				}
				if aerr := checkText("tag value", val); aerr != nil {
					return aerr
				}
			}
		}
		return nil
	})
	return s, err
}

// wrapScan adds where a malformed field was; a rule's *APIError passes as
// it is, since its message already names the key.
func wrapScan(where string, err error) error {
	if _, ok := err.(*APIError); ok {
		return err
	}
	return fmt.Errorf("%s: %w", where, err)
}

func scanLog(b []byte, rules *contentRules) (uint32, error) {
	var t uint64
	hasTime := false
	err := scanFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		switch num {
		case 1:
			if typ != protowire.VarintType {
				return errors.New("Log.Time is not a varint")
			}
			t, _ = protowire.ConsumeVarint(v)
			hasTime = true
		case 2:
			if typ != protowire.BytesType {
				return errors.New("Log.Contents is not length-delimited")
			}
			k, val, err := scanPair(v)
			if err != nil || rules == nil {
				return err
			}
			if aerr := rules.checkKey(k); aerr != nil {
				return aerr
			}
			if aerr := checkValue(k, val); aerr != nil {
				return aerr
			}
		case 4:
			if typ != protowire.Fixed32Type {
				return errors.New("Log.TimeNs is not fixed32")
			}
		}
		return nil
	})
	if err == nil && !hasTime {
		err = errors.New("Log.Time is missing")
	}
	return uint32(t), err
}

// scanPair checks a LogContent or LogTag (both fields required strings)
// and returns its key and value.
func scanPair(b []byte) (key, value []byte, err error) {
	var hasKey, hasValue bool
	err = scanFields(b, func(num protowire.Number, typ protowire.Type, v []byte) error {
		if (num == 1 || num == 2) && typ != protowire.BytesType {
			return fmt.Errorf("field %d is not a string", num)
		}
		switch num {
		case 1:
			key, hasKey = v, true
		case 2:
			value, hasValue = v, true
		}
		return nil
	})
	if err == nil && (!hasKey || !hasValue) {
		err = errors.New("key or value is missing")
	}
	return key, value, err
}

// scanFields walks the fields of one message. For varints v holds the
// varint's bytes, for length-delimited fields the payload.
func scanFields(b []byte, fn func(protowire.Number, protowire.Type, []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("cannot read a field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		var v []byte
		switch typ {
		case protowire.BytesType:
			payload, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return fmt.Errorf("cannot read field %d: %w", num, protowire.ParseError(m))
			}
			v, n = payload, m
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return fmt.Errorf("cannot read field %d: %w", num, protowire.ParseError(n))
			}
			v = b[:n]
		}
		if err := fn(num, typ, v); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// appendLogGroupList wraps stored LogGroups into a LogGroupList
// (repeated LogGroup LogGroups = 1), which is what PullLogs answers.
func appendLogGroupList(dst []byte, groups [][]byte) []byte {
	for _, g := range groups {
		dst = protowire.AppendTag(dst, 1, protowire.BytesType)
		dst = protowire.AppendBytes(dst, g)
	}
	return dst
}

// lz4Literals encodes src as an LZ4 block made of a single literal run. The
// LZ4 block compressor gives up on incompressible input, yet the answer
// must still be an LZ4 block the SDK can decode.
func lz4Literals(src []byte) []byte {
	n := len(src)
	out := make([]byte, 0, n+n/255+2)
	if n < 15 {
		out = append(out, byte(n<<4))
	} else {
		out = append(out, 0xF0)
		rest := n - 15
		for ; rest >= 255; rest -= 255 {
			out = append(out, 255)
		}
		out = append(out, byte(rest))
	}
	return append(out, src...)
}
