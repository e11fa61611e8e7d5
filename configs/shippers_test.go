package configs_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const shippers = "shippers/"

// blockMarker starts each alternative block of a shipper file
// ("# --- SASL_SSL ...", "# --- PLAINTEXT ..."; a marker may run over
// several lines, and may be indented, as in YAML).
const blockMarker = "# --- "

// blocks splits a shipper file into its shared head and its alternative
// blocks, each usable on its own after the head: a commented-out block
// has its comment sign removed from each line ("#" or, in YAML where every
// line reads "# ...", "# "). The marker lines are dropped.
func blocks(text string) (head string, alternatives []string) {
	var cur []string
	var headLines []string
	inBlock, prevMarker := false, false
	flush := func() {
		if inBlock {
			alternatives = append(alternatives, uncomment(cur))
		}
		cur = nil
	}
	for _, l := range strings.Split(text, "\n") {
		marker := strings.HasPrefix(strings.TrimSpace(l), blockMarker)
		switch {
		case marker && !prevMarker:
			flush()
			inBlock = true
		case marker:
		case inBlock:
			cur = append(cur, l)
		default:
			headLines = append(headLines, l)
		}
		prevMarker = marker
	}
	flush()
	return strings.Join(headLines, "\n"), alternatives
}

func uncomment(lines []string) string {
	commented, spaced := true, true
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" {
			continue
		}
		if !strings.HasPrefix(t, "#") {
			commented = false
		}
		if t != "#" && !strings.HasPrefix(t, "# ") {
			spaced = false
		}
	}
	if !commented {
		return strings.Join(lines, "\n")
	}
	sign := "#"
	if spaced {
		sign = "# "
	}
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = strings.Replace(l, sign, "", 1)
	}
	return strings.Join(out, "\n")
}

// librdkafkaProps extracts the librdkafka properties a shipper file sets,
// in each file's own syntax.
var librdkafkaProps = map[string]func(t *testing.T, block string) [][2]string{
	"rsyslog.conf": func(t *testing.T, block string) [][2]string {
		return pairs(regexp.MustCompile(`"([a-z][a-z0-9._]*)=([^"]*)"`), block)
	},
	"fluent-bit.conf": func(t *testing.T, block string) [][2]string {
		return pairs(regexp.MustCompile(`(?m)^\s*rdkafka\.(\S+)\s+(.*?)\s*$`), block)
	},
	"collectd.conf": func(t *testing.T, block string) [][2]string {
		return pairs(regexp.MustCompile(`Property\s+"([^"]+)"\s+"([^"]*)"`), block)
	},
	"fluentd.conf":       fluentdRdkafka2Props,
	"fluentd-scram.conf": fluentdRdkafka2Props,
	"vector.yaml": func(t *testing.T, block string) [][2]string {
		var out [][2]string
		for _, sink := range vectorSinks(t, block) {
			for k, v := range sink.LibrdkafkaOptions {
				out = append(out, [2]string{k, v})
			}
			if sink.Compression != "" {
				out = append(out, [2]string{"compression.codec", sink.Compression})
			}
			if sink.SASL.Mechanism != "" {
				out = append(out, [2]string{"sasl.mechanism", sink.SASL.Mechanism})
			}
		}
		return out
	},
}

func pairs(re *regexp.Regexp, text string) [][2]string {
	var out [][2]string
	for _, m := range re.FindAllStringSubmatch(text, -1) {
		out = append(out, [2]string{m[1], m[2]})
	}
	return out
}

type vectorSink struct {
	Type              string            `yaml:"type"`
	BootstrapServers  string            `yaml:"bootstrap_servers"`
	Topic             string            `yaml:"topic"`
	Compression       string            `yaml:"compression"`
	LibrdkafkaOptions map[string]string `yaml:"librdkafka_options"`
	SASL              struct {
		Enabled   bool   `yaml:"enabled"`
		Mechanism string `yaml:"mechanism"`
		Username  string `yaml:"username"`
		Password  string `yaml:"password"`
	} `yaml:"sasl"`
	TLS struct {
		Enabled bool   `yaml:"enabled"`
		CAFile  string `yaml:"ca_file"`
	} `yaml:"tls"`
}

