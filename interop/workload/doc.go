// Package workload drives a Kafka-compatible cluster with real franz-go clients during a fault
// test and records everything into a checker.Recorder: idempotent acks=all producers of unique
// values, consumers reading from the start, group members consuming from committed offsets and
// committing what they read (Config.GroupConsumers, with an OffsetFetch reader beside them),
// and (Config.Metadata) the metadata writers a controller fault hits: CreateTopics with a
// config, group OffsetCommit followed by OffsetFetch, and InitProducerID. Actors are spread
// over the seeds (one gateway each, round robin). Failed operations are recorded and the
// actors carry on; Final drains every partition (control records included, so the offsets are
// contiguous) and lists the created topics for checker.Check.
//
// The load is light on purpose (one operation per actor per Interval): the suites run on a
// shared 2-core machine. Test harness: only tests import it.
package workload
