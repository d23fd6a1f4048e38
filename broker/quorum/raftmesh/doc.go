// Package raftmesh carries raft messages (go.etcd.io/raft/v3 raftpb) between the brokers of
// the metadata quorum over the mesh, on ALPN "/meshkafka/raft/0". Its Transport satisfies
// broker/quorum's Transport interface (Send, AddPeer, RemovePeer) without importing it. The
// senders and the receiver described below are package broker/internal/meshlink's, shared
// with the partition replicas' transport (broker/replica/replmesh); this package adds the
// frame layout of single raft messages and the configuration.
//
//	tr := raftmesh.NewWithConfig(ep, raftmesh.Config{
//		Trust:       members.Allows,            // NodeIds that may send us raft messages
//		Deliver:     func(m *raftpb.Message) { node.Step(ctx, m) },
//		ID:          raftID,                    // drop messages for an earlier incarnation
//		Unreachable: node.ReportUnreachable,    // all optional from here
//		SnapshotStatus: ...,                    // → ReportSnapshot
//	})
//	tr.AddPeer(id, raftmesh.EncodeAddr(nodeAddr)) // from conf-change contexts
//	tr.Send(rd.Messages)                          // never blocks
//
// # Peers and addresses
//
// A peer is a raft id with an address: the opaque bytes of AddPeer are EncodeAddr of the
// peer's endpoint.NodeAddr (NodeId, relay URL, direct addresses), the same bytes the quorum
// puts in conf-change contexts:
//
//	version   u8 = 1
//	node id   [32]byte  Ed25519 public key
//	relay URL uvarint length (≤ 2048) + bytes
//	direct    uvarint count (≤ 64), each: family u8 (4 or 6) + IP (4 or 16 bytes) + port u16 BE
//
// DecodeAddr accepts exactly what EncodeAddr makes (fuzzed: FuzzDecodeAddr).
//
// # Sending
//
// Each peer NodeId has one sender goroutine, a bounded queue (Config.QueueLen messages) and
// at most one connection with one long-lived unidirectional stream, dialed through the
// endpoint (relay or direct, whatever the endpoint's paths allow). Send puts each message on
// its peer's queue and returns at once; a full queue drops the message. The sender takes a
// message, coalesces whatever else is queued into the same frame up to Config.BatchBytes
// (1 MiB), and writes the frame. Messages to one peer go out in the order given to Send.
// A message larger than what remains of Config.MaxFrame goes in the next frame; one larger
// than MaxFrame alone (a MsgSnap of more than 512 MiB by default) is dropped. A snapshot is
// sent as one frame, which QUIC flow control streams; the receiver grows its buffer as the
// bytes arrive, never from the length prefix alone.
//
// When a connect or a write fails the batch and everything queued are dropped (raft resends),
// the peer's raft ids are reported through Config.Unreachable (and each dropped MsgSnap
// through Config.SnapshotStatus), and the sender waits Config.BackoffMin·2^(n-1), at most
// Config.BackoffMax (100 ms … 5 s), on Config.Clock before connecting again. A stream that
// had worked and fails (the peer restarted: its stateless reset or close arrives) is
// replaced at once, once. A failure is logged at Warn when it differs from the last one (or
// ten minutes later), otherwise at Debug. Callbacks run on the sender goroutine, never
// inside Send. A write completes when QUIC has taken the bytes, not when the peer has read
// them: SnapshotStatus(id, nil) means "written", and what a refusing peer gets before its
// close arrives is lost.
//
// # Frames
//
// The stream carries frames back to back, until the sender finishes it:
//
//	frame   = length u32 BE (1 … MaxFrame) + batch
//	batch   = message+                        (at least one)
//	message = uvarint length + protobuf raftpb.Message
//
// ReadFrame and DecodeBatch are the decoder (fuzzed: FuzzFrame).
//
// # Receiving and trust
//
// Inbound connections come through the endpoint's ALPN router. A connection from a NodeId
// Config.Trust refuses is closed with ErrCodeUntrusted and the reason "node <id> is not
// trusted by this raft node"; trust is asked again for every frame. Each message's From
// must be one of the raft ids added (AddPeer) for the sending NodeId when any is known (two
// while a new incarnation replaces an old one; the order they were added in does not
// matter), must not be a raft id added for another NodeId (a peer cannot speak for
// another), and must not be 0; otherwise the connection is closed with ErrCodeSpoofed. A
// frame over MaxFrame closes it with ErrCodeTooLarge, an undecodable one with
// ErrCodeMalformed. A refusal is logged at Warn once per NodeId and code per ten minutes
// (Debug in between) and counted in Stats.Refused.
// With Config.ID set, messages addressed to another raft id are dropped (Stats.Ignored).
// Accepted messages go to Config.Deliver in stream order; different peers' streams deliver
// concurrently.
//
// Application error codes:
//
//	0x5201 ErrCodeUntrusted   0x5202 ErrCodeSpoofed   0x5203 ErrCodeMalformed
//	0x5204 ErrCodeTooLarge    0x5205 ErrCodeClosing (transport closed, peer removed)
//
// # Goroutines
//
// The transport owns one sender goroutine per peer NodeId; inbound handlers run on the
// endpoint's goroutines and are tracked too. RemovePeer stops the peer's sender (which
// finishes its stream and closes its connection); Close stops every sender, closes every
// inbound connection and waits for all of them, including Deliver calls in progress. The
// ALPN stays registered on the endpoint (it has no unregister): after Close new connections
// are closed with ErrCodeClosing. Close the transport before the endpoint.
package raftmesh
