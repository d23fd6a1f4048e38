// Package proto is the I/O-free core of iroh-gossip 0.28: the postcard wire
// codec for every message, HyParView membership and Plumtree broadcast.
//
// The core is driven as State.Handle(now, event) and answers with a slice of
// outputs (send a message, emit an event, schedule a timer, disconnect a peer,
// learn peer data). It starts no goroutines, reads no clock and does no I/O;
// the caller owns time, timers and connections. The peer identity is a type
// parameter, so the simulator uses small integers and the network layer uses
// Key (a raw 32-byte Ed25519 public key, the only form the codec encodes).
//
// Wire facts (checked against a real iroh-gossip 0.28.1 node, see
// the design notes on the iroh-gossip wire): a v0 frame is a u32 big-endian
// length followed by postcard(Message{topic, message}); enum tags are varints,
// Option is 00 / 01||T, byte strings are varint(len)||bytes, keys, topic and
// message ids are 32 raw bytes; MessageId is blake3(content).
//
// Decisions where upstream 0.28 is silent or where we deviate on purpose:
//   - Seen message ids are evicted after MessageIDRetention (90 s). 0.28 never
//     evicts them (fixed upstream in 0.97); unbounded growth is a leak.
//   - IHave batches are split into chunks that fit the frame limit (as 0.35
//     does); 0.28 sends one unbounded list.
//   - A ForwardJoin that can neither be accepted nor forwarded (0.28 panics
//     with unreachable!) is dropped.
//   - Prune and Graft only move a peer between the eager and lazy sets while
//     it is in the active view, so the two sets always partition the active
//     view (0.28 can leave former neighbors in them and keep pushing to them).
//   - A Neighbor request that is refused or whose connection fails makes us
//     ask another passive peer at once (0.28 waits for the next loss).
//   - The tree optimisation (Graft(None) to a faster IHave sender, Prune to
//     the slow gossip sender) also updates our own eager and lazy sets, as
//     0.90+ does; 0.28 leaves one-way eager links behind.
//   - Missing-message bookkeeping is dropped once every announcer was asked.
//   - The net layer's reference counting of topics per connection also
//     forgets a topic that is quit (0.28 keeps it for peers that sent us
//     something on it but were never active).
//
// None of these changes a byte on the wire; they are checked by the seeded
// simulator (sim_test.go: 100+ nodes, crashes, joins, a partition that heals)
// and against real 0.28.1 nodes in interop/gossip_test.go.
//   - Iteration over peer sets is in insertion order and all randomness comes
//     from the injected *rand.Rand, so a run is reproducible from its seed.
package proto
