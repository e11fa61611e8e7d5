package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

// Behind HAProxy (Debian's package, `make deps`) with the PROXY protocol:
// two shippers on 127.0.0.2 and 127.0.0.3 reach the relay only through
// HAProxy, which connects from 127.0.0.1, the one trusted address. Each
// listener has its own HAProxy: PLAINTEXT with send-proxy-v2, SASL_SSL
// with send-proxy (v1, the header before the TLS handshake). In SLS each
// log carries its own shipper's address as __source__, not HAProxy's. A
// shipper that connects to the relay directly is refused and counted.
func TestE2EProxyProtocolBehindHAProxy(t *testing.T) {
	haproxy := kafkatest.Tool(t, "haproxy", "/usr/sbin/haproxy", "/usr/local/sbin/haproxy")
	fronts := map[string]string{"PLAINTEXT": stableAddr(t), "SASL_SSL": stableAddr(t)}
	r := startTestRelay(t, func(c *relay.Config) {
		for i := range c.Listeners {
			l := &c.Listeners[i]
			l.Advertised = fronts[l.Name] // clients stay behind HAProxy
			l.ProxyProtocol = engine.ProxyProtocolOptions{Enabled: true, TrustedCIDRs: []string{"127.0.0.1/32"}}
		}
	})
	send := map[string]string{"PLAINTEXT": "send-proxy-v2", "SASL_SSL": "send-proxy"}
	for name, front := range fronts {
		kafkatest.StartHAProxy(t, haproxy, front, []kafkatest.HAProxyNode{
			{Addr: r.Addrs.Listeners[name], ReadyPort: portOf(r.Addrs.Admin), SendProxy: send[name]}})
	}

	shippers := []struct{ ip, clientID string }{{"127.0.0.2", "proxied-a"}, {"127.0.0.3", "proxied-b"}}
	for i, l := range []struct {
		name     string
		logstore string
		via      kafkatest.Listener
	}{
		{"PLAINTEXT", e2eStore(36), kafkatest.Listener{Addr: fronts["PLAINTEXT"]}},
		{"SASL_SSL", e2eStore(37), kafkatest.Listener{Addr: fronts["SASL_SSL"], User: relaytest.Project, Password: relaytest.Password}},
	} {
		t.Run(l.name+" via "+send[l.name], func(t *testing.T) {
			want := map[string]attributed{}
			var wg sync.WaitGroup
			errs := make(chan error, len(shippers))
			for s, sh := range shippers {
				dial := dialFrom(sh.ip)
				if l.name == "SASL_SSL" {
					dial = dialTLSFrom(sh.ip, r.TLS)
				}
				cl := newKgo(t, append(l.via.KgoOpts(), dial, kgo.ClientID(sh.clientID))...)
				var recs []sent
				for j := range 20 {
					id := e2eID(1000*i + 100*s + j)
					recs = append(recs, sent{ID: id, Partition: int32(j % 2), Value: []byte(fmt.Sprintf("%s from %s", id, sh.ip))})
					want[id] = attributed{source: sh.ip, tags: map[string]string{"client_id": sh.clientID}}
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := produceKgo(t, cl, l.logstore, recs); err != nil {
						errs <- fmt.Errorf("%s: %w", sh.ip, err)
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			r.waitLogs(t, relaytest.Project, l.logstore, len(want), e2eTimeout)
			got := r.storedAttribution(relaytest.Project, l.logstore)
			for id, w := range want {
				if g := got[id]; g.source != w.source || fmt.Sprint(g.tags) != fmt.Sprint(w.tags) {
					t.Errorf("log %s: __source__ %q tags %v; want %q %v", id, g.source, g.tags, w.source, w.tags)
				}
			}
		})
	}

	t.Run("a shipper connecting directly is refused", func(t *testing.T) {
		refusals := func() float64 {
			return scrape(t, r.Addrs.Admin).get("slsrelay_refusals_total", "reason", engine.RefusalProxyProtocol, "listener", "PLAINTEXT")
		}
		before := refusals()
		c, err := kafkatest.DialFrom(net.ParseIP("127.0.0.2"), r.Addrs.Listeners["PLAINTEXT"])
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Produce(e2eStore(36), 0, 1, "direct"); err == nil {
			t.Fatal("a direct connection from an untrusted address produced")
		}
		waitFor(t, e2eTimeout, "the refusal counted", func() bool { return refusals() > before })
	})
}

// dialTLSFrom makes a kgo client dial from local address ip over TLS with
// cfg (kgo takes either its own dialer or a TLS config, not both).
func dialTLSFrom(ip string, cfg *tls.Config) kgo.Opt {
	d := &tls.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}, Config: cfg.Clone()}
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		return d.DialContext(ctx, network, host)
	})
}
