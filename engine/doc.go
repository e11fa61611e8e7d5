// Package engine is slsrelay's Kafka-protocol front end: listeners, framing,
// request headers, SASL, one handler per API key, Produce validation and
// per-connection response ordering.
//
// It knows nothing about SLS. It asks a Catalog which topics (Logstores) and
// partitions (shards) a principal may write, and hands validated batches to
// an Appender (the WAL). Two transports drive one protocol core (session):
// gnet event loops for plaintext listeners and crypto/tls with a goroutine
// per connection for SASL_SSL, since gnet has no TLS.
//
// Threading: a transport only splits the byte stream into frames. Each
// connection's frames are handled in order by a short-lived goroutine that
// exists only while the connection has work, so an event loop never blocks
// on the catalog or the disk, and 10,000 idle connections cost no
// goroutines on plaintext listeners. Responses are written in request order
// as their appends complete.
//
// Files named NN_name.go hold the handler of Kafka API key NN.
package engine