func vectorSinks(t *testing.T, text string) map[string]vectorSink {
	t.Helper()
	var cfg struct {
		Sinks map[string]vectorSink `yaml:"sinks"`
	}
	if err := yaml.Unmarshal([]byte(text), &cfg); err != nil {
		t.Fatalf("vector.yaml: %v", err)
	}
	return cfg.Sinks
}

// fluentdRdkafka2Props: what a Fluentd rdkafka2 block hands to librdkafka
// (its rdkafka_options, and the options out_rdkafka2.rb's build_config
// maps); kafka2 blocks are ruby-kafka and give none.
func fluentdRdkafka2Props(t *testing.T, block string) [][2]string {
	if !strings.Contains(block, "@type rdkafka2") {
		return nil // kafka2 is ruby-kafka, not librdkafka
	}
	var out [][2]string
	if m := regexp.MustCompile(`(?m)^\s*rdkafka_options\s+(\{.*\})\s*$`).FindStringSubmatch(block); m != nil {
		var opts map[string]string
		if err := json.Unmarshal([]byte(m[1]), &opts); err != nil {
			t.Fatalf("rdkafka_options %s: %v", m[1], err)
		}
		for k, v := range opts {
			out = append(out, [2]string{k, v})
		}
	}
	// What out_rdkafka2.rb's build_config passes on.
	for opt, prop := range map[string]string{
		"compression_codec": "compression.codec",
		"required_acks":     "request.required.acks",
		"max_send_retries":  "message.send.max.retries",
		"brokers":           "bootstrap.servers",
	} {
		if m := regexp.MustCompile(`(?m)^\s*` + opt + `\s+(\S+)`).FindStringSubmatch(block); m != nil {
			out = append(out, [2]string{prop, m[1]})
		}
	}
	return out
}

