package relay

import (
	"os"
	"strings"
	"testing"
)

// Every broken config names the key at fault, wherever the rule is checked:
// when the file is parsed (what only the file has, and what spans
// sections) or when New builds the relay (each package checks its own
// options, so no rule is written twice; their errors name the section and
// the field).
func TestConfigErrorsNameTheKey(t *testing.T) {
	const listeners = `
listeners:
  - name: PLAINTEXT
    protocol: PLAINTEXT
    bind: 127.0.0.1:9092
sls:
  endpoint: cn-hangzhou.log.aliyuncs.com
`
	f := func(name, yaml, wantErr string) {
		t.Helper()
		t.Run(name, func(t *testing.T) {
			cfg, err := ParseConfig("test.yaml", []byte(yaml))
			if err == nil {
				cfg.DataDir = t.TempDir()
				var r *Relay
				if r, err = New(cfg, Deps{}); err == nil {
					r.Close()
				}
			}
			if err == nil || !strings.Contains(err.Error(), wantErr) {
				t.Fatalf("error %v, want one containing %q", err, wantErr)
			}
		})
	}
	f("unknown top-level key", listeners+"colour: blue\n", "colour: unknown key (line 8)")
	f("unknown nested key", listeners+"wal:\n  sink: batch\n", "wal.sink: unknown key")
	f("unknown key in a list", `
listeners:
  - name: A
    protocol: SASL_SSL
    bind: 127.0.0.1:1
    tsl: {}
sls: {endpoint: x}
`, "listeners[0].tsl: unknown key")
	f("SASL_SSL without TLS", strings.Replace(listeners, "protocol: PLAINTEXT", "protocol: SASL_SSL", 1), "listeners[0].tls: SASL_SSL needs")
	f("missing certificate file", `
listeners:
  - protocol: SASL_SSL
    bind: 127.0.0.1:9093
    tls: {cert: /nonexistent/server.crt, key: /nonexistent/server.key}
sls: {endpoint: x}
`, "listeners[0].tls.cert: stat /nonexistent/server.crt")
	f("cert without key", `
listeners:
  - protocol: SASL_SSL
    bind: 127.0.0.1:9093
    tls: {cert: a.crt}
sls: {endpoint: x}
`, "listeners[0].tls: cert and key go together")
	f("no SLS", "listeners: [{protocol: PLAINTEXT, bind: '127.0.0.1:1'}]\n", "sls: set sls.endpoint")
	f("bad sync", listeners+"wal: {sync: sometimes}\n", `wal.sync: unknown WAL sync policy "sometimes"`)
	f("bad log level", listeners+"log: {level: loud}\n", `log.level: "loud"`)
	f("wrong type", listeners+"node_id: one\n", "cannot unmarshal")
	f("unset variable", listeners+"catalog: {static: {access_keys: {a: '${SLSRELAY_TEST_UNSET_VAR}'}}}\n", "SLSRELAY_TEST_UNSET_VAR")
	f("bad protocol", strings.Replace(listeners, "protocol: PLAINTEXT", "protocol: TLS", 1), `listeners[0] (PLAINTEXT): protocol "TLS" is not one of`)
	f("missing bind", strings.Replace(listeners, "    bind: 127.0.0.1:9092\n", "", 1), "listeners[0] (PLAINTEXT): bind")
	f("no listeners", "sls: {endpoint: x}\n", "no listeners configured")
	f("bad watermark", listeners+"wal: {high_watermark: 1.5}\n", "cannot open WAL at")
	f("bad watermark's value", listeners+"wal: {high_watermark: 1.5}\n", "HighWatermark 1.5 not in (0, 1)")
	f("bad compression", strings.Replace(listeners, "  endpoint:", "  compression: gzip\n  endpoint:", 1), "sls: shardwriter: compression must be lz4 or zstd, not gzip")
}

func TestConfigExpandsEnvironment(t *testing.T) {
	t.Setenv("SLSRELAY_TEST_SECRET", "s3cr$t")
	c, err := ParseConfig("test.yaml", []byte(`
listeners:
  - protocol: PLAINTEXT
    bind: 127.0.0.1:9092
    project: p
    access_key_id: id
    access_key_secret: ${SLSRELAY_TEST_SECRET}
sls: {endpoint: x}
`))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Listeners[0].AccessKeySecret; got != "s3cr$t" {
		t.Fatalf("secret %q", got)
	}
}

// Every shipped configuration loads.
func TestShippedConfigsLoad(t *testing.T) {
	files, err := os.ReadDir("../../../configs")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, f := range files {
		if !strings.HasSuffix(f.Name(), ".yaml") {
			continue
		}
		n++
		if _, err := LoadConfig("../../../configs/" + f.Name()); err != nil {
			t.Errorf("%s: %v", f.Name(), err)
		}
	}
	if n == 0 {
		t.Fatal("no configs found")
	}
}

// An expanded plain scalar is typed by its value: numbers stay numbers.
func TestConfigExpandedNumbers(t *testing.T) {
	t.Setenv("SLSRELAY_TEST_NODE", "3")
	c, err := ParseConfig("test.yaml", []byte("node_id: ${SLSRELAY_TEST_NODE}\nlisteners: [{protocol: PLAINTEXT, bind: '127.0.0.1:1'}]\nsls: {endpoint: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.NodeID != 3 {
		t.Fatalf("node_id %d", c.NodeID)
	}
}
