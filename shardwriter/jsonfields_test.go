package shardwriter

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// cvtExpand runs the scanner on v and returns its fields as strings.
func cvtExpand(j *jsExpander, v []byte) ([][2]string, bool) {
	fs, _, ok := j.expand(nil, nil, v)
	var out [][2]string
	for _, f := range fs {
		out = append(out, [2]string{string(f.key), string(f.val)})
	}
	return out, ok
}

func TestJSONFields(t *testing.T) {
	var j jsExpander
	// want lists key, value, key, value…; no want: not expanded (the value
	// stays content).
	f := func(name, in string, want ...string) {
		t.Helper()
		got, ok := cvtExpand(&j, []byte(in))
		var w [][2]string
		for i := 0; i+1 < len(want); i += 2 {
			w = append(w, [2]string{want[i], want[i+1]})
		}
		if ok != (len(want) > 0) || !reflect.DeepEqual(got, w) {
			t.Errorf("%s: %q: got %q (expanded %v), want %q", name, in, got, ok, w)
		}
		// The reference built on encoding/json agrees on valid UTF-8.
		if utf8.ValidString(in) {
			ref, refOK := cvtRefJSON([]byte(in))
			if refOK != ok || !reflect.DeepEqual(ref, got) {
				t.Errorf("%s: %q: encoding/json reference gives %q (%v)", name, in, ref, refOK)
			}
		}
	}
	f("object", `{"a":"x","b":1,"c":true,"d":false,"e":null}`, "a", "x", "b", "1", "c", "true", "d", "false", "e", "")
	f("order kept", `{"z":1,"a":2,"m":3}`, "z", "1", "a", "2", "m", "3")
	f("whitespace", " \t\r\n{ \"a\" :\n\"x\" ,\t\"b\": [ 1 , { \"c\" : \"d e\" } ] }\n", "a", "x", "b", `[1,{"c":"d e"}]`)
	f("nested object", `{"host":{"name":"web-1","ip":["10.0.0.1","::1"]},"n":{}}`, "host", `{"name":"web-1","ip":["10.0.0.1","::1"]}`, "n", "{}")
	f("nested kept as written", `{"a":{"s":"\u00e9\n\"","n":1.50E+3}}`, "a", `{"s":"\u00e9\n\"","n":1.50E+3}`)
	f("array value", `{"tags":["a","b"],"empty":[],"deep":[[[[]]]]}`, "tags", `["a","b"]`, "empty", "[]", "deep", "[[[[]]]]")
	f("escapes", `{"s":"tab\tquote\"slash\/back\\nl\nbs\bff\fcr\r"}`, "s", "tab\tquote\"slash/back\\nl\nbs\bff\fcr\r")
	f("unicode", `{"ключ":"значение","emoji":"\ud83d\ude00 😀","é":"\u00e9","lone":"\ud800x","lone low":"\udc00","hi hi":"\ud800\ud800"}`,
		"ключ", "значение", "emoji", "😀 😀", "é", "é", "lone", "\uFFFDx", "lone low", "\uFFFD", "hi hi", "\uFFFD\uFFFD")
	f("escaped key", `{"a\"b":1,"\u0041":2}`, `a"b`, "1", "A", "2")
	f("numbers as written", `{"i":-0,"f":3.14,"e":1e10,"E":-2.5E-3,"p":1e+2,"big":123456789012345678901234567890}`,
		"i", "-0", "f", "3.14", "e", "1e10", "E", "-2.5E-3", "p", "1e+2", "big", "123456789012345678901234567890")
	f("duplicated keys: first place, last value", `{"a":1,"b":2,"a":3}`, "a", "3", "b", "2")
	f("empty key skipped", `{"":1,"a":2}`, "a", "2")
	f("invalid UTF-8 kept", "{\"a\":\"\xff\xfe\"}", "a", "\xff\xfe")

	// Not expanded.
	f("empty object", `{}`)
	f("empty object with spaces", " { } ")
	f("only empty keys", `{"":1}`)
	f("array", `[{"a":1}]`)
	f("string", `"text"`)
	f("number", `42`)
	f("null", `null`)
	f("empty", ``)
	f("plain text", `GET /index.html 200`)
	f("text after", `{"a":1} x`)
	f("two objects", `{"a":1}{"b":2}`)
	f("trailing comma", `{"a":1,}`)
	f("missing colon", `{"a" 1}`)
	f("unquoted key", `{a:1}`)
	f("single quotes", `{'a':1}`)
	f("truncated", `{"a":"x`)
	f("truncated nested", `{"a":[1,2`)
	f("control character", "{\"a\":\"x\ny\"}")
	f("bad escape", `{"a":"\x"}`)
	f("short unicode escape", `{"a":"\u12"}`)
	f("leading zero", `{"a":01}`)
	f("bare dot", `{"a":1.}`)
	f("bare exponent", `{"a":1e}`)
	f("plus sign", `{"a":+1}`)
	f("NaN", `{"a":NaN}`)
	f("bad literal", `{"a":tru}`)
	f("mismatched brackets", `{"a":[1}`)
	f("nested trailing comma", `{"a":[1,]}`)
	f("nested bad key", `{"a":{1:2}}`)
	f("nested control", "{\"a\":[\"\t\"]}")
	f("BOM", "\ufeff{\"a\":1}")
}

