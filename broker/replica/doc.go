// Package replica runs the raft groups of replicated partitions: one etcd raft group
// (go.etcd.io/raft/v3) per partition, many groups per broker, driven by one Engine.
//
// A partition's replicas are brokers named by their metadata-quorum raft ids (a wiped broker
// has a new raft id, so it is a new replica and never votes with a forgotten log). The
// partition's log is its raft log: one stored entry per raft entry (package
// broker/replica/raftstore keeps them in the partition's wal.Log), so record bytes are written
// once per replica.
//
//	eng, _ := replica.New(replica.Config{ID: raftID, Transport: tr, Sync: store.Commit})
//	eng.AddGroup(gid, storage, stateMachine, voters) // voters: bootstrap on empty storage
//	p, err := eng.Propose(ctx, gid, batch)          // durable here (acks=1): p.Index, p.Term
//	err = <-p.Committed                             // on a majority (acks=all), or ErrNotLeader
//
// # Rounds
//
// One goroutine owns every group's RawNode, storage writes and state-machine calls. It
// sleeps until something arrives (a tick, a proposal, an inbound message, a transport
// report) and then runs rounds until no group has work:
//
//  1. run the queued operations (proposals, membership changes, AddGroup...) and step the
//     inbound messages; on a tick, tick every group;
//  2. take the Ready of every group that has one and write each one's snapshot, entries and
//     hard state to its Storage (not synced);
//  3. hand the messages that need nothing durable (all but append and vote
//     acknowledgements) to one Transport.Send;
//  4. call Config.Sync once if any Ready must be durable (new entries, term or vote, a
//     snapshot): one fsync of the node's commit journal per round, however many groups;
//  5. answer the proposals whose entries were just made durable (Propose returns);
//  6. hand the round's append and vote acknowledgements (MsgAppResp, MsgVoteResp,
//     MsgPreVoteResp) to a second Transport.Send (each Send coalesces its messages per peer);
//  7. per group: install a received snapshot (StateMachine.Restore), apply committed entries
//     (membership changes on the RawNode, then StateMachine.Apply), tell the Storage the
//     applied index (ApplyObserver), answer committed proposals, report a leader change,
//     Advance.
//
// An acknowledgement leaves only once what it acknowledges is durable, so a vote or an
// append acknowledgement never outruns the disk. The other messages leave before the
// round's writes, as raft's asynchronous storage mode sends them (raft holds back exactly
// these three types until the write): a leader's appends reach its followers while it syncs
// them itself, so a commit waits for the slower of the leader's fsync and a
// follower's round trip with its fsync, not for their sum. raft counts the leader's own copy
// only after Advance, once durable, so an entry is committed only when a majority has it
// durable (decision, session 8: issue #16's RF=3 cost). Stats counts rounds and syncs.
//
// # Proposals
//
// Only the leader accepts proposals (raft's proposal forwarding is off): a follower answers
// *NotLeaderError with the leader it knows. An accepted proposal appends exactly one entry;
// the proposals a group accepted since its last Ready are matched, in order, to the last
// entries of that Ready (an entry of another term means leadership changed: the proposal
// fails). Propose returns once the round's Sync succeeded (index and term of the entry);
// Proposal.Committed yields nil after StateMachine.Apply got the entry on this node, which
// is after a majority of the voters made it durable. A leader that steps down or sees a new
// term, RemoveGroup and Stop fail the pending proposals with an error wrapping ErrNotLeader:
// the outcome is then unknown (the entry may still commit under the next leader; an
// idempotent producer's retry is deduplicated there). A proposal is never reported
// committed unless its own entry (same index and term) was applied.
//
// Leaders run with CheckQuorum and PreVote, so a leader cut off from a majority steps down
// after an election timeout (10 ticks) and a partitioned follower cannot disrupt the group
// when it returns. A heartbeat is one tick (Config.TickInterval, 100 ms by default); every
// group ticks every interval (no quiescence yet).
//
// # Failure
//
// A Storage write or Sync error stops the Engine (Engine.Err, Done): what reached the disk is
// unknown, so raft's view of its own log can no longer be trusted. Nothing of that round is
// acknowledged; pending proposals fail with ErrStopped (and ErrNotLeader: outcome unknown,
// since the round's appends may already have reached the followers, and the next leader
// commits what a majority holds). The broker then reopens its storage and starts a new
// Engine, as after a crash.
//
// # Membership and bootstrap
//
// AddGroup with voters on empty storage bootstraps the group through raft's Bootstrap: the
// sorted voter ids become entries 1..n (EntryConfChange, term 1, committed), byte for byte
// the same on every replica, so the data entries that follow have the same indexes (and
// Kafka offsets) everywhere. The first voter as given (the preferred leader) campaigns once
// those entries are applied, and messages for a group a replica has not added yet are held
// for up to an election timeout, so a new group is led within a few round trips instead of
// after an election timeout. Messages for a group the replica removed within the last
// election timeout are dropped instead: held, a stale one would reach the group if it is
// added back on empty storage (a heartbeat's commit index past the empty log panics raft). AddGroup with nil voters starts an empty replica that waits for
// its leader's messages (a replica being added). ChangeConf proposes a ConfChangeV2 (add a
// learner, promote it with AddNode, remove a replica, or joint changes) and returns once it
// is applied here; raft accepts one pending change at a time (ErrConfChangeRejected).
// Replica addresses are not carried in conf changes: the broker knows them from the
// metadata quorum and calls AddPeer/RemovePeer.
//
// A leader whose log was compacted past what a replica needs sends it a snapshot
// (Storage.Snapshot, describing the log start). When that snapshot's membership predates the
// recipient (a learner added after the last compaction), raft would refuse it, so the Engine
// adds the recipient to the MsgSnap's membership as a learner; the entries after the snapshot
// then add or promote it exactly as everywhere else (re-adding a learner is a no-op, and a
// learner never votes). The storage's own snapshot is not changed.
//
// TransferLeader hands leadership to a caught-up voter; raft abandons a transfer after an
// election timeout (the target lagging, or not yet knowing it was promoted), so a caller that
// wants a preferred leader asks again until Status shows it. Campaign starts an election at
// once (PreVote still applies: it fails while a live leader exists).
//
// The Engine applies each committed membership change with RawNode.ApplyConfChange and then
// passes the entry to StateMachine.Apply like every other committed entry (so the state
// machine sees every index: a conf change occupies one Kafka offset), and, if the Storage
// implements ConfStateSaver, saves the new ConfState with its index.
//
// # Restart and storage rules
//
// Storage.InitialState returns the saved HardState and the ConfState of the storage's
// snapshot (in effect at the snapshot's index, which may lie above FirstIndex-1 when the
// storage keeps some entries below it). On AddGroup the Engine restores the state machine
// from a non-empty snapshot and applies only what follows it: raft redelivers every committed
// entry after the snapshot, the state machine rebuilds the rest of its state (producer state,
// high watermark) by Apply, and the Engine re-applies the membership changes among them. With
// no snapshot, everything committed from the log start is applied again. Storage.Snapshot
// (asked by raft when a follower is behind the compacted log) returns that snapshot. A
// snapshot for compaction is made at or below the applied index on the engine goroutine
// (AtApplied gives the applied index and the membership in effect there; for an index below
// it, raftstore and MemoryStorage record memberships through ConfStateSaver: the broker
// snapshots at its retention point). A received snapshot is installed with
// Storage.ApplySnapshot, made durable by the round's Sync, then given to
// StateMachine.Restore; proposals pending in that group fail.
//
// # Compaction (cleanup.policy=compact)
//
// Log compaction of a replicated partition (the broker's cleaner; broker/doc.go, Compacted
// topics, has the decisions) is not raft log compaction: each replica's cleaner rewrites the
// data of committed, applied entries of its own log in place (records dropped, batches
// emptied, never an entry removed: wal keeps each entry's tag, the raft index), so Term,
// Entries and the index-to-offset map answer for every index as before and raft's
// FirstIndex does not move. The Engine needs no hook for it: raft may send a cleaned entry
// to a follower (same index and term, fewer records) as readily as the original, and a
// replica whose log is behind the leader's snapshot still gets the snapshot and then
// whatever entries the leader holds after it.
//
// # Transport
//
// Transport.Send gets the messages of a round in at most two calls (before the Sync, after
// it) and must not block; it owns them (entry data included) from then on. Inbound messages
// go to Engine.Step (never blocks; drops when its queue is full, raft resends). A transport
// tells the Engine about failures with ReportUnreachable (raft then probes that peer) and
// about every MsgSnap's fate with ReportSnapshot. LocalNet is an in-memory transport for
// tests (this package's and the broker's), with isolation, cut links and a drop filter;
// MemoryStorage is an in-memory Storage for tests (with FailWrites, and Compact to move its
// log start). Package replmesh is the mesh transport.
//
// # Cost
//
// BenchmarkPropose (3 Engines on a LocalNet, 64 clients proposing 100-byte entries over 1,
// 100 or 1000 groups led by one node, each waiting for commit): with an instant Sync the
// leader calls Sync about 0.7 times per proposal (rounds are short: little waits to be
// batched) and each follower about 0.05-0.09 times; with a 1 ms Sync, proposals arriving
// during one Sync share the next, whatever their groups, and both drop to about 0.06 per
// proposal (16 proposals per fsync), the same for 1 and 1000 groups. Every group ticks and
// its leader heartbeats every TickInterval, so idle groups cost CPU in proportion to their
// number (no quiescence yet).
//
// Where an RF=3 broker's CPU goes (interop/repl BenchmarkReplProduce, CPU profiles of the
// three broker processes, session 8, load average 6-25): the mesh's QUIC stack about 40%
// (the bytes themselves: the gateway's produce to the leader and the leader's appends to
// both followers, sealed and opened with AES-GCM, sendmsg/recvmmsg), the Engine's rounds
// 15-20% (wal appends about 8%, the journal commit with its fsync 5-7%), decoding raft
// messages about 5% (protobuf copies each entry's data out of the frame), GC about 5%, and
// the metadata controller's 50 ms poll decoding every broker's Ed25519 key (the on-curve
// check in math/big) about 2%. Removed in session 8: raft read every committed entry back
// from the segment file to apply it (raftstore's entry cache held 256 KiB, less than one
// produce batch: 6% of the CPU; the cache now keeps what is not applied yet), and a
// leader's appends waited for its own fsync before leaving (step 3 above). Nine interleaved
// pairs of runs of the same tree without and with these changes (2,000,000 records each,
// load average 2.6-11, so ranges rather than figures): broker CPU per record at RF=3
// 670-890 ns (median 790) before, 640-790 ns (median 740) after, lower in every pair; all
// servers' CPU per record 2,330-3,120 before, 2,250-2,800 after, lower in every pair; RF=3
// records/s 305k-571k before, 329k-601k after, higher in 8 of 9; RF=3/RF=1 records/s
// 0.31-0.45 (median 0.40) before, 0.39-0.49 (median 0.44) after, two runs at 0.63 and 0.78
// where the RF=1 run was slow (RF=1 alone swung 0.93-1.5M records/s). Not yet 0.5 under
// that load.
//
// Session 9 (profiles of the three brokers over 1-3M records, load average 10-27): the
// mesh's QUIC (quic-go and the endpoint's socket, with meshlink's stream reads) 46% of an
// RF=3 broker's CPU, the wal 33% (the segment pwrite of each entry about 15%, the journal
// commit's pwrite and fsync about 15%, the copy into the journal buffer 2%), raft and the
// Engine's own work under 5%, the produce path from the gateway 5%. Both big parts scale
// with the bytes: every broker receives each record about once (a third from the gateway,
// two thirds as a follower) and the leader sends it twice, in full-size packets (1,200-1,450
// bytes on average, acknowledgements included); every broker writes it twice (journal and
// segment). Removed: the protobuf decoder's copy of every received entry (replmesh decodes
// appends in place, about 3%) and the metadata controller's math/big key check on every
// poll (1-4% depending on the throughput: now cached by the controller, and the check itself
// is filippo.io/edwards25519's in package mesh/key, 8 times cheaper). What is left above the
// Engine is per byte in quic-go (packets are capped at 1,452 bytes) and in the wal's
// double write; reaching 0.5x RF=1 on two shared cores needs one of those cheaper.
package replica
