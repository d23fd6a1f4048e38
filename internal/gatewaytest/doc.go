// Package gatewaytest provides an in-memory gateway.Backend for tests of the gateway and
// of code built on it. It keeps record batches as produced (rewriting only the base
// offset), long-polls fetches, and auto-creates topics, which is enough for a real Kafka
// client to produce and consume. It does not validate CRCs and does not persist anything;
// the real broker (package broker) does both.
package gatewaytest
