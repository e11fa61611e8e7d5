package shardwriter

import (
	"bytes"
	"encoding/json"
	"testing"

	sls "github.com/aliyun/aliyun-log-go-sdk"
	"github.com/gogo/protobuf/proto"
)

// cvtLog is a log as read back through the SDK's protobuf types.
type cvtLog struct {
	Time, TimeNs uint32
	Contents     [][2]string
}

// cvtGroup is a LogGroup as read back.
type cvtGroup struct {
	Logs          []cvtLog
	Topic, Source string
	Tags          [][2]string
}

// cvtParse decodes raw with the SDK's generated code, as SLS would.
func cvtParse(tb testing.TB, raw []byte) cvtGroup {
	tb.Helper()
	var lg sls.LogGroup
	if err := proto.Unmarshal(raw, &lg); err != nil {
		tb.Fatalf("the SDK cannot unmarshal the LogGroup: %v", err)
	}
	g := cvtGroup{Topic: lg.GetTopic(), Source: lg.GetSource()}
	for _, l := range lg.Logs {
		if l.Time == nil || l.TimeNs == nil {
			tb.Fatalf("log without Time or TimeNs: %v", l)
		}
		cl := cvtLog{Time: l.GetTime(), TimeNs: l.GetTimeNs()}
		for _, c := range l.Contents {
			cl.Contents = append(cl.Contents, [2]string{c.GetKey(), c.GetValue()})
		}
		g.Logs = append(g.Logs, cl)
	}
	for _, t := range lg.LogTags {
		g.Tags = append(g.Tags, [2]string{t.GetKey(), t.GetValue()})
	}
	return g
}

// cvtRefJSON expands v with encoding/json, following the rules of
// jsonfields.go: the reference the scanner is checked against, and the
// "SDK way" of the benchmarks. Strings with invalid UTF-8 differ (encoding/json
// replaces the bytes); callers compare only valid UTF-8.
func cvtRefJSON(v []byte) ([][2]string, bool) {
	if !json.Valid(v) {
		return nil, false
	}
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var out [][2]string
	var idx map[string]int
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, false
		}
		var val string
		switch raw[0] {
		case '"':
			if err := json.Unmarshal(raw, &val); err != nil {
				return nil, false
			}
		case 'n':
		case '{', '[':
			var b bytes.Buffer
			if err := json.Compact(&b, raw); err != nil {
				return nil, false
			}
			val = b.String()
		default:
			val = string(raw)
		}
		if key == "" {
			continue
		}
		if i, dup := idx[key]; dup {
			out[i][1] = val
			continue
		}
		if idx == nil {
			idx = map[string]int{}
		}
		idx[key] = len(out)
		out = append(out, [2]string{key, val})
	}
	if len(out) == 0 {
		return nil, false
	}
	return out, true
}

// cvtCollect is a flush function that keeps what it is given.
type cvtCollect struct {
	tb     testing.TB
	groups []cvtGroup
	sizes  []int // Size() at each flush
	fail   error
}

func (c *cvtCollect) flush(g *LogGroupBuilder) error {
	if c.fail != nil {
		return c.fail
	}
	c.sizes = append(c.sizes, g.Size())
	c.groups = append(c.groups, cvtParse(c.tb, g.Bytes("", "", nil)))
	g.Reset()
	return nil
}

// logs returns every log flushed, then those left in g.
func (c *cvtCollect) logs(g *LogGroupBuilder) []cvtLog {
	var out []cvtLog
	for _, grp := range c.groups {
		out = append(out, grp.Logs...)
	}
	return append(out, cvtParse(c.tb, g.Bytes("", "", nil)).Logs...)
}
