// Package meshlink is the machinery both raft transports share (the metadata quorum's
// broker/quorum/raftmesh and the partition replicas' broker/replica/replmesh): one long-lived
// unidirectional QUIC stream per peer on the transport's ALPN, a per-peer sender goroutine that
// coalesces queued items into length-prefixed frames (bounded queue: items past it are dropped
// and reported unreachable), reconnection with backoff, and a receiver that refuses untrusted
// NodeIds (closing the connection with an application error code) and items claiming another
// sender. It is generic over the item type; each transport brings its frame codec and keeps its
// own wire format.
package meshlink
