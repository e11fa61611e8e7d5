package engine

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// proxyV2 builds a v2 header: verCmd and fam as the 13th and 14th bytes,
// then body (addresses and TLVs) with its length.
func proxyV2(verCmd, fam byte, body ...[]byte) []byte {
	b := append([]byte(nil), proxyV2Signature...)
	b = append(b, verCmd, fam)
	rest := bytes.Join(body, nil)
	b = binary.BigEndian.AppendUint16(b, uint16(len(rest)))
	return append(b, rest...)
}

// proxyV2TCP4 is HAProxy's send-proxy-v2 header for src → dst, with tlvs.
func proxyV2TCP4(src, dst netip.AddrPort, tlvs ...byte) []byte {
	a := append(src.Addr().AsSlice(), dst.Addr().AsSlice()...)
	a = binary.BigEndian.AppendUint16(a, src.Port())
	a = binary.BigEndian.AppendUint16(a, dst.Port())
	return proxyV2(0x21, 0x11, a, tlvs)
}

func proxyV2TCP6(src, dst netip.AddrPort) []byte {
	s16, d16 := src.Addr().As16(), dst.Addr().As16()
	a := append(s16[:], d16[:]...)
	a = binary.BigEndian.AppendUint16(a, src.Port())
	a = binary.BigEndian.AppendUint16(a, dst.Port())
	return proxyV2(0x21, 0x21, a)
}

