// Package quorum is the raft node shell of the metadata quorum (issue #15): a thin,
// goroutine-owning layer over go.etcd.io/raft/v3's RawNode that persists through a Storage,
// talks through a Transport and applies committed entries to a StateMachine. It imports no
// mesh and no metadata package: broker/quorum/raftlog provides the durable Storage,
// broker/quorum/raftmesh the mesh Transport, broker/metadata the StateMachine.
//
// # Use
//
//	n, err := quorum.Start(quorum.Config{ID: raftID, Storage: st, Transport: tr, SM: state,
//		Bootstrap: []raft.Peer{{ID: raftID, Context: myAddr}}}) // only for a new cluster
//	res, err := n.Propose(ctx, cmd)  // leader only; waits until applied here
//	err = n.ReadBarrier(ctx)         // then read local state linearizably (any node)
//	n.AddLearner(ctx, id, addr)      // leader only; promoted automatically once caught up
//	n.Stop()
//
// The transport hands inbound messages to Node.Step and reports delivery problems through
// Node.ReportUnreachable and Node.ReportSnapshot (it must report every MsgSnap).
//
// # The raft goroutine
//
// Start runs one goroutine that owns the RawNode, the state machine and every Storage write;
// public methods pass closures or messages to it. A clock.Ticker (Config.Clock) drives raft
// ticks: an election takes 10 ticks, a heartbeat 1. Each loop turn handles one event (a tick,
// inbound messages, a batch of up to 65 queued requests, or transport reports) and then
// drains raft's Ready synchronously, in this order:
//
//  1. Storage.Save(HardState, Entries, Snapshot) — durable before anything depends on it;
//  2. restore the state machine if a snapshot arrived;
//  3. Transport.Send(Messages) — only after step 1;
//  4. apply CommittedEntries (normal entries to StateMachine.Apply, empty no-op entries
//     skipped; conf changes to the RawNode and to the Transport: AddPeer/RemovePeer with the
//     address carried in the conf change's context);
//  5. complete ReadBarriers whose read index is applied;
//  6. fail requests a leadership change made undecidable; take a snapshot if due; Advance.
//
// A Storage or state machine error stops the node (Done is closed, Err says why): a node
// must not carry on past a write it could not make durable.
//
// # Proposals
//
// Raft settings: CheckQuorum and PreVote on (an isolated leader steps down within an election
// timeout, and a partitioned node cannot disrupt the group when it returns),
// DisableProposalForwarding (a follower's Propose returns *NotLeaderError naming the leader;
// callers forward at their own level) and StepDownOnRemoval.
//
// Every accepted proposal appends exactly one entry to the leader's log, so the proposals
// accepted since the last Ready are the last entries of the next Ready, in order: each
// waiter learns its (term, index) there. When the entry at that index is applied with the
// same term, the proposer gets StateMachine.Apply's result; if the index is applied with
// another term, or this node stops being leader (or its term moves on) before the index is
// applied, the proposal fails with ErrLeaderChanged: the outcome is then unknown and the
// caller may retry (commands should be idempotent or checked). Membership changes use the
// same path (ConfChangeV2, one change, Transition auto) and fail with ErrConfChangeRejected
// when raft refuses them (another change still pending).
//
// # Membership
//
// AddLearner/Promote/Remove propose single-change ConfChangeV2 entries whose context is the
// peer's opaque address. While the configuration has fewer than Config.Voters voters, the
// leader (on each tick) promotes the lowest-id learner that is RecentActive, whose Match is
// at or past the last applied membership change (it holds the configuration that added it,
// with every member's address) and within 4 entries of the commit index, one change at a
// time; so removing a voter makes room for the next caught-up learner. (Without the first
// condition a learner holding nothing, Match 0, passed "within 4 of the commit index" while
// the log was short, and a voter that could not answer cost a young quorum its majority.)
//
// # Leadership
//
// TransferLeadership hands the leadership to a voter (raft's leader transfer) and returns
// once this node sees the transferee lead, or ErrTransferAborted when raft gave it up after
// an election timeout. LeaderWatch returns the leader and a channel closed at its next
// change (another leader, none — an election started — or the node stopped): a caller that
// forwarded a request to the leader abandons it there rather than wait on a dead peer's
// connection.
//
// # Snapshots
//
// After SnapshotEvery applied entries, and after every applied membership change, the node
// calls Storage.CreateSnapshot(applied, confState, data), which also compacts the log by the
// storage's own policy. The snapshot after a membership change matters: raft sends the
// storage's latest snapshot to a peer that is too far behind, and a peer refuses a snapshot
// whose configuration does not include it — so a new learner needs one taken after its
// addition. data is an envelope around StateMachine.Snapshot's bytes that also carries the
// peer address table (which the compacted conf-change entries no longer can):
//
//	"MKQS" | version u8 = 1 | n uvarint | n × (raft id u64 big-endian | len uvarint | address) | state…
//
// On Start the node restores the state machine and the peer table from the storage's
// snapshot and raft replays the committed entries after it; a snapshot received from the
// leader (MsgSnap, data read from the leader's Storage) is saved, then restored the same way.
// Stop does not close the Storage or the Transport: the caller owns them.
//
// # Tests
//
// MemoryStorage (raft.MemoryStorage plus Save/CreateSnapshot) and LocalNet (in-memory
// transports with partitions, cut links and a drop filter) are exported for other packages'
// tests. The package's tests run whole clusters in testing/synctest bubbles (virtual time).
package quorum
