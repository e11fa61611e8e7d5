package batch

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// realWorldRecord is the i-th record every generator in
// realworld_gen_test.go produces.
func realWorldRecord(i int) (key, value []byte, ts time.Time) {
	return []byte(fmt.Sprintf("key-%d", i)),
		[]byte(fmt.Sprintf(`{"msg":"hello %d","level":"info","pad":"%0*d"}`, i, 40+i, i)),
		time.UnixMilli(1_700_000_000_000 + int64(i)*10)
}

const realWorldRecords = 5

// TestRealWorld validates and decodes partition data captured from real
// producers: franz-go's kgo (v2 batches, idempotent, every codec) and IBM
// sarama, the library Beats fork (v0 and v1 MessageSets).
func TestRealWorld(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "realworld", "*.bin"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no real-world captures: %v", err)
	}
	var d Decoder
	for _, file := range files {
		name := filepath.Base(file)
		t.Run(name, func(t *testing.T) {
			var producer, codec string
			var version int16
			var magic int8
			if _, err := fmt.Sscanf(strings.NewReplacer("-", " ", ".bin", "").Replace(name),
				"%s produce v%d magic%d %s", &producer, &version, &magic, &codec); err != nil {
				t.Fatalf("file name: %v", err)
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			info, err := Validate(data, ValidateOptions{ProduceVersion: version})
			if err != nil {
				t.Fatal(err)
			}
			if info.Magic != magic || codecName(info.Codec) != codec || info.Records != realWorldRecords {
				t.Fatalf("info %+v", info)
			}
			if producer == "sarama" && info.Unopened {
				// sarama leaves a magic 1 wrapper at offset 0, which
				// cannot be told from one message: opened and counted.
				t.Errorf("sarama's wrapper counted by its offset, info %+v", info)
			}
			if producer == "kgo" && (info.ProducerID < 0 || info.BaseSequence < 0) {
				t.Errorf("kgo is idempotent by default, info %+v", info)
			}
			got, err := decodeAll(t, &d, magic, data, DecodeOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != realWorldRecords {
				t.Fatalf("%d records", len(got))
			}
			for i, r := range got {
				k, v, ts := realWorldRecord(i)
				wantTS := ts.UnixMilli()
				if magic == 0 {
					wantTS = -1
				}
				if string(r.Key) != string(k) || string(r.Value) != string(v) || r.Timestamp != wantTS || r.OffsetDelta != int32(i) {
					t.Errorf("record %d: %+v", i, r)
				}
				if magic == 2 && (len(r.Headers) != 1 || r.Headers[0].Key != "data-parse-format" || string(r.Headers[0].Value) != "json") {
					t.Errorf("record %d headers %+v", i, r.Headers)
				}
			}
		})
	}
}
