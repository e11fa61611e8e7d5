package engine

// The PROXY protocol: a TCP load balancer (HAProxy's send-proxy and
// send-proxy-v2, cloud network load balancers) puts one header before the
// client's bytes, saying whose connection it forwards. The rules below are
// from HAProxy's specification, version 2.8
// (http://www.haproxy.org/download/2.8/doc/proxy-protocol.txt; Debian's
// haproxy package ships it as /usr/share/doc/haproxy/proxy-protocol.txt.gz),
// section 2.1 (v1, text) and 2.2 (v2, binary); cited as "spec 2.1" and
// "spec 2.2" below.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// errProxyIncomplete: the bytes so far are the start of a valid header;
// wait for more.
var errProxyIncomplete = errors.New("incomplete PROXY protocol header")

// proxyV2Signature starts every v2 header (spec 2.2).
var proxyV2Signature = []byte("\r\n\r\n\x00\r\nQUIT\n")

// proxyV1Prefix starts every v1 header (spec 2.1).
const proxyV1Prefix = "PROXY "

// proxyV1MaxLine: "If the CRLF sequence is not found in the first 107
// characters, the receiver should declare the line invalid" (spec 2.1).
const proxyV1MaxLine = 107

// proxyV2Fixed is the v2 header's fixed part: signature, version and
// command, family and transport, length (spec 2.2).
const proxyV2Fixed = 16

// parseProxyHeader reads the PROXY protocol header (v1 or v2) at the start
// of b. It returns the client's address, invalid (the zero AddrPort) when
// the header says the connection's own addresses stand (v1 UNKNOWN, v2
// LOCAL, v2 families and transports other than TCP over IPv4 or IPv6),
// and the header's length. errProxyIncomplete: b is a valid beginning,
// more bytes are needed. Any other error: not a valid header; the
// connection must be closed (spec 2.1: "Any sequence which does not
// exactly match the protocol must be discarded and cause the receiver to
// abort the connection").
func parseProxyHeader(b []byte) (netip.AddrPort, int, error) {
	switch {
	case startsLike(b, proxyV2Signature):
		if len(b) < len(proxyV2Signature) {
			return netip.AddrPort{}, 0, errProxyIncomplete
		}
		return parseProxyV2(b)
	case startsLike(b, []byte(proxyV1Prefix)):
		if len(b) < len(proxyV1Prefix) {
			return netip.AddrPort{}, 0, errProxyIncomplete
		}
		return parseProxyV1(b)
	}
	return netip.AddrPort{}, 0, fmt.Errorf("no PROXY protocol header: the connection starts with %s", printable(b, 16))
}

// startsLike reports whether b and prefix agree on their common length:
// b is prefix's beginning, or starts with prefix.
func startsLike(b, prefix []byte) bool {
	n := min(len(b), len(prefix))
	return bytes.Equal(b[:n], prefix[:n])
}

// parseProxyV1 reads a v1 header: one line of US-ASCII text,
// "PROXY TCP4|TCP6 <src> <dst> <srcport> <dstport>\r\n" with exactly one
// space between fields, or "PROXY UNKNOWN …\r\n" (spec 2.1).
func parseProxyV1(b []byte) (netip.AddrPort, int, error) {
	var none netip.AddrPort
	// The CR may be at most at index 105, its LF at 106: 107 bytes.
	crLimit := proxyV1MaxLine - 1
	end := -1
	for i := 0; i < len(b) && i < crLimit; i++ {
		switch b[i] {
		case '\n':
			// "The receiver must not tolerate a single CR or LF character
			// to end the line when a complete CRLF sequence is expected."
			return none, 0, errors.New("PROXY v1 line ends in LF without CR")
		case '\r':
			if i+1 == len(b) {
				return none, 0, errProxyIncomplete
			}
			if b[i+1] != '\n' {
				return none, 0, errors.New("PROXY v1 line holds a CR not followed by LF")
			}
			end = i
		}
		if end >= 0 {
			break
		}
	}
	if end < 0 {
		if len(b) < crLimit {
			return none, 0, errProxyIncomplete
		}
		return none, 0, fmt.Errorf("PROXY v1 line without CRLF in its first %d bytes", proxyV1MaxLine)
	}
	line, n := string(b[:end]), end+2
	fields := strings.Split(line, " ")
	// fields[0] is "PROXY": parseProxyHeader checked the prefix.
	switch fields[1] {
	case "UNKNOWN":
		// "the receiver must ignore anything presented before the CRLF
		// is found" and "SHOULD accept the connection and use the real
		// connection's parameters".
		return none, n, nil
	case "TCP4", "TCP6":
	default:
		return none, 0, fmt.Errorf("PROXY v1 protocol %s is not TCP4, TCP6 or UNKNOWN", printable([]byte(fields[1]), 16))
	}
	if len(fields) != 6 {
		return none, 0, fmt.Errorf("PROXY v1 %s line has %d space-separated fields, want 6", fields[1], len(fields))
	}
	src, err := parseProxyV1Addr(fields[2], fields[1] == "TCP4")
	if err != nil {
		return none, 0, fmt.Errorf("PROXY v1 source address: %w", err)
	}
	if _, err := parseProxyV1Addr(fields[3], fields[1] == "TCP4"); err != nil {
		return none, 0, fmt.Errorf("PROXY v1 destination address: %w", err)
	}
	srcPort, err := parseProxyV1Port(fields[4])
	if err != nil {
		return none, 0, fmt.Errorf("PROXY v1 source port: %w", err)
	}
	if _, err := parseProxyV1Port(fields[5]); err != nil {
		return none, 0, fmt.Errorf("PROXY v1 destination port: %w", err)
	}
	return netip.AddrPortFrom(src.Unmap(), srcPort), n, nil
}