// TestShipperLibrdkafkaProperties: every librdkafka property the
// librdkafka-based shippers set is one librdkafka knows, with a value it
// accepts: kcat (librdkafka's own CLI) applies them all and dumps the
// configuration without connecting anywhere.
func TestShipperLibrdkafkaProperties(t *testing.T) {
	kcat := needTool(t, "kcat", "kcat")
	for file, extract := range librdkafkaProps {
		head, alts := blocks(readFile(t, shippers+file))
		if len(alts) == 0 {
			t.Errorf("%s: no %q blocks", file, blockMarker)
		}
		for i, block := range alts {
			props := extract(t, head+"\n"+block)
			if len(props) == 0 {
				if strings.HasPrefix(file, "fluentd") && !strings.Contains(block, "rdkafka2") {
					continue
				}
				t.Errorf("%s block %d: no librdkafka properties found", file, i+1)
				continue
			}
			args := []string{}
			for _, p := range props {
				args = append(args, "-X", p[0]+"="+p[1])
			}
			args = append(args, "-X", "dump")
			t.Logf("%s block %d: %d librdkafka properties", file, i+1, len(props))
			if out, err := runErr(".", kcat, args...); err != nil {
				t.Errorf("%s block %d: librdkafka refuses its properties: %v\n%s", file, i+1, err, firstLines(out, 3))
			}
		}
	}
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// TestKcatRefusesUnknownProperty: the property check can fail.
func TestKcatRefusesUnknownProperty(t *testing.T) {
	kcat := needTool(t, "kcat", "kcat")
	if _, err := runErr(".", kcat, "-X", "sasl.mechanismz=PLAIN", "-X", "dump"); err == nil {
		t.Fatal("kcat accepted a misspelt property")
	}
	if _, err := runErr(".", kcat, "-X", "security.protocol=sasl_tls", "-X", "dump"); err == nil {
		t.Fatal("kcat accepted an invalid value")
	}
}

// TestRsyslogConfig: rsyslogd validates each block of rsyslog.conf with
// the real omkafka module (action parameter names included; it does not
// look inside confParam, which TestShipperLibrdkafkaProperties covers).
func TestRsyslogConfig(t *testing.T) {
	rsyslogd := needTool(t, "rsyslogd", "rsyslog")
	if matches, _ := filepath.Glob("/usr/lib/*/rsyslog/omkafka.so"); len(matches) == 0 {
		needTool(t, "omkafka.so (rsyslog's Kafka module)", "rsyslog-kafka")
	}
	head, alts := blocks(readFile(t, shippers+"rsyslog.conf"))
	for i, block := range alts {
		dir := t.TempDir()
		conf := filepath.Join(dir, "rsyslog.conf")
		text := "global(workDirectory=\"" + dir + "\")\n" + head + "\n" + block
		if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := runErr(dir, rsyslogd, "-N1", "-f", conf); err != nil {
			t.Errorf("rsyslogd -N1 refuses block %d: %v\n%s", i+1, err, out)
		}
	}
	// And it does check names: a misspelt action parameter fails.
	dir := t.TempDir()
	conf := filepath.Join(dir, "bad.conf")
	bad := "global(workDirectory=\"" + dir + "\")\n" + head + "\n" + strings.Replace(alts[0], "partitions.auto=", "partition.auto=", 1)
	if err := os.WriteFile(conf, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := runErr(dir, rsyslogd, "-N1", "-f", conf); err == nil {
		t.Error("rsyslogd -N1 accepted a misspelt omkafka parameter: the check proves nothing")
	}
}

// TestShipperContract: each file points at the relay as the README's
// contract says: SASL_SSL to the relay's port with PLAIN, the Project as
// user name, AccessKeyId#AccessKeySecret as password, the relay's CA; and
// a PLAINTEXT alternative on the plaintext port.
func TestShipperContract(t *testing.T) {
	f := func(file string, sasl ...string) {
		t.Helper()
		_, alts := blocks(readFile(t, shippers+file))
		if len(alts) < 2 {
			t.Fatalf("%s: want a SASL_SSL and a PLAINTEXT block, found %d blocks", file, len(alts))
		}
		for _, want := range append([]string{"relay.example.internal:9093", "my-project", "/etc/slsrelay/ca.crt", "#"}, sasl...) {
			if !strings.Contains(alts[0], want) {
				t.Errorf("%s: the SASL_SSL block does not contain %q", file, want)
			}
		}
		last := alts[len(alts)-1]
		if !strings.Contains(last, "relay.example.internal:9092") || strings.Contains(last, "my-project") {
			t.Errorf("%s: the last block should be PLAINTEXT on :9092 without credentials", file)
		}
	}
	f("rsyslog.conf", "security.protocol=sasl_ssl", "sasl.mechanisms=PLAIN", "sasl.password=", `topic="my-logstore`)
	f("fluent-bit.conf", "rdkafka.security.protocol      sasl_ssl", "rdkafka.sasl.mechanisms        PLAIN", "${SLS_AK_ID}#${SLS_AK_SECRET}", "Topics                         my-logstore")
	f("vector.yaml", "${SLS_AK_ID}#${SLS_AK_SECRET}")
	f("fluentd.conf", `"security.protocol": "sasl_ssl"`, `"sasl.mechanisms": "PLAIN"`, "default_topic my-logstore")

	sinks := vectorSinks(t, readFile(t, shippers+"vector.yaml"))
	s, ok := sinks["slsrelay"]
	if !ok || s.Type != "kafka" || !s.SASL.Enabled || s.SASL.Mechanism != "PLAIN" || s.SASL.Username != "my-project" ||
		!s.TLS.Enabled || s.TLS.CAFile != "/etc/slsrelay/ca.crt" || s.BootstrapServers != "relay.example.internal:9093" {
		t.Errorf("vector.yaml sink slsrelay = %+v: want kafka with sasl.enabled, PLAIN, my-project, tls.enabled and the relay's CA", s)
	}

	// fluentd.conf: rdkafka2 is the first example, kafka2 the second.
	text := readFile(t, shippers+"fluentd.conf")
	r, k := strings.Index(text, "@type rdkafka2"), strings.Index(text, "@type kafka2")
	if r < 0 || k < 0 || r > k {
		t.Errorf("fluentd.conf: want the rdkafka2 example first and kafka2 second (rdkafka2 at %d, kafka2 at %d)", r, k)
	}
}
