// Package magicsock is a net.PacketConn for quic-go that reaches each peer node over the best
// path it can find, as iroh 0.28.1's magicsock does: a relay while no direct path is known,
// then a direct UDP path once disco probes confirm one, and back to the relay when the direct
// path goes quiet. The QUIC connection never notices.
//
// # Addresses
//
// quic-go never sees real addresses. Each node gets a stable mapped address
// (fd15:7e7f::N, port 12345; [Conn.AddNodeAddr], [Conn.MappedAddr]); WriteTo a mapped address
// sends to that node over its current path, and every packet from the node, whatever path it
// came by, is returned by ReadFrom with the node's mapped address.
//
// # Structure
//
// The path state of every node (mapped addresses, relay URLs, direct candidates, pings in
// flight, the best address and its trust, anonymous peers) and every path decision live in
// an I/O-free core, internal/nodemap: a state machine driven by Handle(now, event) that
// answers with actions, with no goroutines, sockets, clock or crypto inside (checked by
// deps_test.go), tested with transcripts on a fake now and fuzzed. Conn is the shell: it owns
// the UDP socket, the relay connections and the heartbeat, seals and opens disco, feeds
// every packet written (WriteTo), datagram read, disco message and heartbeat tick to the
// core under its mutex, with the time of Options.Clock, and performs the actions.
//
// # Paths (iroh 0.28.1 magicsock/node_state.rs, simplified; the rules are the core's)
//
//   - A node's relay path is its relay URL; any relay URL is dialed on first use (plain HTTP
//     for http://). Packets arriving over any relay connection are accepted from any node,
//     with no registration, and make that relay the node's path if it had none.
//   - A node with no known relay URL is sent to over our home relay (decision: addresses
//     from seeds, control-plane digests and mDNS carry no relay URL, and a private mesh
//     usually shares one relay; iroh 0.28 would not send; a relay drops packets for nodes
//     not connected to it).
//   - Direct candidates come from AddNodeAddr, from CallMeMaybe (accepted only over a relay)
//     and from the source of disco Pings received over UDP.
//   - A candidate becomes the best address when it answers a disco Ping with a Pong; it stays
//     trusted for 6.5 s after the last Pong. While the node is active (traffic within 45 s)
//     the best address is re-pinged every 2 s (checked on each 500 ms heartbeat), so it
//     stays trusted while it works. Decision (iroh 0.28 trusts it to the end of the 6.5 s):
//     a ping to the best address unanswered for 1 s (no Pong from it since; nodemap's
//     PongOverdue) ends its trust at the next heartbeat, so a dead direct path moves to the
//     relay within about 3.5 s rather than 6.5 s; a late Pong trusts it again.
//   - Sending: best address trusted → UDP only. Otherwise → relay, plus UDP to the last best
//     address if there was one, else to the last address QUIC came from, else (decision;
//     iroh sends nothing direct before a Pong) to every direct candidate (at most 4, in
//     address order), so a peer on a plain socket, which answers no disco, is reached too;
//     and a full ping (every candidate, plus a CallMeMaybe with our direct addresses over
//     the relay) at most every 5 s.
//   - Disco is opened before the core sees it: a packet whose box does not open, or that
//     came over a relay from a node other than its sender, is dropped without a trace
//     (decision: no node state, mapped address or cached key for it).
//   - Received UDP datagrams are demultiplexed in iroh's order: STUN (answers to our own requests), disco
//     (magic "TS💬"), then QUIC. QUIC from an address that belongs to a known node is
//     that node's. Decision (iroh 0.28 drops the rest): QUIC from any other address is
//     taken as an anonymous peer on a plain socket (a mesh endpoint without a magicsock,
//     which sends no disco): it gets its own mapped address and is answered directly, so
//     such a peer can dial us (TLS still authenticates it). At most 1024 are remembered,
//     least recently seen forgotten first. Not with DisableDirect.
//
// Relay payloads use iroh's framing: each datagram prefixed by its u16 little-endian length.
//
// # Goroutines and time
//
// New starts one UDP reader, one heartbeat loop and, per relay connection, one goroutine
// that dials, reads and redials (with a writer per live connection). Close stops and waits
// for all of them. Options.Clock (internal/clock; nil is the wall clock) gives the time
// every path decision is made at, the 500 ms heartbeat ticker, the relay redial backoff and
// STUN expiry; read deadlines are wall-clock times set by quic-go and stay on the wall
// clock, as a socket's do. Options.Logger (nil discards) gets debug lines for path changes
// and failed sends, and a warning when the UDP socket fails. Tests run whole Conns in
// virtual time inside testing/synctest bubbles, on internal/meshtest/natlab sockets and
// meshtest.StartMemRelay's in-memory relay.
package magicsock
