package engine

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// Listeners that take the PROXY protocol from 127.0.0.2 only: a header's
// source is the client's address (what is stored, the shipper view), over
// PLAINTEXT (gnet) and SASL_SSL (the header before the TLS handshake);
// connections from elsewhere or without a valid header are refused,
// counted and closed, and the listener keeps serving.
func TestProxyProtocolListeners(t *testing.T) {
	t.Parallel()
	r := startRelay(t, func(o *Options) {
		o.PartialFrameTimeout = 300 * time.Millisecond // the wait for a header
		for i := range o.Listeners {
			o.Listeners[i].Name = "PROXIED_" + o.Listeners[i].Name
			o.Listeners[i].ProxyProtocol = ProxyProtocolOptions{Enabled: true, TrustedCIDRs: []string{"127.0.0.2/32"}}
		}
	})
	plain, saslSSL := r.srv.Addr("PROXIED_PLAINTEXT"), r.srv.Addr("PROXIED_SASL_SSL")
	balancer := net.ParseIP("127.0.0.2")
	c1, c2 := netip.MustParseAddrPort("192.0.2.7:40001"), netip.MustParseAddrPort("[2001:db8::9]:40002")
	server := netip.MustParseAddrPort(plain)

	// dial connects from src and sends header, in two writes (a balancer
	// sends it at once, but TCP may deliver it in pieces). Write errors
	// are left to the reads: a connection refused at once is closed
	// before the header is written.
	dial := func(t *testing.T, src net.IP, addr string, header []byte) net.Conn {
		t.Helper()
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: src}}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		half := len(header) / 2
		_, _ = c.Write(header[:half])
		time.Sleep(20 * time.Millisecond)
		_, _ = c.Write(header[half:])
		return c
	}
	// stored checks that the last batch stored came from want.
	stored := func(t *testing.T, want string) {
		t.Helper()
		es := r.entries(testTopic, 0)
		if len(es) == 0 {
			t.Fatal("nothing stored")
		}
		if got := es[len(es)-1].Producer; got != want {
			t.Fatalf("the last batch stored came from %q, want %q", got, want)
		}
	}

	t.Run("PLAINTEXT v1", func(t *testing.T) {
		c := kafkatest.NewConn(dial(t, balancer, plain, []byte("PROXY TCP4 192.0.2.7 "+server.Addr().String()+" 40001 "+strconv.Itoa(int(server.Port()))+"\r\n")))
		if err := c.Produce(testTopic, 0, 1, "v1"); err != nil {
			t.Fatal(err)
		}
		stored(t, c1.String())
		shown := false
		for _, sh := range r.srv.Shippers() {
			shown = shown || sh.Address == c1.String()
		}
		if !shown {
			t.Errorf("the shipper view does not show %s: %+v", c1, r.srv.Shippers())
		}
	})
	t.Run("PLAINTEXT v2 IPv6", func(t *testing.T) {
		c := kafkatest.NewConn(dial(t, balancer, plain, proxyV2TCP6(c2, netip.MustParseAddrPort("[2001:db8::1]:9092"))))
		if err := c.Produce(testTopic, 0, 1, "v2"); err != nil {
			t.Fatal(err)
		}
		stored(t, c2.String())
	})
	t.Run("PLAINTEXT v2 LOCAL", func(t *testing.T) {
		raw := dial(t, balancer, plain, proxyV2(0x20, 0x00))
		if err := kafkatest.NewConn(raw).Produce(testTopic, 0, 1, "local"); err != nil {
			t.Fatal(err)
		}
		stored(t, raw.LocalAddr().String())
	})
	t.Run("SASL_SSL v2", func(t *testing.T) {
		raw := dial(t, balancer, saslSSL, proxyV2TCP4(c1, server))
		c := kafkatest.NewConn(tls.Client(raw, r.tls.Clone()))
		if err := c.Authenticate(testProject, testAKID+"#"+testSecret); err != nil {
			t.Fatal(err)
		}
		if err := c.Produce(testTopic, 0, 1, "tls"); err != nil {
			t.Fatal(err)
		}
		stored(t, c1.String())
	})

	// refused: a connection from src sending header is closed and a
	// proxy_protocol refusal saying detail is recorded.
	refused := func(t *testing.T, listener, addr string, src net.IP, header []byte, detail string) {
		t.Helper()
		before := refusalCount(RefusalProxyProtocol, listener, "")
		if _, err := kafkatest.NewConn(dial(t, src, addr, header)).WaitClosed(15 * time.Second); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the refusal counted", func() bool { return refusalCount(RefusalProxyProtocol, listener, "") > before })
		for _, rf := range r.srv.RecentRefusals() {
			if rf.Reason == RefusalProxyProtocol && strings.Contains(rf.Detail, detail) {
				return
			}
		}
		t.Errorf("no proxy_protocol refusal saying %q: %+v", detail, r.srv.RecentRefusals())
	}
	for _, l := range []struct{ name, addr string }{{"PROXIED_PLAINTEXT", plain}, {"PROXIED_SASL_SSL", saslSSL}} {
		t.Run(l.name+" refuses", func(t *testing.T) {
			refused(t, l.name, l.addr, net.ParseIP("127.0.0.1"), proxyV2TCP4(c1, server), "not in proxy_protocol.trusted_cidrs")
			refused(t, l.name, l.addr, balancer, kafkatest.EncodeRequest(1, kafkatest.ProduceValues(testTopic, 0, 1, "x")), "no PROXY protocol header")
			refused(t, l.name, l.addr, balancer, []byte("PROXY TCP4 192.0.2.07 10.0.0.1 1 2\r\n"), "source address")
			refused(t, l.name, l.addr, balancer, nil, "no complete PROXY protocol header")
			refused(t, l.name, l.addr, balancer, []byte("PROXY TCP4 192.0.2.7"), "no complete PROXY protocol header")
		})
	}
}

