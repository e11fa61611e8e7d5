package relay_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/slsrelay/slsrelay/cmd/slsrelay/relay/relaytest"
	"github.com/slsrelay/slsrelay/engine"
	"github.com/slsrelay/slsrelay/engine/kafkatest"
)

const (
	statusClientID = "status-page-test"
	statusLogstore = "test-logstore-1"
)

// startBusyRelay starts the local config's relay with a shipper connected
// that has produced to statusLogstore, and a refused one (a Metadata for
// a Logstore that does not exist). The shipper stays connected until the
// test ends.
func startBusyRelay(t *testing.T) *relaytest.Relay {
	t.Helper()
	r := relaytest.Start(t, relaytest.Config(t))
	cl, err := kgo.NewClient(kgo.SeedBrokers(r.Plain.Addr), kgo.ClientID(statusClientID), kgo.DefaultProduceTopic(statusLogstore))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := 0; i < 20; i++ {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte(fmt.Sprintf(`{"n":%d}`, i))}).FirstErr(); err != nil {
			t.Fatalf("produce: %v", err)
		}
	}
	c := kafkatest.DialT(t, r.Plain.Addr, nil)
	md := kmsg.NewPtrMetadataRequest()
	mt := kmsg.NewMetadataRequestTopic()
	missing := "no-such-logstore"
	mt.Topic = &missing
	md.Topics = append(md.Topics, mt)
	if resp := c.RoundTrip(md).(*kmsg.MetadataResponse); resp.Topics[0].ErrorCode == 0 {
		t.Fatal("a missing Logstore was not refused")
	}
	return r
}

func adminGet(t *testing.T, r *relaytest.Relay, path string) string {
	t.Helper()
	resp, err := http.Get("http://" + r.Addrs.Admin + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s %v\n%s", path, resp.Status, err, b)
	}
	return string(b)
}

// /shippers lists the connected shipper with its figures; /metrics has
// the per-shipper gauges (named client.id@host) and the refusal counted.
func TestShippersView(t *testing.T) {
	r := startBusyRelay(t)
	var list []engine.Shipper
	if err := json.Unmarshal([]byte(adminGet(t, r, "/shippers")), &list); err != nil {
		t.Fatal(err)
	}
	// franz-go produces on a connection of its own, beside the one it
	// asked for metadata on: the shipper's entries are one per
	// connection, and the list is ordered by rate, so the one that
	// produced is the one with records, wherever it sorts.
	var sh *engine.Shipper
	for i := range list {
		if list[i].ClientID == statusClientID && (sh == nil || list[i].Records > 0) {
			sh = &list[i]
		}
	}
	if sh == nil {
		t.Fatalf("the shipper is not listed: %+v", list)
	}
	if sh.Records != 20 || len(sh.Topics) != 1 || sh.Topics[0] != statusLogstore || !strings.HasPrefix(sh.Software, "kgo/") || sh.Listener != "PLAINTEXT" {
		t.Fatalf("shipper %+v", *sh)
	}
	m := adminGet(t, r, "/metrics")
	for _, want := range []string{
		`slsrelay_shipper_bytes_per_second{shipper="` + statusClientID + `@127.0.0.1"}`,
		`slsrelay_shipper_connections `,
		`slsrelay_refusals_total{reason="unknown_topic",listener="PLAINTEXT",project="test-project-1"}`,
	} {
		if !strings.Contains(m, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
}

// The status page lists listeners, shippers, streams, writers and the
// refusal; in a real headless Chromium it renders on a phone's screen.
func TestStatusPage(t *testing.T) {
	r := startBusyRelay(t)
	page := adminGet(t, r, "/")
	for _, want := range []string{`http-equiv="refresh"`, `name="viewport"`, "PLAINTEXT", "SASL_SSL", statusClientID, statusLogstore, "unknown_topic", "no-such-logstore"} {
		if !strings.Contains(page, want) {
			t.Fatalf("the page lacks %q", want)
		}
	}

	chromium, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("chromium is missing (make deps installs it)")
		}
		t.Skip("chromium is missing; make deps installs it")
	}
	url := "http://" + r.Addrs.Admin + "/"
	shot := filepath.Join(t.TempDir(), "status.png")
	if dst := os.Getenv("SLSRELAY_STATUS_SCREENSHOT"); dst != "" {
		shot = dst // keep it to look at
	}
	const width, height = 390, 844 // a phone
	runChromium(t, chromium, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", width, height), url)
	checkScreenshot(t, shot, width, height)

	dom := runChromium(t, chromium, "--dump-dom", url)
	for _, want := range []string{"PLAINTEXT", "SASL_SSL", "test-project-1 / " + statusLogstore, statusClientID, "unknown_topic"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the DOM Chromium built lacks %q:\n%s", want, dom)
		}
	}
}

// runChromium runs a headless Chromium once on a fresh profile and
// returns its standard output.
func runChromium(t *testing.T, chromium string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + t.TempDir()}
	cmd := exec.CommandContext(ctx, chromium, append(base, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, stderr.String())
	}
	return stdout.String()
}

// checkScreenshot fails unless path is a PNG of width×height with enough
// distinct colours to be a rendered page, not a blank one.
func checkScreenshot(t *testing.T, path string, width, height int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("the screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != width || b.Dy() != height {
		t.Fatalf("screenshot %dx%d, want %dx%d", b.Dx(), b.Dy(), width, height)
	}
	if n := colours(img); n < 16 {
		t.Fatalf("the screenshot has %d colours: blank", n)
	}
}

func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
		}
	}
	return len(seen)
}