// parseProxyV1Addr reads an address in its canonical form: IPv4 as four
// decimal numbers without leading zeros, IPv6 as hexadecimal groups with
// at most one "::" (spec 2.1), of the family the protocol names.
// netip.ParseAddr refuses IPv4 numbers with leading zeros; zones and IPv6
// with an embedded IPv4 dotted quad are not in the spec's form.
func parseProxyV1Addr(s string, v4 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, err
	case v4 && !a.Is4():
		return netip.Addr{}, fmt.Errorf("%q is not an IPv4 address", s)
	case !v4 && (!a.Is6() || a.Zone() != "" || strings.Contains(s, ".")):
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address in hexadecimal groups", s)
	}
	return a, nil
}

// parseProxyV1Port reads a port: decimal, 0 to 65535, no leading zeros
// (spec 2.1).
func parseProxyV1Port(s string) (uint16, error) {
	if s == "" || len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%q is not a port without leading zeros", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("%q is not a decimal port", s)
		}
	}
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("%q is not a port from 0 to 65535", s)
	}
	return uint16(p), nil
}

// Values of a v2 header's 13th and 14th bytes (spec 2.2).
const (
	proxyV2Version  = 0x2
	proxyV2Local    = 0x0
	proxyV2Proxy    = 0x1
	proxyV2Unspec   = 0x0
	proxyV2INET     = 0x1
	proxyV2INET6    = 0x2
	proxyV2UNIX     = 0x3
	proxyV2Stream   = 0x1
	proxyV2Datagram = 0x2
)

// parseProxyV2 reads a v2 header: the signature, version 2 and a command
// (LOCAL or PROXY), family and transport, the length of what follows, the
// addresses, and TLVs, which are skipped (spec 2.2).
func parseProxyV2(b []byte) (netip.AddrPort, int, error) {
	var none netip.AddrPort
	if len(b) < proxyV2Fixed {
		return none, 0, errProxyIncomplete
	}
	version, command := b[12]>>4, b[12]&0x0f
	family, transport := b[13]>>4, b[13]&0x0f
	n := proxyV2Fixed + int(binary.BigEndian.Uint16(b[14:16]))
	// "the receiver must only accept this value"; "Receivers must drop
	// connections presenting unexpected values here"; other families and
	// transports "must be rejected as invalid by receivers" — but for
	// LOCAL, whose receiver "must discard the protocol block including
	// the family which is ignored" (as the spec's sample receiver does).
	switch {
	case version != proxyV2Version:
		return none, 0, fmt.Errorf("PROXY v2 header of version %d", version)
	case command != proxyV2Local && command != proxyV2Proxy:
		return none, 0, fmt.Errorf("PROXY v2 header with command %d, neither LOCAL nor PROXY", command)
	case command == proxyV2Proxy && family > proxyV2UNIX:
		return none, 0, fmt.Errorf("PROXY v2 header with address family %d", family)
	case command == proxyV2Proxy && transport > proxyV2Datagram:
		return none, 0, fmt.Errorf("PROXY v2 header with transport protocol %d", transport)
	}
	// "The receiver must not start to parse an address before the whole
	// address block is received."
	if len(b) < n {
		return none, 0, errProxyIncomplete
	}
	// LOCAL: "the receiver must accept this connection as valid and must
	// use the real connection endpoints". Only TCP over IPv4 or IPv6 says
	// who a Kafka client is; other valid combinations fall back to the
	// connection's own addresses, as the spec allows ("provided that it
	// automatically falls back to the UNSPEC mode").
	if command == proxyV2Local || transport != proxyV2Stream {
		return none, n, nil
	}
	addrs := b[proxyV2Fixed:n]
	switch family {
	case proxyV2INET:
		if len(addrs) < 12 {
			return none, 0, fmt.Errorf("PROXY v2 TCP over IPv4 with %d address bytes, want 12", len(addrs))
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(addrs[0:4])), binary.BigEndian.Uint16(addrs[8:10])), n, nil
	case proxyV2INET6:
		if len(addrs) < 36 {
			return none, 0, fmt.Errorf("PROXY v2 TCP over IPv6 with %d address bytes, want 36", len(addrs))
		}
		// An IPv4 client forwarded as IPv6 (::ffff:a.b.c.d) is shown as
		// the IPv4 address it is.
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(addrs[0:16])).Unmap(), binary.BigEndian.Uint16(addrs[32:34])), n, nil
	}
	return none, n, nil // AF_UNSPEC or AF_UNIX over a stream
}

// printable quotes at most max bytes of b for a log line, anything but
// printable ASCII escaped.
func printable(b []byte, max int) string {
	if len(b) > max {
		b = b[:max]
	}
	return strconv.QuoteToASCII(string(b))
}
