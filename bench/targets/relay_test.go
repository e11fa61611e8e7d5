package targets

import (
	"reflect"
	"testing"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/configs"
	"github.com/slsrelay/slsrelay/engine"
)

// The relay targets are configs/local.yaml (what `make run` starts) with
// only the differences relayConfig names: applying exactly those to
// local.yaml must give the same configuration, so an override added
// without being named here fails.
func TestRelayTargetsAreMakeRun(t *testing.T) {
	f := func(spec RelaySpec, named func(*relay.Config)) {
		t.Helper()
		got, deps, err := relayConfig(spec)
		if err != nil {
			t.Fatal(err)
		}
		want, err := relay.ParseConfig("configs/local.yaml", configs.Local)
		if err != nil {
			t.Fatal(err)
		}
		want.DataDir = spec.Dir
		want.Listeners[0].Bind, want.Listeners[1].Bind = "127.0.0.1:0", "127.0.0.1:0"
		want.Listeners[0].Project, want.Listeners[0].AccessKeyID, want.Listeners[0].AccessKeySecret = spec.Project, spec.AKID, spec.Secret
		want.Admin.Listen = "127.0.0.1:0"
		want.SLS.ShardBytesPerSec, want.SLS.ShardRequestsPerSec = -1, -1
		named(want)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s target: config\n%+v\nwant\n%+v", spec.Mode, got, want)
		}
		if deps.Logger != nil || deps.Level != nil {
			t.Errorf("%s target: deps %+v, want the relay's defaults but for SLS and the appender", spec.Mode, deps)
		}
	}
	base := RelaySpec{Dir: t.TempDir(), Project: Project, Topic: Topic, Partitions: Partitions, AKID: AKID, Secret: Secret}
	e2e := base
	e2e.Mode, e2e.StandInAddr, e2e.StandInHost = "e2e", "127.0.0.1:1", slsfake.DefaultEndpointHost
	f(e2e, func(c *relay.Config) {
		c.SLS.StandIn, c.SLS.Endpoint, c.SLS.Region = nil, "http://"+slsfake.DefaultEndpointHost, slsfake.DefaultConfig().Region
	})
	ack := base
	ack.Mode = "ack"
	f(ack, func(c *relay.Config) {
		c.Catalog.Static = &relay.StaticCatalogConfig{
			Projects:   map[string]map[string]int32{Project: {Topic: Partitions}},
			AccessKeys: map[string]string{AKID: Secret},
		}
	})
	withQuota := e2e
	withQuota.SLSQuota, withQuota.Sync = true, "interval"
	f(withQuota, func(c *relay.Config) {
		c.SLS.StandIn, c.SLS.Endpoint, c.SLS.Region = nil, "http://"+slsfake.DefaultEndpointHost, slsfake.DefaultConfig().Region
		c.SLS.ShardBytesPerSec, c.SLS.ShardRequestsPerSec = 0, 0 // as local.yaml: the writers pace to SLS's quota
		c.WAL.SyncMode = "interval"
	})
	if _, deps, _ := relayConfig(ack); !reflect.DeepEqual(deps.Appender, &engine.MemoryAppender{Discard: true}) {
		t.Errorf("ack target: appender %#v, want one that discards", deps.Appender)
	}
	// Delivery held (profile.go): e2e with the static catalog, as SLS is
	// not reached.
	t.Setenv(HoldEnv, "1")
	f(e2e, func(c *relay.Config) {
		c.SLS.StandIn, c.SLS.Endpoint, c.SLS.Region = nil, "http://"+slsfake.DefaultEndpointHost, slsfake.DefaultConfig().Region
		c.Catalog.Static = &relay.StaticCatalogConfig{
			Projects:   map[string]map[string]int32{Project: {Topic: Partitions}},
			AccessKeys: map[string]string{AKID: Secret},
		}
	})
}
