// Package meshlink is the sending and receiving machinery the raft transports share: the
// metadata quorum's (broker/quorum/raftmesh, ALPN "/meshkafka/raft/0") and the partition
// replicas' (broker/replica/replmesh, "/meshkafka/replica/0"). A Transport[T] carries items
// of type T (a raft message, or a group's raft message) between raft nodes over the mesh;
// the Codec[T] says where an item goes, who sent it and how items are framed.
//
// # Peers and addresses
//
// A peer is a raft id with an address: the opaque bytes of AddPeer are EncodeAddr of the
// peer's endpoint.NodeAddr (NodeId, relay URL, direct addresses):
//
//	version   u8 = 1
//	node id   [32]byte  Ed25519 public key
//	relay URL uvarint length (≤ 2048) + bytes
//	direct    uvarint count (≤ 64), each: family u8 (4 or 6) + IP (4 or 16 bytes) + port u16 BE
//
// DecodeAddr accepts exactly what EncodeAddr makes (fuzzed through raftmesh.FuzzDecodeAddr).
//
// # Sending
//
// Each peer NodeId has one sender goroutine, a bounded queue (Config.QueueLen items) and at
// most one connection with one long-lived unidirectional stream, dialed through the endpoint
// (relay or direct). Send puts each item on its peer's queue and returns at once; a full
// queue drops the item. The sender takes an item, coalesces whatever else is queued into the
// same frame up to Config.BatchBytes, and writes the frame (frame = length u32 BE + batch;
// the batch layout is the Codec's). Items to one peer go out in the order given to Send. An
// item that does not fit what remains of Config.MaxFrame goes in the next frame; one larger
// than MaxFrame alone is dropped.
//
// When a connect or a write fails the batch and everything queued are dropped (raft
// resends), the peer's raft ids are reported through Config.Unreachable (and each dropped
// snapshot through Config.SnapshotStatus), and the sender waits BackoffMin·2^(n-1), at most
// BackoffMax, on Config.Clock before connecting again. A stream that had worked and fails
// (the peer restarted) is replaced at once, once. Failures are logged at Warn when they
// differ from the last one (or ten minutes later), otherwise at Debug. Callbacks run on the
// sender goroutine, never inside Send.
//
// # Receiving and trust
//
// Inbound connections come through the endpoint's ALPN router. A connection from a NodeId
// Config.Trust refuses is closed with ErrCodeUntrusted; trust is asked again for every frame.
// Each item's From must be one of the raft ids added for the sending NodeId when any is known,
// must not be a raft id added for another NodeId and must not be 0 (else ErrCodeSpoofed). A
// frame over MaxFrame closes the connection with ErrCodeTooLarge, an undecodable one with
// ErrCodeMalformed. Refusals are logged at Warn once per NodeId and code per ten minutes and
// counted in Stats.Refused. With Config.ID set, items addressed to another raft id are
// dropped (Stats.Ignored). Accepted items go to Config.Deliver in stream order. A stream's
// frame buffer is reused for its next frame, unless Config.RetainFrames says the Codec's
// items refer into it (replmesh's entries do): then every frame gets a new buffer.
//
// # Goroutines
//
// The transport owns one sender goroutine per peer NodeId; inbound handlers run on the
// endpoint's goroutines and are tracked too. RemovePeer stops the peer's sender; Close stops
// every sender, closes every inbound connection and waits for all of them, including Deliver
// calls in progress. The ALPN stays registered on the endpoint (it has no unregister): after
// Close new connections are closed with ErrCodeClosing.
package meshlink
