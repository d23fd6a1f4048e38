// Package quorum holds the multi-process tests of the metadata quorum (issue #15): brokers run
// as real processes (package interop/cluster) with -quorum-seeds, -quorum-voters and a
// loopback -admin API, one gateway in front, and real franz-go clients recording a history
// (package interop/workload) that package interop/checker checks afterwards. Everything is in
// _test.go files:
//
//   - TestQuorumLeaderKill: the quorum leader (asked from the admin API) SIGKILLed and
//     restarted, QUORUM_KILL_CYCLES times (the 20 by default, about two minutes on
//     two cores; `go tool task chaos` runs 100),
//     while clients create topics (with a config), commit and fetch group offsets, produce
//     (acks=all, idempotent) and call InitProducerID. Per cycle the time from the kill to the
//     first successful metadata write is logged, with p50/p99 at the end (reported, not
//     asserted); afterwards nothing acknowledged is missing.
//   - TestQuorumLeaderPaused: the leader SIGSTOPped until the others elect a leader and serve,
//     then SIGCONTed (it wakes believing it leads), three times, under the same workload.
//   - TestQuorumLeaderIsolated (root: network namespaces): the leader cut off by nftables; the
//     majority elects a leader and serves, the isolated broker refuses metadata writes, and
//     after healing it catches up. Run directly and with the brokers reachable only through
//     cmd/relay.
//   - TestQuorumWipedBrokerRejoins: a broker's data directory wiped (identity kept) and the
//     broker restarted: it rejoins under a new raft id and the cluster keeps its state.
//   - TestQuorumAddRemove: a fourth broker added, then the leader removed through its own
//     admin API (it hands the leadership over first), with clients running.
//   - TestQuorumDescribe: DescribeQuorum (API 55) through the gateway names the leader by its
//     Kafka id with the three voters, DescribeCluster's controller id is the same broker, and
//     after a leader kill both name the new one.
//   - TestUpCluster (root): scripts/up-cluster.sh in a private network namespace: one quorum of
//     three, Kafka on :9092 works, and SIGTERM stops every process it started.
//   - BenchmarkQuorumMetadataWrite (CreateTopics and OffsetCommit p50/p99, three brokers beside
//     one) and BenchmarkQuorumFailover (kill → first metadata write p50/p99 over
//     QUORUM_BENCH_KILLS kills, default 20).
//
// Every test skips, saying so, when the broker binary has no -quorum-seeds flag (a tree
// without the quorum). Their topics have replication factor 1 (the share-group test's
// excepted), so the tests that lose a broker's disk or remove a broker check metadata only;
// replicated partitions under those faults are interop/repl's.
package quorum
