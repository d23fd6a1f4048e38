// Package gossip runs iroh-gossip 0.28 (ALPN "/iroh-gossip/0") over the mesh:
// the network shell around the I/O-free core in package proto.
//
// One actor goroutine owns the protocol state, the timers and the peer table.
// Each connection has a reader and a writer goroutine; dials run in their own
// goroutines. Close stops all of them and waits.
//
// Wire binding (v0, as iroh-gossip 0.28.1 speaks it):
//   - one QUIC connection per peer pair carries one bidirectional stream: the
//     dialer opens it and writes its first frame at once, the acceptor
//     accepts it and answers on it; every topic shares it;
//   - a frame is u32 BE length || postcard(Message{topic, message}); we send
//     bodies of at most MaxMessageSize-1 bytes and accept up to
//     MaxMessageSize; a larger frame or a body that does not decode ends the
//     connection (as Rust does), a Gossip whose id does not match its content
//     is dropped silently, and a frame for a topic we have not joined is
//     ignored (Rust ignores it too);
//   - dialing is lazy: the first message to a peer without a connection is
//     queued and a dial starts;
//   - a peer may hold one dialed and one accepted connection (0.28 keeps one
//     of each); we send on the first one established and read from both; the
//     peer is reported disconnected when its last connection ends;
//   - on DisconnectPeer we flush what is queued, finish our half of the
//     stream, wait briefly for the peer's FIN, then close with code 0
//     "close from disconnect". A 0.28 peer closes at once (its queued
//     Disconnect never reaches the wire), so any close from the peer is taken
//     as Disconnect{alive: true} for every topic on the connection;
//   - our PeerData is postcard(AddrInfo) with our real direct addresses and no
//     relay URL unless one is configured, so Rust nodes can dial us; PeerData
//     we learn is handed to the transport's address book.
//
// Backpressure: the actor never blocks on a subscriber or on a peer. Each
// subscription has a bounded event channel; when it is full the subscriber
// gets one Lagged event and misses events until it catches up (Rust's rule).
// Each connection has a bounded send queue; a peer that lets it fill is too
// slow and its connection is dropped (Rust instead blocks its actor).
//
// Inbound limits (limit.go, Config.InLimits): each peer may send at most 100 frames and
// 64 KiB per second, all peers together 1000 frames and 512 KiB per second (bursts of two
// seconds' worth); a frame over a budget is dropped unread and counted (InDropped), logged at
// most once a minute. So a flood on an open topic makes a node hold at most about 28 MiB of
// messages (payloads for MessageCacheRetention, ids for MessageIDRetention), whatever the
// number of flooding keys (0.28 has no limit).
//
// Differences from 0.28 worth knowing: a failed dial is reported to the core
// as a disconnect (0.28 leaves the queue stuck); a topic that has had no
// neighbor for Config.RejoinInterval (10 s) sends Join to its bootstrap peers
// again (0.28 leaves that to the application; HyParView alone cannot bring
// back a node whose passive peers are all gone). See package proto for the
// protocol-level ones.
//
// # Logging and time
//
// Config.Logger receives diagnostics (nil: discard). Config.Clock (package internal/clock; nil:
// the wall clock) drives the protocol's timers, the rejoin check and the close grace periods.
package gossip
