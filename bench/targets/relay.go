package targets

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/configs"
	"github.com/slsrelay/slsrelay/engine"
)

// RelaySpec says which relay target to run. Both modes are the relay
// `make run` starts (configs/local.yaml, built by package relay); relayConfig
// names every way a target differs from it.
type RelaySpec struct {
	// Mode "e2e": the whole relay, delivering to the stand-in at
	// StandInAddr. Mode "ack": the same front end with a static catalog
	// and batches discarded instead of stored (ingest speed, nothing
	// stored or delivered).
	Mode       string `json:"mode"`
	Dir        string `json:"dir"`
	Project    string `json:"project"`
	Topic      string `json:"topic"`
	Partitions int32  `json:"partitions"`
	AKID       string `json:"akid"`
	Secret     string `json:"secret"`
	// StandInAddr is the stand-in's real address; StandInHost the SDK
	// endpoint host name it answers to.
	StandInAddr string `json:"standInAddr,omitempty"`
	StandInHost string `json:"standInHost,omitempty"`
	// SLSQuota keeps the writers paced to SLS's per-shard quota (5 MB/s,
	// 500 writes/s); off by default so the bench measures the relay.
	SLSQuota bool   `json:"slsQuota,omitempty"`
	Sync     string `json:"sync,omitempty"` // wal.sync: as configs/local.yaml unless set
}

// RelayInfo is where a started relay listens.
type RelayInfo struct {
	Plain string `json:"plain"`
	TLS   string `json:"tls"`
	CA    string `json:"ca"`
	PID   int    `json:"pid"`
}

// RelayStats is a sample of the relay's buffer.
type RelayStats struct {
	BacklogBytes int64   `json:"backlogBytes"` // undelivered, stored (compressed)
	DiskBytes    int64   `json:"diskBytes"`
	Pressure     float64 `json:"pressure"`
}

// Relay is an in-process relay.
type Relay struct {
	Info  RelayInfo
	relay *relay.Relay
}

// relayConfig is configs/local.yaml (what `make run` starts) with what a
// bench target must differ in, each named here.
func relayConfig(spec RelaySpec) (*relay.Config, relay.Deps, error) {
	cfg, err := relay.ParseConfig("configs/local.yaml", configs.Local)
	if err != nil {
		return nil, relay.Deps{}, err
	}
	var deps relay.Deps // logs are discarded: the bench reports, not the relay
	// A fresh directory per run, and ports the system picks (a `make run`
	// relay may hold the fixed ones).
	cfg.DataDir = spec.Dir
	for i := range cfg.Listeners {
		cfg.Listeners[i].Bind = "127.0.0.1:0"
		// The PLAINTEXT listener writes as the bench's project and key,
		// which the bench's stand-in serves (local.yaml: the demo ones).
		if cfg.Listeners[i].Project != "" {
			cfg.Listeners[i].Project, cfg.Listeners[i].AccessKeyID, cfg.Listeners[i].AccessKeySecret = spec.Project, spec.AKID, spec.Secret
		}
	}
	if cfg.Admin.Listen != "" {
		cfg.Admin.Listen = "127.0.0.1:0"
	}
	if spec.Sync != "" {
		cfg.WAL.SyncMode = spec.Sync
	}
	// The writers are not paced to SLS's per-shard quota unless asked:
	// the bench measures the relay, and its stand-in has no quota.
	if !spec.SLSQuota {
		cfg.SLS.ShardBytesPerSec, cfg.SLS.ShardRequestsPerSec = -1, -1
	}
	switch spec.Mode {
	case "e2e":
		// The stand-in runs in a process of its own (StandInChildFlag),
		// not in the relay's: the relay's CPU and RSS are its own.
		cfg.SLS.StandIn = nil
		// The stand-in speaks plain http and, as the in-process one of
		// `make run`, takes v4 signatures in its region.
		cfg.SLS.Endpoint, cfg.SLS.Region = "http://"+spec.StandInHost, slsfake.DefaultConfig().Region
		deps.SLSClient = slsfake.NewHTTPClient(spec.StandInAddr, hostOnly(spec.StandInHost))
		if os.Getenv(HoldEnv) != "" {
			// Delivery held: the writers' requests go where nothing
			// listens and are retried with back-off, and the catalog is
			// static (SLS is not asked): the ack path with its WAL, as
			// in e2e but for the writers' work.
			deps.SLSClient = slsfake.NewHTTPClient("127.0.0.1:1", hostOnly(spec.StandInHost))
			cfg.Catalog.Static = staticCatalog(spec)
		}
	case "ack":
		// The ack path alone: a static catalog (SLS is not asked) and
		// batches discarded where the WAL would store them, so the sls
		// section, though valid, is not used.
		cfg.Catalog.Static = staticCatalog(spec)
		deps.Appender = &engine.MemoryAppender{Discard: true}
	default:
		return nil, deps, fmt.Errorf("relay mode %q: want e2e or ack", spec.Mode)
	}
	return cfg, deps, nil
}

