// Package kafkaclients holds the real-client recipes the interop suites share: franz-go kgo,
// segmentio/kafka-go (Writer and Reader) and librdkafka through the kcat binary, each able to
// produce a set of client-neutral records with a given compression codec and to read a topic
// back, plus a generator of awkward records (binary keys, values and headers, explicit
// timestamps) and a verifier (byte-exact, produce order per partition, contiguous offsets).
// interop/kafka runs them against the in-process gateway, interop/meshkafka through separate
// gateway and broker processes; tests of gateway, gateway/cluster and the commands use the
// kgo recipes too. Test-only code: only tests and the interop suites import it (the module's
// deps_test.go refuses it in non-test code).
package kafkaclients
