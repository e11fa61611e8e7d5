package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay"
	"github.com/slsrelay/slsrelay/engine"
)

const clientsUsage = `usage: slsrelay clients [-config FILE | -admin HOST:PORT] [-json]
  the shippers connected to the running relay, busiest first: address,
  client.id, software, SASL user, topics, records/s, bytes/s, throttle and
  last error (from its admin listener's /shippers)`

// clientsCommand runs `slsrelay clients`; it returns the exit code.
func clientsCommand(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("clients", flag.ContinueOnError)
	configPath := fs.String("config", "configs/local.yaml", "configuration file (its admin.listen)")
	admin := fs.String("admin", "", "the admin listener's host:port (instead of -config)")
	asJSON := fs.Bool("json", false, "print the JSON as the relay serves it")
	// -h/--help: the usage on stdout, exit 0, as every command.
	std := stdio{out: stdout, errOut: stderr}
	pos, code, ok := parseFlags(fs, args, clientsUsage, std)
	if !ok {
		return code
	}
	if len(pos) > 0 {
		return usageError(fs, clientsUsage, std, fmt.Sprintf("unexpected argument %q", pos[0]))
	}
	listen := *admin
	if listen == "" {
		cfg, err := relay.LoadConfig(*configPath)
		if err != nil {
			fmt.Fprintln(stderr, "slsrelay clients:", err)
			return 1
		}
		if listen = cfg.Admin.Listen; listen == "" {
			fmt.Fprintf(stderr, "slsrelay clients: %s configures no admin listener (admin.listen)\n", *configPath)
			return 1
		}
	}
	body, err := fetchShippers(adminURL(listen) + "/shippers")
	if err != nil {
		fmt.Fprintln(stderr, "slsrelay clients:", err)
		return 1
	}
	if *asJSON {
		_, _ = stdout.Write(body)
		return 0
	}
	var list []engine.Shipper
	if err := json.Unmarshal(body, &list); err != nil {
		fmt.Fprintf(stderr, "slsrelay clients: cannot read the relay's answer: %v\n", err)
		return 1
	}
	writeClientsTable(stdout, list, time.Now())
	return 0
}

// fetchShippers reads the running relay's /shippers.
func fetchShippers(url string) ([]byte, error) {
	// Straight to the relay, whatever HTTP_PROXY says.
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{Proxy: nil}}
	resp, err := cl.Get(url)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the relay's admin listener: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, errors.New(resp.Status + ": " + strings.TrimSpace(string(b)))
	}
	return b, nil
}

// writeClientsTable prints one line per connection.
func writeClientsTable(out io.Writer, list []engine.Shipper, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(out, "no shippers connected")
		return
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ADDRESS\tLISTENER\tCLIENT.ID\tSOFTWARE\tUSER\tTOPICS\tRECORDS/S\tBYTES/S\tTHROTTLED\tLAST ERROR")
	for _, sh := range list {
		lastErr := "-"
		if e := sh.LastError; e != nil {
			lastErr = fmt.Sprintf("%s %s ago: %s", e.Reason, now.Sub(e.Time).Round(time.Second), e.Detail)
		}
		throttled := "-"
		if sh.Throttles > 0 {
			throttled = fmt.Sprintf("%d× %v", sh.Throttles, sh.ThrottledFor.Round(time.Millisecond))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%.1f\t%.0f\t%s\t%s\n", sh.Address, sh.Listener, orDash(sh.ClientID),
			orDash(sh.Software), orDash(sh.User), orDash(strings.Join(sh.Topics, ",")), sh.RecordsPerSec, sh.BytesPerSec, throttled, lastErr)
	}
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
