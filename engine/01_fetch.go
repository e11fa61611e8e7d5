package engine

// Fetch: advertised (v4 to v12), never served.
//
// The relay only takes data in. It still lists Fetch in ApiVersions because
// librdkafka (Collectd, rsyslog, kcat) derives its message format from the
// Produce and Fetch ranges together: without Fetch v4 it falls back to
// magic 0 messages (no timestamps, no headers), which Produce v3+ must
// reject, and without Fetch v10 it will not use zstd. A Fetch request closes
// the connection with a log line saying why, as a broker does for an API it
// has not enabled.

func init() {
	register(1, api{min: 4, max: 12})
}
