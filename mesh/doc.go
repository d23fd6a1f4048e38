// Package mesh is the root of a pure-Go reimplementation of the iroh 0.28.1
// peer-to-peer mesh. It holds no code of its own; the pieces live in
// subpackages:
//
//   - mesh/key: Ed25519 node identities (the public key is the NodeId) and
//     their text forms, byte-compatible with iroh-base 0.28.
//   - mesh/meshtls: the libp2p-style self-signed X.509 certificate and the
//     TLS 1.3 configurations iroh-net 0.28.1 uses, with verification that
//     yields the peer's NodeId.
//   - mesh/endpoint: a QUIC endpoint on quic-go (one UDP socket, a router
//     that dispatches accepted connections by ALPN, Dial with connection
//     reuse, an address book).
//   - mesh/magicsock: the multipath packet conn under the endpoint (relay first,
//     then a direct UDP path found by disco, back to the relay when it fails),
//     a shell around the I/O-free path core mesh/magicsock/internal/nodemap.
//   - mesh/disco: iroh's disco messages (Ping, Pong, CallMeMaybe) and their
//     NaCl box sealing between node keys.
//   - mesh/stun: the STUN Binding requests and answers iroh uses to learn a
//     node's public address (on pion/stun).
//   - mesh/relay: the relay (DERP) frame protocol and a client;
//     mesh/relay/relayhttp dials a relay as iroh's client does (HTTP upgrade);
//     mesh/relay/relayserver is a relay server (plus STUN) for iroh 0.28.1
//     nodes.
//   - mesh/gossip/proto: the I/O-free iroh-gossip 0.28 core (HyParView
//     membership, Plumtree broadcast) and its postcard wire; mesh/gossip runs
//     it over endpoint connections (ALPN "/iroh-gossip/0").
//   - mesh/discovery: the contract between node-address sources and the
//     endpoint; mesh/discovery/mdns is LAN discovery as iroh 0.28.1's
//     LocalSwarmDiscovery lays it out.
//   - mesh/meshctl: the control plane: signed node digests (role, addresses)
//     on a gossip topic and a directory of live members with expiry.
//   - mesh/ticket: iroh 0.28's node tickets (one string with a node's id,
//     relay URL and direct addresses), read and written byte-compatibly.
//   - mesh/kafkapipe: client connections carried over the mesh as byte
//     pipes (ALPN "/meshkafka/kafka/0", one stream per connection), so a
//     Kafka client reaches a gateway by NodeId or ticket through NATs and
//     relays; after a short preamble (the address the client was given) the
//     Kafka bytes pass through unparsed.
//
// Not API, so under the module's internal/ rather than here:
//
//   - internal/meshnode: the mesh start-up shared by cmd/broker and
//     cmd/gateway (relay, STUN, mDNS, endpoint, mDNS follower) from options
//     the binaries fill from their flags.
//   - internal/meshtest (tests only): shared fixtures (in-process relay,
//     in-memory mDNS link, QUIC echo server with iroh TLS).
//   - internal/meshtest/natlab (tests only): an in-memory UDP internet with
//     machines, NATs (endpoint-independent or -dependent mapping, filtering),
//     firewalls and packet loss, whose net.PacketConns the magicsock, STUN and
//     QUIC tests run on, inside testing/synctest bubbles.
//
// Nothing in mesh contacts a public relay or discovery server unless the
// caller configures one.
package mesh
