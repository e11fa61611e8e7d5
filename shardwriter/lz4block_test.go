package shardwriter

import (
	"bytes"
	"testing"

	"github.com/pierrec/lz4/v4"
)

func TestLZ4Block(t *testing.T) {
	var e lz4Encoder
	f := func(name string, compress func(dst, src []byte) []byte, src []byte) {
		t.Run(name, func(t *testing.T) {
			prefix := []byte("kept")
			out := compress(append([]byte(nil), prefix...), src)
			if !bytes.Equal(out[:len(prefix)], prefix) {
				t.Fatalf("compress changed what dst held: %q", out[:len(prefix)])
			}
			got := make([]byte, len(src)+1)
			n, err := lz4.UncompressBlock(out[len(prefix):], got)
			if err != nil || !bytes.Equal(got[:n], src) {
				t.Fatalf("%d bytes decode to %d bytes, %v", len(src), n, err)
			}
		})
	}
	var lines []byte
	for _, l := range wbLines(2000, wbLineSize, cvtNow, 3) {
		lines = append(lines, l.value...)
	}
	for _, c := range []struct {
		name string
		src  []byte
	}{
		{"empty", nil}, {"one", []byte("x")}, {"14", bytes.Repeat([]byte("y"), 14)}, {"15", bytes.Repeat([]byte("y"), 15)},
		{"270", bytes.Repeat([]byte("z"), 270)}, {"log lines", lines}, {"log lines again", lines[:len(lines)/2]},
	} {
		f("encoder/"+c.name, e.compress, c.src)
		f("literals/"+c.name, lz4Literals, c.src)
	}
}
