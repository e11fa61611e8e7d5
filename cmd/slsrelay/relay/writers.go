package relay

import (
	"fmt"
	"path/filepath"

	"github.com/slsrelay/slsrelay/bench/slsfake"
	"github.com/slsrelay/slsrelay/shardwriter"
)

// newWriters builds the writers that deliver the WAL to SLS: to
// sls.endpoint, or to the in-process stand-in (sls.stand_in), which is
// started here. With catalog.static too: the static catalog only decides
// what the front end accepts; delivery is the same.
func (r *Relay) newWriters() (*shardwriter.Service, error) {
	sc := r.cfg.SLS
	opts := sc.Options
	opts.Catalog = shardwriter.CatalogOptions{StateFile: filepath.Join(r.cfg.DataDir, "catalog.json"), ShardRefresh: sc.ShardRefresh}
	opts.Logger = r.log
	if r.deps.SLSClient != nil {
		opts.HTTPClient = r.deps.SLSClient
	}
	if si := sc.StandIn; si != nil {
		if err := r.startStandIn(si); err != nil {
			return nil, err
		}
		// The stand-in speaks plain http; its region, unless sls.region
		// says otherwise, so that requests are signed v4 as on SLS.
		opts.Endpoint, opts.HTTPClient = "http://"+r.standIn.Endpoint(), r.standIn.HTTPClient()
		if opts.Region == "" {
			opts.Region = r.fakeCfg.Region
		}
	}
	w, err := shardwriter.New(r.wal, opts)
	if err != nil {
		return nil, fmt.Errorf("sls: %w", err)
	}
	return w, nil
}

// startStandIn runs the SLS stand-in in this process (sls.stand_in): a
// local trial's SLS, with its demo projects and keys.
func (r *Relay) startStandIn(si *StandInConfig) error {
	fcfg := slsfake.DefaultConfig()
	if si.Config != "" {
		var err error
		if fcfg, err = slsfake.LoadConfig(si.Config); err != nil {
			return fmt.Errorf("sls.stand_in.config: %w", err)
		}
	}
	fake, err := slsfake.New(fcfg)
	if err != nil {
		return fmt.Errorf("sls.stand_in: %w", err)
	}
	listen := si.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	if err := fake.Start(listen); err != nil {
		return fmt.Errorf("sls.stand_in.listen: %w", err)
	}
	r.standIn, r.fakeCfg = fake, fcfg
	return nil
}
