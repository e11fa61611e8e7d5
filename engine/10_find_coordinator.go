package engine

// FindCoordinator: advertised (v0 to v3), never served.
//
// librdkafka derives its LZ4 support from FindCoordinator v0 being listed
// (its feature table treats it as the mark of Kafka 0.8.2): without it,
// shippers configured for lz4 send uncompressed batches. As for Fetch, a
// request closes the connection with a log line; a producer never sends one.

func init() {
	register(10, api{min: 0, max: 3})
}
