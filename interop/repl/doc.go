// Package repl holds the multi-process fault tests of replicated partitions (issue #16), in
// the way Jepsen tests Kafka and Redpanda: three brokers forming one metadata quorum and two
// gateways run as real processes (package interop/cluster), each in its own network namespace
// for the network faults; a 6-partition topic with replication factor 3 carries a recorded
// workload (package interop/workload: an idempotent acks=all kgo producer and a from-the-start
// consumer on each gateway, a two-member consumer group committing what it reads, and for the
// quorum test the metadata writers); afterwards every partition is drained and package
// interop/checker checks the history. Zero anomalies is the only pass. Everything is in
// _test.go files:
//
//   - TestReplPartitionLeaderKill, TestReplFollowerKill, TestReplQuorumLeaderKill: SIGKILL of
//     a partition's leader, of a follower, of the metadata quorum's leader; restart.
//   - TestReplLeaderPause: SIGSTOP of a partition's leader until another leads, then SIGCONT.
//   - TestReplLeaderIsolated, TestReplMajorityMinoritySplit, TestReplFlappingLink: nftables on
//     the namespaces' bridge cut a leader off, split {leader, gateway 1} from the rest, or
//     take one leader–follower link down and up six times.
//   - TestReplFollowerWiped: a follower's data directory deleted (identity kept) and the
//     broker restarted: it must come back as a new replica and catch up.
//   - TestReplClientsLeaderKill: kafka-go and librdkafka (kcat) producers and consumers carry
//     on through a partition leader's SIGKILL with no error beyond their own retries.
//   - Benchmarks: BenchmarkReplProduce (100 B acks=all, RF=1 beside RF=3 on three brokers and
//     one client, CPU per record per process, p99) and BenchmarkReplFailover (a partition
//     leader's SIGKILL → the first record acknowledged on that partition, p50/p99).
//
// Each fault runs REPL_CYCLES cycles (10 by default; `go tool task chaos` runs 100); each
// cycle waits until every partition has a running leader and its full in-sync replica set
// (from Metadata) before the fault, on partition cycle % 6. Times from a fault to the first
// record acknowledged on the partition are logged with p50/p99 and never asserted: every wait
// has a bound against hangs only. The tests skip when the broker has no quorum (issue #15) or
// refuses replication factor 3 (a tree without issue #16), and without root for the
// namespaces.
package repl
