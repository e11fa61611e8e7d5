package engine

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
	"github.com/slsrelay/slsrelay/wal"
)

// discardTransport records what a session sends and nothing else.
type discardTransport struct {
	sent   int
	closed bool
}

func (d *discardTransport) send(b []byte, closeAfter bool) {
	d.sent++
	d.closed = d.closed || closeAfter
}
func (d *discardTransport) resume()      {}
func (d *discardTransport) close()       { d.closed = true }
func (d *discardTransport) backlog() int { return 0 }

// fuzzSession is a session on a server that is not listening, driven
// synchronously: the catalog and appender answer at once.
func fuzzSession(t testing.TB, sasl bool) (*session, *discardTransport) {
	proto := Plaintext
	if sasl {
		proto = SASLPlaintext
	}
	srv, err := New(Options{
		Listeners: []ListenerOptions{{Protocol: proto, Bind: "127.0.0.1:9092", Principal: &Principal{
			Project: testProject, Credential: wal.Credential{AccessKeyID: testAKID, AccessKeySecret: testSecret}}}},
		MaxInFlightPerConn: 1 << 20,
		Logger:             testLogger(),
	}, testCatalog(), &MemoryAppender{Discard: true})
	if err != nil {
		t.Fatal(err)
	}
	ln := srv.listeners[0]
	ln.advertised = hostPort{"127.0.0.1", 9092}
	tr := &discardTransport{}
	return newSession(srv, ln, tr, "fuzz", false), tr
}

// FuzzSession feeds a byte stream, split into frames as a transport does,
// through the whole protocol core: header parsing, every request body the
// relay decodes, SASL tokens and Produce validation. The first byte picks
// a SASL or a plaintext listener. Nothing may panic or hang.
func FuzzSession(f *testing.F) {
	for _, seed := range sessionSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		s, tr := fuzzSession(t, in[0]&1 == 1)
		in = in[1:]
		for len(in) >= 4 && !tr.closed {
			size := int(int32(binary.BigEndian.Uint32(in)))
			if size < 0 || size > s.maxFrame() || size > len(in)-4 {
				return // a transport closes the connection here
			}
			frame := append([]byte(nil), in[4:4+size]...)
			in = in[4+size:]
			s.handle(frame)
		}
	})
}

// sessionSeeds are well-formed conversations: each API at each version,
// and a SASL exchange of both handshake versions followed by a Produce.
func sessionSeeds() [][]byte {
	var seeds [][]byte
	conv := func(sasl bool, frames ...[]byte) {
		b := []byte{0}
		if sasl {
			b[0] = 1
		}
		for _, f := range frames {
			b = append(b, f...)
		}
		seeds = append(seeds, b)
	}
	rawToken := func(tok string) []byte {
		return append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...)
	}
	topic := testTopic
	for v := int16(0); v <= 13; v++ {
		md := kmsg.NewPtrMetadataRequest()
		md.Version = v
		mt := kmsg.NewMetadataRequestTopic()
		mt.Topic = &topic
		md.Topics = append(md.Topics, mt)
		conv(false, kafkatest.EncodeRequest(1, md))

		magicBatch := kafkatest.RecordBatch("a", "b")
		pr := kafkatest.ProduceRequest(v, 1, testTopic, map[int32][]byte{0: magicBatch, 1: magicBatch})
		conv(false, kafkatest.EncodeRequest(2, pr))
	}
	for v := int16(0); v <= 5; v++ {
		av := kmsg.NewPtrApiVersionsRequest()
		av.Version, av.ClientSoftwareName, av.ClientSoftwareVersion = v, "fuzz", "1"
		ip := kmsg.NewPtrInitProducerIDRequest()
		ip.Version = v
		conv(false, kafkatest.EncodeRequest(1, av), kafkatest.EncodeRequest(2, ip))
	}
	hs0 := kmsg.NewPtrSASLHandshakeRequest()
	hs0.Mechanism = "PLAIN"
	conv(true, kafkatest.EncodeRequest(1, hs0), rawToken("\x00"+testProject+"\x00"+testAKID+"#"+testSecret),
		kafkatest.EncodeRequest(2, kafkatest.ProduceRequest(3, -1, testTopic, map[int32][]byte{0: kafkatest.RecordBatch("x")})))
	for v := int16(0); v <= 2; v++ {
		hs1 := kmsg.NewPtrSASLHandshakeRequest()
		hs1.Version, hs1.Mechanism = 1, "PLAIN"
		auth := kmsg.NewPtrSASLAuthenticateRequest()
		auth.Version = v
		auth.SASLAuthBytes = []byte("\x00" + testProject + "\x00" + testAKID + "#" + testSecret)
		conv(true, kafkatest.EncodeRequest(1, hs1), kafkatest.EncodeRequest(2, auth), kafkatest.EncodeRequest(3, kmsg.NewPtrMetadataRequest()))
	}
	return seeds
}

// TestWriteSessionSeeds refreshes the committed seed corpus when
// SLSRELAY_WRITE_SEEDS=1 (go test -run TestWriteSessionSeeds ./engine/).
func TestWriteSessionSeeds(t *testing.T) {
	if os.Getenv("SLSRELAY_WRITE_SEEDS") != "1" {
		t.Skip("set SLSRELAY_WRITE_SEEDS=1 to rewrite testdata/fuzz/FuzzSession")
	}
	dir := filepath.Join("testdata", "fuzz", "FuzzSession")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for i, s := range sessionSeeds() {
		var b strings.Builder
		b.WriteString("go test fuzz v1\n[]byte(")
		b.WriteString(strconvQuote(s))
		b.WriteString(")\n")
		if err := os.WriteFile(filepath.Join(dir, "seed"+itoa(i)), []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func strconvQuote(b []byte) string { return strconv.Quote(string(b)) }
func itoa(i int) string            { return strconv.Itoa(i) }
