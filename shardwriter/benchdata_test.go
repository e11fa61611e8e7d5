package shardwriter

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/slsrelay/slsrelay/wal/batch"
	"github.com/slsrelay/slsrelay/wal/batch/batchtest"
)

// Input of BenchmarkWriterVsSDKProducer: text log lines of exactly 1 KiB,
// and the same lines as the gzip-compressed Kafka RecordBatches a Beats
// shipper would send. The lines mix three shapes (an nginx access log, a
// Java service log, a logfmt line from a Go service) with values drawn from
// realistic pools and some that are random by nature (trace ids, latencies,
// byte counts), so that gzip and lz4 see what they see in production rather
// than repeated text.

// wbLine is one record: its value and its timestamp in ms.
type wbLine struct {
	value string
	ts    int64
}

var (
	wbPaths = []string{
		"/api/v1/orders", "/api/v1/orders/%d", "/api/v1/orders/%d/items", "/api/v1/users/%d", "/api/v1/users/%d/profile",
		"/api/v1/cart", "/api/v1/cart/items/%d", "/api/v2/search", "/api/v2/catalog/products/%d", "/static/js/app.%x.js",
		"/static/css/main.%x.css", "/healthz", "/metrics", "/login", "/checkout/%d/confirm",
	}
	wbMethods = []string{"GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE"}
	wbStatus  = []int{200, 200, 200, 200, 200, 200, 201, 204, 301, 304, 304, 400, 401, 403, 404, 404, 499, 500, 502, 503}
	wbAgents  = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0",
		"Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/119.0.6045.163 Mobile Safari/537.36",
		"okhttp/4.12.0", "curl/8.4.0", "Go-http-client/2.0", "kube-probe/1.28", "python-requests/2.31.0",
	}
	wbReferers = []string{"-", "https://shop.example.com/", "https://shop.example.com/cart", "https://www.google.com/", "https://m.example.com/search?q=shoes"}
	wbLevels   = []string{"INFO", "INFO", "INFO", "INFO", "DEBUG", "WARN", "ERROR"}
	wbClasses  = []string{
		"c.e.shop.order.OrderService", "c.e.shop.order.PaymentClient", "c.e.shop.cart.CartController", "c.e.shop.user.SessionFilter",
		"o.s.web.servlet.DispatcherServlet", "c.z.hikari.pool.HikariPool", "c.e.shop.inventory.StockReservation", "o.a.kafka.clients.NetworkClient",
	}
	wbMessages = []string{
		"order placed", "payment authorized", "payment declined by issuer, will not retry", "cart updated", "session refreshed",
		"stock reserved", "stock reservation expired, releasing", "slow query detected", "connection returned to pool", "cache miss, loading from database",
	}
	wbPods   = []string{"api-7d9f8c6b5-x2k9q", "api-7d9f8c6b5-m4t7z", "api-7d9f8c6b5-q8w3e", "order-5b8c9d7f6-a1b2c", "order-5b8c9d7f6-k9j8h", "cart-6c7d8e9f0-p0o9i"}
	wbZones  = []string{"cn-hangzhou-h", "cn-hangzhou-i", "cn-hangzhou-j"}
	wbExtras = []string{
		"ssl_protocol=TLSv1.3", "ssl_cipher=TLS_AES_256_GCM_SHA384", "http2=h2", "cache=MISS", "cache=HIT", "gzip_ratio=%d.%02d",
		"connection=%d", "connection_requests=%d", "upstream_connect_time=0.%03d", "upstream_header_time=0.%03d", "namespace=prod",
		"container=nginx", "region=cn-hangzhou", "tenant=t%04d", "feature_flags=checkout_v2,new_search", "retry=0", "sampled=true",
		"db.rows=%d", "db.pool.active=%d", "heap_used_mb=%d", "gc_pause_ms=%d", "thread_pool.queue=%d",
	}
)

