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
// # Paths (iroh 0.28.1 magicsock/node_state.rs, simplified)
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
//     the best address is re-pinged every 2 s, so it stays trusted while it works.
//   - Sending: best address trusted → UDP only. Otherwise → relay, plus UDP to the last best
//     address if there was one, else to the last address QUIC came from, else (decision;
//     iroh sends nothing direct before a Pong) to every direct candidate (at most 4), so a
//     peer on a plain socket, which answers no disco, is reached too; and a full ping (every
//     candidate, plus a CallMeMaybe with our direct addresses over the relay) at most every
//     5 s.
//   - Received UDP datagrams are demultiplexed in iroh's order: STUN (dropped here), disco
//     (magic "TS💬"), then QUIC. QUIC from an address that belongs to a known node is
//     that node's. Decision (iroh 0.28 drops the rest): QUIC from any other address is
//     taken as an anonymous peer on a plain socket (a mesh endpoint without a magicsock,
//     which sends no disco): it gets its own mapped address and is answered directly, so
//     such a peer can dial us (TLS still authenticates it). At most 1024 are remembered,
//     least recently seen forgotten first. Not with DisableDirect.
//
// Relay payloads use iroh's framing: each datagram prefixed by its u16 little-endian length.
//
// # Goroutines
//
// New starts one UDP reader, one heartbeat loop and one reader per relay connection (plus a
// short-lived dialer per relay). Close stops and waits for all of them.
package magicsock