func TestJSONFieldsManyKeys(t *testing.T) {
	var j jsExpander
	for _, n := range []int{jsLinearKeys - 1, jsLinearKeys, jsLinearKeys + 1, 200} {
		var b strings.Builder
		var want [][2]string
		b.WriteString("{")
		for i := range n {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
			want = append(want, [2]string{fmt.Sprint("k", i), fmt.Sprint(i * 10)})
		}
		for i := range n { // every key again: last value wins
			fmt.Fprintf(&b, `"k%d":%d,`, i, i*10)
		}
		b.WriteString(`"":0}`)
		for range 2 { // twice: the hash table is reused
			got, ok := cvtExpand(&j, []byte(b.String()))
			if !ok || !reflect.DeepEqual(got, want) {
				t.Fatalf("%d keys: got %d fields (%v)", n, len(got), ok)
			}
		}
	}
}

func TestJSONFieldsDepth(t *testing.T) {
	var j jsExpander
	// encoding/json accepts 10000 levels, counting the top-level object.
	for _, depth := range []int{jsMaxDepth - 1, jsMaxDepth} {
		v := `{"a":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "}"
		_, ok := cvtExpand(&j, []byte(v))
		_, refOK := cvtRefJSON([]byte(v))
		if ok != refOK || ok != (depth < jsMaxDepth) {
			t.Fatalf("depth %d: expanded %v, encoding/json %v", depth, ok, refOK)
		}
	}
	// Far deeper than the limit: rejected without recursion.
	v := `{"a":` + strings.Repeat("[", 1<<20) + "}"
	if _, ok := cvtExpand(&j, []byte(v)); ok {
		t.Fatal("expanded a value nested a million deep")
	}
}

// FuzzJSONFields checks the scanner against encoding/json on valid UTF-8,
// and that it never panics on anything.
func FuzzJSONFields(f *testing.F) {
	for _, s := range []string{
		`{"a":"x","b":1,"c":true,"d":null,"e":{"f":[1,2,{"g":"h"}]}}`,
		`{"a" : [ 1 , 2 ] , "a":"\u00e9\ud83d\ude00"}`,
		`{"":1,"k":-1.5e+3}`,
		`{"a":1} x`, `[1]`, `"s"`, `{}`, `{"a":"\ud800"}`, "{\"a\":\"\xff\"}",
		`{"@timestamp":"2024-01-02T03:04:05.678Z","message":"GET / 200","log":{"offset":1,"file":{"path":"/var/log/a"}},"tags":["x"]}`,
	} {
		f.Add([]byte(s))
	}
	var j jsExpander
	f.Fuzz(func(t *testing.T, v []byte) {
		got, ok := cvtExpand(&j, v)
		if ok && len(got) == 0 || !ok && got != nil {
			t.Fatalf("expanded %v with %d fields", ok, len(got))
		}
		for _, kv := range got {
			if kv[0] == "" {
				t.Fatalf("empty key in %q", got)
			}
		}
		if !utf8.Valid(v) {
			return
		}
		ref, refOK := cvtRefJSON(v)
		if ok != refOK || !reflect.DeepEqual(got, ref) {
			t.Fatalf("%q: scanner %q (%v), encoding/json %q (%v)", v, got, ok, ref, refOK)
		}
	})
}

// jsPlainRun's word-at-a-time search finds what a byte loop finds, for
// every byte value at every position of a word, after plain bytes of
// every kind (ASCII, ≥ 0x80, just above the control range).
func TestJSONPlainRun(t *testing.T) {
	slow := func(v []byte, i int) int {
		for i < len(v) && jsPlain[v[i]] {
			i++
		}
		return i
	}
	for _, fill := range []byte{'a', 0xff, 0x80, 0x20, '!', '#', ']'} {
		for n := range 20 {
			for pos := range n {
				for c := range 256 {
					v := bytes.Repeat([]byte{fill}, n)
					v[pos] = byte(c)
					for start := range min(n, 3) {
						if got, want := jsPlainRun(v, start), slow(v, start); got != want {
							t.Fatalf("fill %#x, %d bytes, %#x at %d, from %d: %d, want %d", fill, n, c, pos, start, got, want)
						}
					}
				}
			}
		}
	}
}
