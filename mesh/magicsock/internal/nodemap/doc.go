// Package nodemap is the I/O-free core of mesh/magicsock: what we know about each peer node
// (its mapped address, relay URL, direct candidates, pings in flight, the best direct
// address and how long it stays trusted) and the decisions made from it (which path a packet
// takes, when to ping, when to fall back to the relay), after iroh 0.28.1's
// magicsock/node_map.rs and node_state.rs.
//
// A Map is driven as Map.Handle(now, event) and answers with actions (send the packet over
// UDP to an address or over a relay, deliver a received packet as from a mapped address,
// send a disco Ping, Pong or CallMeMaybe, forget a mapped address). It starts no goroutines,
// reads no clock, opens no sockets and does no crypto: mesh/magicsock (the shell) owns the
// UDP socket, the relay connections, the heartbeat ticker and the disco keys, feeds every
// packet, disco message and tick in as an event with the time of its clock, and performs the
// actions. Randomness (ping transaction ids) comes from the injected Config.Rand, so a run
// is reproducible from its seed.
//
// # Rules (the timings are iroh 0.28.1's)
//
//   - A direct candidate becomes the best address when it answers a Ping with a Pong
//     (or replaces it when its latency is lower); a Pong keeps it trusted for TrustBestFor
//     (6.5 s) after it arrives. Decision (not iroh's): a Tick ends that trust early when a
//     ping to the best address has gone PongOverdue (1 s) without a Pong from it since.
//   - While a node is active (a packet to or from it within ActiveWindow, 45 s), each Tick
//     re-pings a trusted best address whose last ping is StayAliveInterval (2 s) old, and
//     a node without a trusted best address gets a full ping (every candidate, plus a
//     CallMeMaybe over its relay) at most every FullPingInterval (5 s).
//   - SendPacket to a node with a trusted best address → UDP to it only. Otherwise → the
//     node's relay (its own relay URL, else our home relay), plus UDP to the last best
//     address if there was one, else to the last address QUIC came from, else to every
//     candidate (at most MaxUntried, in address order); and a full ping if the last one is
//     FullPingInterval old.
//   - A Ping over UDP adds its source as a candidate, is answered with a Pong to it, and is
//     pinged back unless a best address is trusted; a Ping over a relay is answered over
//     that relay. A CallMeMaybe counts only over a relay: its addresses become candidates
//     and every candidate is pinged. Pings unanswered after PingTimeout are forgotten.
//   - QUIC from a UDP address of a known node is that node's (it becomes the node's QUIC
//     source); QUIC from any other address is an anonymous peer (its own mapped address,
//     answered directly), at most MaxAnon remembered, least recently seen forgotten first.
//     QUIC over a relay creates the node if needed and gives it that relay if it had none.
//   - With DisableDirect nothing goes over UDP: no packets, no pings, no anonymous peers,
//     and disco from UDP and CallMeMaybe are ignored.
//
// Decisions beyond the magicsock's own (see its package doc): candidates are pinged and
// copied to in address order, not map order, so a run is reproducible; QUIC over a relay
// that claims to come from our own node id is dropped; a node's state is created by any
// disco message from it that the shell could open.
//
// A Map is not safe for concurrent use; its owner serialises calls.
package nodemap
