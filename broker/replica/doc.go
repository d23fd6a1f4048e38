// Package replica runs the raft groups of replicated partitions: one etcd raft group
// (go.etcd.io/raft/v3) per partition, many groups per broker, driven by one Engine.
//
// A partition's replicas are brokers named by their metadata-quorum raft ids (a wiped broker
// has a new raft id, so it is a new replica and never votes with a forgotten log). The
// partition's log is its raft log: one stored entry per raft entry (package
// broker/replica/raftstore keeps them in the partition's wal.Log), so record bytes are written
// once per replica.
//
// The Engine batches the work of all its groups: each round it ticks the groups, takes
// proposals, collects every group's Ready, writes them to storage, makes them durable with one
// Config.Sync call (one fsync of the node's commit journal, however many groups), sends the
// messages, applies committed entries and advances.
//
// A proposal is answered twice: Propose returns once the entry is durable on this node (the
// acks=1 point, with its raft index and term), and Proposal.Committed yields once a majority
// has it (the acks=all point), or an error wrapping ErrNotLeader when leadership was lost
// first (outcome unknown: an idempotent producer's retry is deduplicated by the new leader).
package replica