// TestProxyProtocolOptions: enabled needs trusted CIDRs that parse.
func TestProxyProtocolOptions(t *testing.T) {
	f := func(p ProxyProtocolOptions, wantErr string) {
		t.Helper()
		o := Options{Listeners: []ListenerOptions{{Name: "P", Protocol: Plaintext, Bind: "127.0.0.1:0", ProxyProtocol: p}}}
		o.setDefaults()
		err := o.validate()
		if wantErr == "" && err != nil || wantErr != "" && (err == nil || !strings.Contains(err.Error(), wantErr)) {
			t.Errorf("%+v: %v, want %q", p, err, wantErr)
		}
	}
	f(ProxyProtocolOptions{}, "")
	f(ProxyProtocolOptions{TrustedCIDRs: []string{"not checked when off"}}, "")
	f(ProxyProtocolOptions{Enabled: true, TrustedCIDRs: []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32"}}, "")
	f(ProxyProtocolOptions{Enabled: true}, "enabled needs trusted_cidrs")
	f(ProxyProtocolOptions{Enabled: true, TrustedCIDRs: []string{"192.0.2.7"}}, "/32")
}

// TestAcceptProxyMemory: reading a TLS listener's PROXY header costs a
// few hundred bytes per connection, not a buffer for the longest header
// there could be (64 KiB each, in a reconnect storm of thousands); a v2
// header with long TLVs is still read whole, and the bytes after it are
// the TLS layer's.
func TestAcceptProxyMemory(t *testing.T) {
	srv := &Server{opts: Options{PartialFrameTimeout: 5 * time.Second}}
	ln := &listener{opts: ListenerOptions{Name: "PROXIED"}, proxyTrusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	client := netip.MustParseAddrPort("192.0.2.7:40001")
	accept := func(header, after []byte) (net.Conn, string) {
		t.Helper()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		go c.Write(append(append([]byte(nil), header...), after...))
		s, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		pc, peer, ok := srv.acceptProxy(ln, s)
		if !ok {
			t.Fatal("refused")
		}
		return pc, peer
	}
	f := func(name string, header []byte) {
		t.Run(name, func(t *testing.T) {
			after := []byte("\x16\x03\x01 the ClientHello")
			pc, peer := accept(header, after)
			if peer != client.String() {
				t.Fatalf("peer %q, want %s", peer, client)
			}
			got := make([]byte, len(after))
			if _, err := io.ReadFull(pc, got); err != nil || !bytes.Equal(got, after) {
				t.Fatalf("after the header: %q, %v; want %q", got, err, after)
			}
		})
	}
	v1 := []byte("PROXY TCP4 192.0.2.7 10.0.0.1 40001 9092\r\n")
	f("v1", v1)
	f("v2 with 40 KiB of TLVs", proxyV2TCP4(client, netip.MustParseAddrPort("10.0.0.1:9092"), append([]byte{0x04, 0xa0, 0x00}, make([]byte, 0xa000)...)...))

	const conns = 50
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for range conns {
		accept(v1, nil)
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / conns
	t.Logf("%d bytes allocated per connection", per)
	if per > 16<<10 {
		t.Fatalf("%d bytes allocated per connection, want at most 16 KiB", per)
	}
}

// TestProxyTrustedMapped: a trusted CIDR written IPv4-mapped
// (::ffff:10.0.0.0/104) trusts the IPv4 balancers it names, whether the
// connection's address arrives as IPv4 or IPv4-mapped; an IPv6 prefix that
// is not a mapped one trusts no IPv4 address.
func TestProxyTrustedMapped(t *testing.T) {
	f := func(cidr, remote string, want bool) {
		t.Helper()
		p := ProxyProtocolOptions{Enabled: true, TrustedCIDRs: []string{cidr}}
		trusted, err := p.trusted()
		if err != nil {
			t.Fatalf("%s: %v", cidr, err)
		}
		ln := &listener{proxyTrusted: trusted}
		addr := net.TCPAddrFromAddrPort(netip.MustParseAddrPort(remote))
		if got := ln.trustsProxy(addr); got != want {
			t.Errorf("%s trusts %s: %v, want %v", cidr, remote, got, want)
		}
	}
	f("::ffff:10.0.0.0/104", "10.1.2.3:4000", true)
	f("::ffff:10.0.0.0/104", "[::ffff:10.1.2.3]:4000", true)
	f("::ffff:10.0.0.0/104", "192.0.2.7:4000", false)
	f("::ffff:192.0.2.7/128", "192.0.2.7:4000", true)
	f("10.0.0.0/8", "[::ffff:10.1.2.3]:4000", true)
	f("::/0", "10.1.2.3:4000", false)
	f("::/0", "[2001:db8::1]:4000", true)
}
