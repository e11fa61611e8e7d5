package main

import (
	"context"
	"fmt"
	"net"
	"runtime/debug"
	"sync"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/shardwriter"
)

// attributed is the attribution a log was stored with.
type attributed struct {
	source string
	tags   map[string]string
}

// storedAttribution returns the source and tags of each log of project's
// logstore as the stand-in stores them (what PullLogs returns), by the id
// it carries.
func (r *testRelay) storedAttribution(project, logstore string) map[string]attributed {
	out := map[string]attributed{}
	for _, l := range r.fake.Logs(project, logstore) {
		a := attributed{source: l.Source, tags: map[string]string{}}
		for _, tag := range l.Tags {
			a.tags[tag.Key] = tag.Value
		}
		for _, c := range l.Contents {
			if id := idPattern.FindString(c.Value); id != "" {
				out[id] = a
			}
		}
	}
	return out
}

// dialFrom makes a kgo client dial from local address ip.
func dialFrom(ip string) kgo.Opt {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return kgo.Dialer(func(ctx context.Context, network, host string) (net.Conn, error) {
		return d.DialContext(ctx, network, host)
	})
}

// Two shippers on two loopback addresses with their own client.id write
// the same topic at the same time: in SLS each log carries its own
// shipper's address as __source__ and its client.id as __tag__:client_id
// (the defaults).
func TestE2EAttribution(t *testing.T) {
	r := startTestRelay(t)
	const logstore = "e2e-39"
	shippers := []struct{ ip, clientID string }{{"127.0.0.2", "shipper-a"}, {"127.0.0.3", "shipper-b"}}
	const perShipper = 40
	want := map[string]attributed{}
	var wg sync.WaitGroup
	errs := make(chan error, len(shippers))
	for s, sh := range shippers {
		cl := newKgo(t, append(r.kgoOpts(lPlain, ""), dialFrom(sh.ip), kgo.ClientID(sh.clientID))...)
		var recs []sent
		for i := range perShipper {
			id := e2eID(s*perShipper + i)
			recs = append(recs, sent{ID: id, Partition: int32(i % 2), Value: []byte(fmt.Sprintf("%s from %s", id, sh.clientID))})
			want[id] = attributed{source: sh.ip, tags: map[string]string{"client_id": sh.clientID}}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			// In small batches, so that the two shippers' batches
			// interleave in each partition's stream.
			for i := 0; i < len(recs); i += 4 {
				if err := produceKgo(t, cl, logstore, recs[i:i+4]); err != nil {
					errs <- fmt.Errorf("%s: %w", sh.clientID, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	r.waitLogs(t, relaytest.Project, logstore, len(want), e2eTimeout)
	got := r.storedAttribution(relaytest.Project, logstore)
	if len(got) != len(want) {
		t.Fatalf("read back %d logs with an id, want %d", len(got), len(want))
	}
	for id, w := range want {
		g := got[id]
		if g.source != w.source || fmt.Sprint(g.tags) != fmt.Sprint(w.tags) {
			t.Errorf("log %s: __source__ %q tags %v; want %q %v", id, g.source, g.tags, w.source, w.tags)
		}
	}
}

// With every tag configured, each log carries who sent it: a relay user's
// (SCRAM) its user name and franz-go's default software name and version,
// an AccessKey login's (SASL PLAIN) its username, the Project; a client
// without SASL no user tag and the software it named.
func TestE2EAttributionTags(t *testing.T) {
	t.Parallel()
	r := startUsersRelay(t, func(c *relay.Config) {
		c.SLS.Tags = []string{shardwriter.TagClientID, shardwriter.TagSASLUser, shardwriter.TagClientSoftware}
	})
	kgoDefault := "kgo/" + kgoVersion()
	f := func(name string, first int, project, logstore string, cl *kgo.Client, want map[string]string) {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			recs := userRecs(first, 6, name)
			if err := produceKgo(t, cl, logstore, recs); err != nil {
				t.Fatalf("produce: %v", err)
			}
			r.waitStored(t, project, logstore, recs)
			got := r.storedAttribution(project, logstore)
			for _, rec := range recs {
				if g := got[rec.ID]; fmt.Sprint(g.tags) != fmt.Sprint(want) || g.source != "127.0.0.1" {
					t.Errorf("log %s: __source__ %q tags %v; want 127.0.0.1 %v", rec.ID, g.source, g.tags, want)
				}
			}
		})
	}
	f("relay user", 0, usersProject, "u-app-1",
		r.kgoAs(t, "SASL_PLAINTEXT", scramMechanism(engine.SCRAMSHA256, web01, web01Password), nil, kgo.ClientID("tags-user")),
		map[string]string{"client_id": "tags-user", "sasl_user": web01, "client_software": kgoDefault})
	f("AccessKey login", 100, relaytest.Project, e2eStore(34),
		r.kgoAs(t, "SASL_SSL", plain.Auth{User: relaytest.Project, Pass: relaytest.Password}.AsMechanism(), nil, kgo.ClientID("tags-key")),
		map[string]string{"client_id": "tags-key", "sasl_user": relaytest.Project, "client_software": kgoDefault})
	f("no SASL", 200, relaytest.Project, e2eStore(35),
		r.kgoAs(t, "PLAINTEXT", nil, nil, kgo.ClientID("tags-plain"), kgo.SoftwareNameAndVersion("my-shipper", "1.2.3")),
		map[string]string{"client_id": "tags-plain", "client_software": "my-shipper/1.2.3"})
}

// kgoVersion is the version franz-go sends by default in ApiVersions v3
// (KIP-511): its module's, from the build information, as kgo reads it.
func kgoVersion() string {
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range info.Deps {
			if dep.Path == "github.com/twmb/franz-go" {
				return dep.Version
			}
		}
	}
	return "unknown"
}
