// Package meshkafka holds end-to-end tests of the split deployment: cmd/gateway and
// cmd/broker built once and run as separate child processes on loopback, talking KafkaOps over
// the mesh, driven by real Kafka clients (franz-go kgo/kadm, segmentio/kafka-go, kcat).
//
// What the tests show (all in meshkafka_test):
//
//   - TestMeshRealClients: one broker + one gateway; kgo, kafka-go and kcat produce and consume
//     byte-exact (keys, values, headers, timestamps) with every codec on 1 and 8 partitions.
//   - TestMeshThreeBrokersTwoGateways: three brokers, two gateways; a 6-partition topic
//     produced via one gateway is consumed in full via the other, and its partitions are
//     stored on more than one broker (observed in each broker's data directory).
//   - TestMeshBrokerKill: ten SIGKILL/restart cycles of the broker (MESH_KILL_CYCLES) under
//     acks=all load from four idempotent kgo producers; the clients see retriable errors and
//     recover by themselves after each restart (the time is logged, not asserted), and every
//     acknowledged record is present exactly once, at its acknowledged offset, in order.
//   - TestMeshGatewayRestart: topics, topic configs and committed group offsets survive a
//     gateway restart (they live on the broker).
//   - TestMeshUntrustedGateway: a gateway the broker does not trust gets errors, not data, and
//     the broker logs the refusal.
//   - TestUpSecure: scripts/up-secure.sh (`go tool task up-secure`) on free ports: SASL_SSL
//     only, its generated CA and 0600 admin password, kgo (SCRAM-SHA-256/512, PLAIN), a user
//     and an ACL added as admin and enforced, kafka-go PLAIN, kcat SCRAM, and kafkajs and
//     confluent-kafka-python (interop/secureclients; each skipped when not installed) with
//     admin calls, produce and a consumer group; a clean SIGTERM stop.
//   - TestFranzGoSuiteSecure: franz-go's own kgo integration tests against a gateway with
//     KGO_TEST_TLS, KGO_TEST_SCRAM(_SEEDS) and KGO_TEST_OAUTH_SEEDS (a subset by default, the
//     whole suite with MESHKAFKA_KGO_SUITE=full).
//   - TestMeshTenThousandPartitions: a 10,000-partition topic created, written (every 5th
//     partition until the wal commit journal bounds descriptors) and consumed whole.
//   - BenchmarkMeshHop: produce (acks=all) and consume throughput through gateway → mesh →
//     broker processes, beside the gateway with its embedded broker and beside kfake.
//
// The binaries are built from the module into a temporary directory on first use, unless
// MESHKAFKA_BIN_DIR names a directory that already holds "broker" and "gateway" binaries.
// MESHKAFKA_CHILD_LOG_DIR=dir also writes every child's output to a file there (a stalled
// benchmark sends its children SIGQUIT first, so their goroutine stacks end up there).
// Every child process is killed when its test ends (and, as a safety net, when the test
// binary dies: Pdeathsig).
package meshkafka