// wbLines returns n lines of exactly size bytes, timestamped from start
// on, 1 ms apart. The same seed gives the same lines.
func wbLines(n, size int, start time.Time, seed uint64) []wbLine {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	hex := func(bits int) string { return fmt.Sprintf("%0*x", bits/4, rng.Uint64()>>(64-bits)) }
	path := func() string {
		p := pick(wbPaths)
		switch {
		case strings.Contains(p, "%d"):
			return fmt.Sprintf(p, rng.IntN(2_000_000))
		case strings.Contains(p, "%x"):
			return fmt.Sprintf(p, rng.Uint32()>>8)
		}
		if rng.IntN(3) == 0 {
			return fmt.Sprintf("%s?page=%d&size=%d", p, rng.IntN(40), []int{10, 20, 50}[rng.IntN(3)])
		}
		return p
	}
	extra := func(sb *strings.Builder) {
		e := pick(wbExtras)
		if strings.Count(e, "%") == 2 {
			e = fmt.Sprintf(e, rng.IntN(5), rng.IntN(100))
		} else if strings.Contains(e, "%") {
			e = fmt.Sprintf(e, rng.IntN(10_000))
		}
		sb.WriteByte(' ')
		sb.WriteString(e)
	}
	out := make([]wbLine, n)
	var sb strings.Builder
	for i := range out {
		t := start.Add(time.Duration(i) * time.Millisecond).UTC()
		sb.Reset()
		client := fmt.Sprintf("%d.%d.%d.%d", []int{10, 172, 100, 47}[rng.IntN(4)], rng.IntN(256), rng.IntN(256), 1+rng.IntN(254))
		switch r := rng.IntN(10); {
		case r < 5: // nginx, combined format plus the usual extensions
			status := wbStatus[rng.IntN(len(wbStatus))]
			fmt.Fprintf(&sb, `%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s" rt=%d.%03d uct=0.%03d urt=%d.%03d upstream=10.0.%d.%d:8080 req_id=%s host=api.example.com pod=%s az=%s`,
				client, t.Format("02/Jan/2006:15:04:05 -0700"), pick(wbMethods), path(), status, rng.IntN(80_000),
				pick(wbReferers), pick(wbAgents), rng.IntN(2), rng.IntN(1000), rng.IntN(20), rng.IntN(2), rng.IntN(1000),
				rng.IntN(8), 2+rng.IntN(60), hex(64)+hex(64), pick(wbPods), pick(wbZones))
		case r < 8: // Java service
			fmt.Fprintf(&sb, `%s %-5s [http-nio-8080-exec-%d] %s - %s order_id=%d user_id=%d amount=%d.%02d currency=CNY trace_id=%s span_id=%s client_ip=%s duration_ms=%d`,
				t.Format("2006-01-02 15:04:05.000"), pick(wbLevels), 1+rng.IntN(200), pick(wbClasses), pick(wbMessages),
				rng.IntN(90_000_000), rng.IntN(5_000_000), rng.IntN(5000), rng.IntN(100), hex(64)+hex(64), hex(64), client, rng.IntN(3000))
		default: // logfmt from a Go service
			fmt.Fprintf(&sb, `ts=%s level=%s caller=%s:%d msg=%q method=%s path=%s status=%d latency=%dµs trace_id=%s remote=%s`,
				t.Format(time.RFC3339Nano), strings.ToLower(pick(wbLevels)), []string{"server/http.go", "store/order.go", "cache/lru.go", "queue/consumer.go"}[rng.IntN(4)],
				20+rng.IntN(400), pick(wbMessages), pick(wbMethods), path(), wbStatus[rng.IntN(len(wbStatus))], rng.IntN(500_000), hex(64)+hex(64), client)
		}
		for sb.Len() < size {
			extra(&sb)
		}
		out[i] = wbLine{value: sb.String()[:size], ts: t.UnixMilli()}
	}
	return out
}

// wbBatch encodes lines as one Kafka RecordBatch (magic 2), gzip-compressed
// or not, as a non-idempotent producer (sarama, as in Beats) sends it, then
// checks it with the same validator the front end runs on Produce requests.
func wbBatch(tb testing.TB, lines []wbLine, gzipped bool) []byte {
	recs := make([]batchtest.Record, len(lines))
	for i, l := range lines {
		recs[i] = batchtest.Record{Value: []byte(l.value), Timestamp: l.ts}
	}
	codec := batchtest.None
	if gzipped {
		codec = batchtest.Gzip
	}
	out := batchtest.RecordBatch(tb, recs, codec, nil)
	info, err := batch.Validate(out, batch.ValidateOptions{ProduceVersion: 7})
	if err != nil {
		tb.Fatalf("benchmark batch does not validate: %v", err)
	}
	if info.Magic != 2 || info.Codec != codec.ID || info.Records != int32(len(lines)) {
		tb.Fatalf("benchmark batch validates as %+v", info)
	}
	return out
}
