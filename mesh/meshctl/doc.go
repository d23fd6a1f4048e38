// Package meshctl is the mesh's control plane: every broker and gateway of a
// mesh joins one gossip topic (package mesh/gossip) and announces itself
// there with a small signed Digest at a fixed interval; each node keeps a
// Directory of the latest digest per node and forgets nodes it has not heard
// from for a while.
//
// Layers (as elsewhere in the project): the Digest codec (digest.go), the
// I/O-free Directory with an injected clock (directory.go), and Node, the
// thin goroutine owner that joins the topic, publishes, receives and expires
// (node.go).
//
// # Topic
//
// The control topic of mesh M is blake3("meshkafka/control/v1/" + M) (32
// bytes, plain unkeyed blake3-256), so every node configured with the same
// mesh id (env RAFKA_MESH_ID, default "meshkafka") meets in one topic and
// two meshes sharing a swarm do not see each other.
//
// # Digest wire format (version 1)
//
// Postcard style: unsigned integers are LEB128 varints (canonical: the
// shortest form, at most 10 bytes, no bits beyond 64), byte strings are
// varint length || bytes.
//
//	u8      format version = 1
//	[32]    node id (Ed25519 public key of the author)
//	u8      role: 1 broker, 2 gateway (other values are rejected)
//	varint  len || utf-8 mesh id (at most 64 bytes)
//	varint  seq: strictly increasing per author (unix microseconds at
//	        publication, or the last seq + 1 if the clock went backwards)
//	varint  time: author's wall clock, unix milliseconds
//	varint  n addresses (at most 16), each:
//	          u8 family (4 or 6) || 4 or 16 address bytes || varint port (1..65535)
//	varint  partitions the node holds (brokers; 0 for gateways)
//	varint  bytes the node stores (brokers; 0 for gateways)
//	[64]    Ed25519 signature by the node id over
//	        "meshkafka/control/digest/v1" || every preceding byte
//
// Nothing may follow the signature. A digest is at most MaxDigestSize bytes.
// The signature means a node cannot announce a digest in another node's
// name; it does not stop a node that can join the topic from calling itself
// a broker (see Decisions).
//
// # Directory rules
//
//   - A digest from node N replaces the stored one only if its seq is larger
//     (replays and reordered older digests are ignored); after N has expired
//     any digest is accepted again (a restarted node whose clock went back
//     comes back once its old entry expired).
//   - Freshness is measured on the receiver's clock (the time a digest was
//     last accepted), never the author's: clocks of different hosts may
//     disagree. The author's time is carried for operators only.
//   - A node not heard from for the staleness period (env RAFKA_STALENESS_MS,
//     default 30000) expires: it is removed and reported Down.
//   - Digests for another mesh id are ignored (they cannot normally arrive,
//     as the topic is derived from the mesh id).
//
// # Decisions
//
//   - Binary rather than JSON: a broker digest with two addresses is about
//     160 bytes, published every RAFKA_GOSSIP_INTERVAL_MS (default 2000) by
//     every node and relayed by all.
//   - Who may join the topic is not restricted (gossip accepts any peer, and
//     the mesh id is a name, not a secret). The signature only binds a digest
//     to its author, so membership is decided elsewhere and Config.Believe
//     drops every digest of a node that is not a member before it reaches the
//     directory or the address book: a broker believes the quorum's brokers
//     and the gateways it serves; a gateway believes its seeds, the quorum's
//     registered brokers, and (legacy brokers only) -trusted-brokers. Phantom
//     "brokers" therefore change nothing. Config.MaxNodes bounds the directory
//     whatever is believed.
//   - Every digest heard feeds the endpoint's address book, so a node that
//     moved (new port after a restart) is dialed at its new address.
//   - Node publishes at once when it gets a new neighbor, so a newcomer is
//     known within one round trip instead of one interval.
//
// # Logging and time
//
// Config.Logger receives diagnostics (nil: discard). Config.Clock (package internal/clock; nil:
// the wall clock) drives publication, expiry and freshness. The package reads no environment:
// the binaries fill MeshID, Interval and Staleness from RAFKA_MESH_ID, RAFKA_GOSSIP_INTERVAL_MS
// and RAFKA_STALENESS_MS (package cmd/internal/cli).
package meshctl
