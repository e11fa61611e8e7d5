// Package kafkatest is the Kafka side of the tests: a raw connection that
// speaks the wire protocol by hand (requests framed with kmsg, responses
// read and checked, SASL PLAIN), builders of Produce requests, the
// options with which kgo, sarama and kcat reach a relay's listener, and
// kafka-python run as a process that reports each record's ack
// (kafkapython.go).
//
// It imports nothing of this module but wal/batch/batchtest, so engine's
// internal tests can use it without an import cycle; a relay started for a
// test is in cmd/slsrelay/relay/relaytest.
//
// Conn returns errors and may be used from goroutines; TConn wraps it for
// a test's own goroutine and stops the test with Fatal instead.
package kafkatest
