// Package meshplane holds the mesh-plane security tests of issue #17 with real processes in
// network namespaces (package interop/cluster, root only): three brokers forming one metadata
// quorum, a gateway and a cmd/relay on the hub, and a test-side mesh node in a namespace of
// its own that misbehaves on the control topic.
//
//   - RogueBroker: a cmd/broker process with a fresh identity that nobody admitted, seeded
//     with the cluster's brokers: its calls are refused by name (logged by a member), it
//     gets no partition of a new topic and holds no partition when it stops; Metadata lists
//     the same brokers and the cluster serves as before.
//   - PhantomDigests: 300 signed digests of brokers nobody knows, published on the control
//     topic: the gateway's and brokers' /metrics count them as not believed, Metadata lists
//     the same three brokers and a new topic is placed on them only.
//   - ControlFlood: garbage on the control topic at 5,000 frames/s for a few seconds: the
//     gossip budgets drop it (counted on /metrics), produce through the gateway keeps being
//     acknowledged, and the processes' RSS before and after is logged (bounds and latency
//     figures are benchmark material: BenchmarkControlFlood).
//   - RelayConnectionCap: one address opening connections to cmd/relay gets HTTP 429 past
//     the relay's default per-IP cap (256), while a node from another address still connects.
package meshplane