// staticCatalog serves spec's project, topic and key without asking SLS.
func staticCatalog(spec RelaySpec) *relay.StaticCatalogConfig {
	return &relay.StaticCatalogConfig{
		Projects:   map[string]map[string]int32{spec.Project: {spec.Topic: spec.Partitions}},
		AccessKeys: map[string]string{spec.AKID: spec.Secret},
	}
}

// StartRelay builds and starts a relay in this process.
func StartRelay(spec RelaySpec) (*Relay, error) {
	cfg, deps, err := relayConfig(spec)
	if err != nil {
		return nil, err
	}
	rl, err := relay.New(cfg, deps)
	if err != nil {
		return nil, err
	}
	if err := rl.Start(); err != nil {
		rl.Close()
		return nil, err
	}
	a := rl.Addrs()
	return &Relay{relay: rl, Info: RelayInfo{Plain: a.Listeners["PLAINTEXT"], TLS: a.Listeners["SASL_SSL"], CA: a.CA, PID: os.Getpid()}}, nil
}

func hostOnly(hostport string) string {
	for i := len(hostport) - 1; i >= 0; i-- {
		if hostport[i] == ':' {
			return hostport[:i]
		}
	}
	return hostport
}

// Stats samples the WAL (zero for the ack-path relay).
func (r *Relay) Stats() RelayStats {
	st := r.relay.Stats()
	return RelayStats{BacklogBytes: st.PendingBytes, DiskBytes: st.DiskBytes, Pressure: st.Pressure}
}

// Close shuts down as SIGTERM does: answer what was read (for up to 10 s),
// stop the writers at a clean position, close the WAL.
func (r *Relay) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return r.relay.Shutdown(ctx)
}

// ChildFlag is the flag cmd/slsbench re-executes itself with to run a
// relay as a child process (child.go), so the relay's CPU and RSS are its
// own and not mixed with the load generator's.
const ChildFlag = "-relay-child"

// RunRelayChild is the child's main: start the relay of specJSON, print its
// RelayInfo as a JSON line, then a RelayStats line every 250 ms, and shut
// down when stdin closes.
func RunRelayChild(specJSON string) error {
	var spec RelaySpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return err
	}
	stopProfile, err := profileChild(os.Getenv(ProfileEnv))
	if err != nil {
		return err
	}
	defer stopProfile()
	if os.Getenv(SchedEnv) != "" {
		defer printSchedLatencies()
	}
	r, err := StartRelay(spec)
	if err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	out.Encode(r.Info)
	done := stdinClosed()
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-done:
			return r.Close()
		case <-t.C:
			if out.Encode(r.Stats()) != nil {
				return r.Close()
			}
		}
	}
}

// ChildRelay is a relay running in a child process (see RunRelayChild).
type ChildRelay struct {
	Info  RelayInfo
	child *child
	mu    sync.Mutex // protects last
	last  RelayStats
}

// StartRelayChild runs exe ChildFlag spec and waits for its RelayInfo.
func StartRelayChild(exe string, spec RelaySpec) (*ChildRelay, error) {
	js, _ := json.Marshal(spec)
	// The child's alone (GODEBUG=gctrace=1, GOGC, GOMAXPROCS): the
	// bench's own would mix in.
	env := strings.Fields(os.Getenv(ChildEnv))
	r := &ChildRelay{}
	c, err := startChild("relay", exe, []string{ChildFlag, string(js)}, env, &r.Info, func(line []byte) {
		var st RelayStats
		if json.Unmarshal(line, &st) == nil {
			r.mu.Lock()
			r.last = st
			r.mu.Unlock()
		}
	})
	if err != nil {
		return nil, err
	}
	r.child, r.Info.PID = c, c.pid()
	return r, nil
}

// Stats is the child's latest sample.
func (c *ChildRelay) Stats() RelayStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.last
}

// Close stops the child (see child.close).
func (c *ChildRelay) Close() error { return c.child.close() }
