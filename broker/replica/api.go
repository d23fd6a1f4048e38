package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// GroupID names one partition's raft group on every replica.
type GroupID struct {
	Topic     [16]byte // topic id
	Partition int32
}

func (g GroupID) String() string { return fmt.Sprintf("%x/%d", g.Topic[:], g.Partition) }

// GroupMessage is a raft message of one group, as the Transport carries it.
type GroupMessage struct {
	Group GroupID
	Msg   *raftpb.Message
}

// Storage is one group's raft log, hard state and snapshot. Writes need not be durable when
// they return: the Engine calls Config.Sync once per round before anything that depends on
// them is sent or acknowledged.
type Storage interface {
	raft.Storage
	// Append stores ents, replacing any stored suffix from ents[0].Index on.
	Append(ents []*raftpb.Entry) error
	SetHardState(hs *raftpb.HardState) error
	// ApplySnapshot replaces the log with the snapshot (the log then starts after it).
	ApplySnapshot(snap *raftpb.Snapshot) error
}

// StateMachine is one group's state (a partition). Its methods run on the Engine's goroutine
// and must be quick.
type StateMachine interface {
	// Apply gets committed entries in index order: normal entries, empty ones included (the
	// Engine applies conf changes itself before calling).
	Apply(ents []*raftpb.Entry)
	// Restore is called after a snapshot was installed in Storage.
	Restore(snap *raftpb.Snapshot)
	// LeaderChanged reports this group's leader and term as seen here (leader 0 = unknown).
	LeaderChanged(leader, term uint64)
}

// Transport carries group messages between brokers.
type Transport interface {
	Send(msgs []GroupMessage)       // never blocks; drops when a peer's queue is full
	AddPeer(id uint64, addr []byte) // addr: opaque peer address (raftmesh.EncodeAddr bytes)
	RemovePeer(id uint64)
}

// Config configures an Engine. ID, Transport and Sync are required.
type Config struct {
	ID        uint64 // this broker's raft id (its metadata-quorum raft id), non-zero
	Transport Transport
	// Sync makes every Storage write made so far durable (the node's wal.Store.Commit). The
	// Engine calls it once per round, before sending or acknowledging what depends on it.
	Sync  func() error
	Clock clock.Clock  // nil: clock.Real()
	Log   *slog.Logger // nil: slog.Default()

	TickInterval    time.Duration // 0: 100ms; an election takes 10 ticks, a heartbeat 1
	MaxSizePerMsg   uint64        // 0: 1 MiB
	MaxInflightMsgs int           // 0: 256
}

// Proposal is a proposed entry that is durable on this node.
type Proposal struct {
	Index, Term uint64
	// Committed yields nil once the entry is committed, or an error (wrapping ErrNotLeader if
	// leadership was lost first); it yields exactly once.
	Committed <-chan error
}

// Progress is the leader's view of one replica.
type Progress struct {
	Match        uint64
	RecentActive bool
}

// GroupStatus is a group's raft view on this node.
type GroupStatus struct {
	ID, Leader, Term, Commit, Applied uint64
	Voters, Learners                  []uint64
	Progress                          map[uint64]Progress // leader only
}

// ErrNotLeader is the cause of every *NotLeaderError.
var ErrNotLeader = errors.New("replica: not the partition leader")

// ErrUnknownGroup is returned for a group this Engine does not run.
var ErrUnknownGroup = errors.New("replica: unknown group")

// NotLeaderError says which replica leads the group, if known (Leader 0 = unknown).
type NotLeaderError struct {
	Leader, Term uint64
}

func (e *NotLeaderError) Error() string {
	return fmt.Sprintf("replica: not the partition leader (leader %d, term %d)", e.Leader, e.Term)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

// Errors beyond ErrNotLeader and ErrUnknownGroup.
var (
	// ErrStopped: the Engine was stopped, or stopped itself after a storage or Sync failure
	// (Engine.Err says which). Proposals pending at that point fail with an error wrapping
	// both ErrStopped and ErrNotLeader (outcome unknown).
	ErrStopped = errors.New("replica: engine stopped")
	// ErrDropped: raft dropped the proposal (too much uncommitted data in the group).
	// Retriable.
	ErrDropped = errors.New("replica: proposal dropped")
	// ErrConfChangeRejected: raft refused a membership change (another one is still pending
	// or it was invalid); the group's membership is unchanged.
	ErrConfChangeRejected = errors.New("replica: membership change rejected")
)

// ConfStateSaver is an optional extension of Storage. After applying a membership change
// committed at index, the Engine calls SaveConfState(index, cs) with the group's new
// membership (on the Engine goroutine; the write need not be durable: the change is in the
// log, and the next Sync makes it durable). A storage that compacts its log keeps, for the
// snapshot it then describes at index i, the ConfState of the last change at or below i.
//
// Whatever a Storage does, InitialState must return the ConfState of its snapshot (the one in
// effect at the snapshot's index): on start the Engine re-applies every committed entry after
// the snapshot, membership changes included, as raft requires.
type ConfStateSaver interface {
	SaveConfState(index uint64, cs *raftpb.ConfState) error
}

// ApplyObserver is an optional extension of Storage: after applying committed entries the
// Engine calls Applied with the group's applied index (on the Engine goroutine). raft reads
// every committed entry back from Storage to apply it; a storage that caches the entries
// it was given (raftstore) keeps those above the applied index until then, and may drop
// them afterwards.
type ApplyObserver interface {
	Applied(index uint64)
}

// Stats counts an Engine's work since New.
type Stats struct {
	Rounds    uint64 // rounds that handled at least one Ready
	Syncs     uint64 // Config.Sync calls (at most one per round)
	Readies   uint64 // group Readies handled
	Proposals uint64 // proposals made durable here
	Committed uint64 // proposals of this node reported committed
	Sent      uint64 // messages handed to Transport.Send
	Received  uint64 // messages taken from Step
	Dropped   uint64 // inbound messages dropped (queue full, unknown group, bad message)
}
