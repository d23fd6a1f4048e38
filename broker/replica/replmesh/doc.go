// Package replmesh carries the raft messages of replicated partitions (package
// broker/replica) between brokers over the mesh, on ALPN "/meshkafka/replica/0". Its
// Transport implements replica.Transport; the per-peer senders (one goroutine, bounded queue,
// one long-lived uni stream per peer NodeId, reconnect with backoff, failure reports) and the
// receiver (trust check per connection and per frame, From checked against the raft ids
// added for the sending NodeId, refusal codes) are package broker/internal/meshlink's, the
// same code as the metadata quorum's transport (broker/quorum/raftmesh).
//
//	tr := replmesh.New(ep, replmesh.Config{Trust: members.Allows, ID: raftID})
//	eng, _ := replica.New(replica.Config{ID: raftID, Transport: tr, Sync: store.Commit})
//	tr.Attach(eng)                           // inbound messages → eng.Step, reports → eng
//	eng.AddPeer(id, raftmesh.EncodeAddr(a))  // every broker replicating with us
//	...
//	eng.Stop(); tr.Close(); ep.Close()
//
// Peer addresses are the quorum's: AddPeer takes raftmesh.EncodeAddr bytes. The Engine hands
// each round's messages of all groups to one Send; each peer's sender coalesces what is
// queued into frames of up to 1 MiB, consecutive messages of one group sharing one run
// header.
//
// # Frames
//
// The stream carries frames back to back, until the sender finishes it:
//
//	frame   = length u32 BE (1 … MaxFrame) + batch
//	batch   = run+                           (at least one)
//	run     = topic [16]byte + partition i32 BE + count u16 BE (≥ 1) + message{count}
//	message = uvarint length + protobuf raftpb.Message
//
// ReadFrame and DecodeBatch are the decoder (fuzzed: FuzzFrame). The messages of the
// Engine's common forms (appends with their entries, their acknowledgements, heartbeats,
// votes) are decoded by hand without copying: entry data and context refer into the frame,
// which the receiver reads into a buffer of its own per frame (meshlink's RetainFrames), so
// a follower's record bytes are copied once from the stream and then written to storage
// from there. Anything else (a snapshot, an unknown field) goes to proto.Unmarshal; both
// decode the same bytes to equal messages (FuzzDecodeMessage). Decision, session 9 (issue
// #16's RF=3 cost): the protobuf decoder's copy of each entry was about 3% of a follower's CPU. Messages to one peer are
// delivered in the order given to Send; a full queue drops (raft resends). Failures are
// reported to the attached Engine: ReportUnreachable for a peer a message to which was
// dropped, ReportSnapshot for every MsgSnap (delivered = written to the stream).
//
// Refusal codes (0x5201 untrusted, 0x5202 spoofed From, 0x5203 malformed, 0x5204 too large,
// 0x5205 closing) and their logging are meshlink's, as documented in raftmesh.
package replmesh