// proxyHeaderSeeds are valid headers of every kind, the fuzz seeds too.
func proxyHeaderSeeds() [][]byte {
	c, r := netip.MustParseAddrPort("192.0.2.7:51234"), netip.MustParseAddrPort("10.0.0.1:9092")
	c6, r6 := netip.MustParseAddrPort("[2001:db8::7]:51234"), netip.MustParseAddrPort("[2001:db8::1]:9092")
	return [][]byte{
		[]byte("PROXY TCP4 192.0.2.7 10.0.0.1 51234 9092\r\n"),
		[]byte("PROXY TCP6 2001:db8::7 2001:db8::1 51234 9092\r\n"),
		[]byte("PROXY UNKNOWN\r\n"),
		[]byte("PROXY UNKNOWN ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
		proxyV2TCP4(c, r),
		proxyV2TCP4(c, r, 0x04, 0, 2, 'h', 'i'), // a NOOP TLV
		proxyV2TCP6(c6, r6),
		proxyV2(0x20, 0x00),                    // LOCAL, as a balancer's health check
		proxyV2(0x20, 0x11, make([]byte, 12)),  // LOCAL with addresses, ignored
		proxyV2(0x21, 0x31, make([]byte, 216)), // UNIX stream: the connection's address
		proxyV2(0x21, 0x12, make([]byte, 12)),  // UDP: the connection's address
	}
}

func TestParseProxyHeader(t *testing.T) {
	const kafka = "\x00\x00\x00\x10kafka request..."
	c, r := netip.MustParseAddrPort("192.0.2.7:51234"), netip.MustParseAddrPort("10.0.0.1:9092")
	// f checks in; want is the source ("" for the connection's own), or
	// wantErr a substring of the error. The header is followed by a Kafka
	// request, which must not be counted in.
	f := func(name string, in []byte, want, wantErr string) {
		t.Helper()
		src, n, err := parseProxyHeader(append(append([]byte(nil), in...), kafka...))
		switch {
		case wantErr != "":
			if err == nil || !bytes.Contains([]byte(err.Error()), []byte(wantErr)) {
				t.Errorf("%s: error %v, want one saying %q", name, err, wantErr)
			}
		case err != nil:
			t.Errorf("%s: %v", name, err)
		case n != len(in):
			t.Errorf("%s: header of %d bytes, want %d", name, n, len(in))
		case want == "" && src.IsValid(), want != "" && src.String() != want:
			t.Errorf("%s: source %v, want %q", name, src, want)
		}
	}
	seeds := proxyHeaderSeeds()
	f("v1 TCP4", seeds[0], "192.0.2.7:51234", "")
	f("v1 TCP6", seeds[1], "[2001:db8::7]:51234", "")
	f("v1 UNKNOWN", seeds[2], "", "")
	f("v1 UNKNOWN, longest line", seeds[3], "", "")
	f("v1 port 0", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 0 9092\r\n"), "192.0.2.7:0", "")
	f("v1 IPv4-mapped IPv6 in hexadecimal", []byte("PROXY TCP6 ::ffff:c000:207 ::1 51234 9092\r\n"), "192.0.2.7:51234", "")
	f("v2 TCP4", seeds[4], "192.0.2.7:51234", "")
	f("v2 TCP4 with a TLV", seeds[5], "192.0.2.7:51234", "")
	f("v2 TCP6", seeds[6], "[2001:db8::7]:51234", "")
	f("v2 LOCAL", seeds[7], "", "")
	f("v2 LOCAL with addresses", seeds[8], "", "")
	f("v2 UNIX", seeds[9], "", "")
	f("v2 UDP", seeds[10], "", "")
	f("v2 IPv4-mapped", proxyV2TCP6(netip.AddrPortFrom(netip.AddrFrom16(c.Addr().As16()), c.Port()), r), "192.0.2.7:51234", "")

	f("no header (a Kafka request)", nil, "", "no PROXY protocol header")
	f("TLS ClientHello", []byte("\x16\x03\x01\x02\x00\x01"), "", "no PROXY protocol header")
	f("lower case", []byte("proxy TCP4 192.0.2.7 10.0.0.1 51234 9092\r\n"), "", "no PROXY protocol header")
	f("v1 two spaces", []byte("PROXY TCP4  192.0.2.7 10.0.0.1 51234 9092\r\n"), "", "fields")
	f("v1 LF alone", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 51234 9092\n"), "", "LF without CR")
	f("v1 CR alone", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 51234 9092\r"), "", "CR not followed by LF")
	f("v1 TCP5", []byte("PROXY TCP5 192.0.2.7 10.0.0.1 51234 9092\r\n"), "", "not TCP4, TCP6 or UNKNOWN")
	f("v1 leading zero in an address", []byte("PROXY TCP4 192.0.2.07 10.0.0.1 51234 9092\r\n"), "", "source address")
	f("v1 IPv6 under TCP4", []byte("PROXY TCP4 2001:db8::7 10.0.0.1 51234 9092\r\n"), "", "not an IPv4")
	f("v1 IPv4 under TCP6", []byte("PROXY TCP6 192.0.2.7 2001:db8::1 51234 9092\r\n"), "", "not an IPv6")
	f("v1 dotted IPv6", []byte("PROXY TCP6 ::ffff:192.0.2.7 2001:db8::1 51234 9092\r\n"), "", "not an IPv6")
	f("v1 zone", []byte("PROXY TCP6 fe80::1%eth0 2001:db8::1 51234 9092\r\n"), "", "not an IPv6")
	f("v1 bad destination", []byte("PROXY TCP4 192.0.2.7 10.0.0 51234 9092\r\n"), "", "destination address")
	f("v1 leading zero in a port", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 051234 9092\r\n"), "", "leading zeros")
	f("v1 port too large", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 65536 9092\r\n"), "", "0 to 65535")
	f("v1 signed port", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 +5 9092\r\n"), "", "decimal port")
	f("v1 bad destination port", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 51234 x\r\n"), "", "destination port")
	f("v1 too few fields", []byte("PROXY TCP4 192.0.2.7 10.0.0.1 51234\r\n"), "", "fields")
	f("v1 no CRLF in 107 bytes", append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("f"), 100)...), "", "without CRLF")
	f("v1 CRLF at 108", append(append([]byte("PROXY UNKNOWN "), bytes.Repeat([]byte("f"), 92)...), "\r\n"...), "", "without CRLF")
	f("v2 version 1", proxyV2(0x11, 0x11, make([]byte, 12)), "", "version 1")
	f("v2 command 2", proxyV2(0x22, 0x11, make([]byte, 12)), "", "command 2")
	f("v2 family 4", proxyV2(0x21, 0x41, make([]byte, 12)), "", "address family 4")
	f("v2 transport 3", proxyV2(0x21, 0x13, make([]byte, 12)), "", "transport protocol 3")
	// LOCAL: "discard the protocol block including the family which is
	// ignored" (spec 2.2, and its sample receiver).
	f("v2 LOCAL, family 4 ignored", proxyV2(0x20, 0x41), "", "")
	f("v2 LOCAL, transport 3 ignored", proxyV2(0x20, 0x13, make([]byte, 12)), "", "")
	f("v2 TCP4 short", proxyV2(0x21, 0x11, make([]byte, 11)), "", "want 12")
	f("v2 TCP6 short", proxyV2(0x21, 0x21, make([]byte, 12)), "", "want 36")

	// Every proper beginning of a valid header asks for more.
	for i, seed := range seeds {
		for n := 0; n < len(seed); n++ {
			if _, _, err := parseProxyHeader(seed[:n]); !errors.Is(err, errProxyIncomplete) {
				t.Errorf("seed %d cut to %d of %d bytes: %v, want errProxyIncomplete", i, n, len(seed), err)
				break
			}
		}
	}
}

// FuzzParseProxyHeader: any input is refused, asks for more, or is a
// header no longer than the input whose bytes parse the same when more
// follow; a header's source is a valid address or none.
func FuzzParseProxyHeader(f *testing.F) {
	for _, seed := range proxyHeaderSeeds() {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		src, n, err := parseProxyHeader(in)
		if err != nil {
			if n != 0 || src.IsValid() {
				t.Fatalf("error %v with a header of %d bytes and source %v", err, n, src)
			}
			if errors.Is(err, errProxyIncomplete) && len(in) >= proxyMaxHeader {
				t.Fatalf("%d bytes and still incomplete", len(in))
			}
			return
		}
		if n <= 0 || n > len(in) || n > proxyMaxHeader {
			t.Fatalf("header of %d bytes in %d", n, len(in))
		}
		again, n2, err := parseProxyHeader(append(append([]byte(nil), in[:n]...), "more"...))
		if err != nil || n2 != n || again != src {
			t.Fatalf("with more bytes after it: %v %d %v, want %v %d", again, n2, err, src, n)
		}
		if src.IsValid() && src.Addr().Is4In6() {
			t.Fatalf("source %v is an IPv4-mapped address", src)
		}
	})
}
