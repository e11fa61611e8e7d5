package main

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
)

// printWelcome tells a person how to point a shipper at the relay.
func printWelcome(w io.Writer, cfg *relay.Config, a relay.Addrs) {
	fmt.Fprintln(w, "slsrelay is running.")
	for _, lc := range cfg.Listeners {
		name := lc.Name
		if name == "" {
			name = lc.Protocol
		}
		fmt.Fprintf(w, "  %-15s %s\n", lc.Protocol, a.Listeners[name])
	}
	if a.CA != "" {
		fmt.Fprintf(w, "  TLS CA for clients: %s\n", a.CA)
	}
	if s := cfg.Catalog.Static; s != nil {
		for project, stores := range s.Projects {
			var topics []string
			for name, n := range stores {
				topics = append(topics, fmt.Sprintf("%s (%d partitions)", name, n))
			}
			sort.Strings(topics)
			fmt.Fprintf(w, "  project (SASL username): %s\n  topics: %s\n", project, strings.Join(topics, ", "))
		}
		// A static catalog only serves local trials, so its demo keys are
		// printed whole; real AccessKeys never reach a log or the terminal.
		for akid, secret := range s.AccessKeys {
			fmt.Fprintf(w, "  SASL password: %s#%s\n", akid, secret)
		}
	}
	if a.StandIn != nil {
		fmt.Fprintf(w, "  SLS stand-in: http://%s (SDK endpoint %s)\n", a.StandIn.Addr(), a.StandIn.Endpoint())
		// With catalog.static, its projects were listed above.
		if cfg.Catalog.Static == nil {
			for _, p := range a.StandInConfig.Projects {
				var topics []string
				for _, ls := range p.Logstores {
					topics = append(topics, fmt.Sprintf("%s (%d partitions)", ls.Name, ls.ShardCount))
				}
				fmt.Fprintf(w, "  project (SASL username): %s\n  topics: %s; add .json for JSON fields\n", p.Name, strings.Join(topics, ", "))
			}
			// The stand-in's keys are demo keys, printed so a person can try it.
			for _, k := range a.StandInConfig.AccessKeys {
				fmt.Fprintf(w, "  SASL password: %s#%s\n", k.ID, k.Secret)
			}
		}
	}
}
