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
//   - mesh/meshtest/natlab (tests only): an in-memory UDP internet with
//     machines, NATs (endpoint-independent or -dependent mapping, filtering),
//     firewalls and packet loss, whose net.PacketConns the magicsock, STUN and
//     QUIC tests run on, inside testing/synctest bubbles.
//
// Nothing in mesh contacts a public relay or discovery server unless the
// caller configures one.
package mesh
