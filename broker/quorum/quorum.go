package quorum

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// StateMachine is the replicated state the quorum drives. All three methods are called from
// the Node's single raft goroutine, never concurrently.
type StateMachine interface {
	// Apply applies one committed normal entry (never called twice for one index). The
	// result goes back to the proposer on this node. Empty entries (the no-op a new leader
	// appends) are not passed to Apply.
	Apply(index uint64, data []byte) (result any)
	// Snapshot returns the full state as of the last applied index (deterministic bytes).
	Snapshot() ([]byte, error)
	// Restore replaces the whole state with one made by Snapshot.
	Restore(data []byte) error
}

// Transport carries raft messages between Nodes. Inbound messages are handed to Node.Step;
// a transport that learns a MsgSnap was delivered (or not) calls Node.ReportSnapshot, and
// one that cannot reach a peer calls Node.ReportUnreachable.
type Transport interface {
	Send(msgs []*raftpb.Message)    // never blocks; drops when a peer's queue is full
	AddPeer(id uint64, peer []byte) // peer = opaque address (raftmesh: encoded NodeAddr)
	RemovePeer(id uint64)
}

// Storage is the node's durable raft log, hard state and snapshot.
type Storage interface {
	raft.Storage
	// Save makes hs, ents (which may overwrite a suffix) and snap durable (fsynced) before it
	// returns; applied in the order snap, ents, hs. Any of them may be nil/empty.
	Save(hs *raftpb.HardState, ents []*raftpb.Entry, snap *raftpb.Snapshot) error
	// CreateSnapshot records a snapshot of the state machine at index and compacts the log
	// below index-keep (keep is the storage's own policy).
	CreateSnapshot(index uint64, cs *raftpb.ConfState, data []byte) error
	Compact(index uint64) error
	Close() error
}

// Config configures a Node. ID, Storage, Transport and SM are required.
type Config struct {
	ID        uint64 // raft id, non-zero
	Storage   Storage
	Transport Transport
	SM        StateMachine
	Clock     clock.Clock  // nil: clock.Real()
	Log       *slog.Logger // nil: slog.Default()

	TickInterval time.Duration // 0: 100ms; an election takes 10 ticks, a heartbeat 1
	// SnapshotEvery is the number of applied entries between snapshots (0: 10000).
	SnapshotEvery uint64
	// Voters is the number of voters the leader aims for by promoting caught-up learners
	// (0: 3; use 1 with a single broker).
	Voters int
	// Bootstrap: peers to start a new cluster with (used only when Storage is empty).
	// Context = opaque peer address bytes (handed to Transport.AddPeer).
	Bootstrap []raft.Peer
}

const (
	defaultTick          = 100 * time.Millisecond
	electionTicks        = 10
	heartbeatTicks       = 1
	defaultSnapshotEvery = 10000
	defaultVoters        = 3
	// promoteLag: a learner whose Match is within this many entries of the leader's
	// commit index counts as caught up.
	promoteLag = 4
)

// ErrNotLeader is the cause of every *NotLeaderError.
var ErrNotLeader = errors.New("quorum: not the leader")

// NotLeaderError is returned by Propose, AddLearner, Promote and Remove on a node that is
// not the leader. Leader is the current leader's raft id, 0 when none is known. Retriable
// (at the leader).
type NotLeaderError struct{ Leader uint64 }

func (e *NotLeaderError) Error() string {
	if e.Leader == 0 {
		return "quorum: not the leader (no leader known)"
	}
	return fmt.Sprintf("quorum: not the leader (leader %x)", e.Leader)
}

func (e *NotLeaderError) Unwrap() error { return ErrNotLeader }

var (
	// ErrLeaderChanged: leadership changed (or the entry was overwritten) before a pending
	// proposal or read was applied here. The proposal may or may not have taken effect;
	// retriable (idempotent commands, or check first).
	ErrLeaderChanged = errors.New("quorum: leadership changed before the request completed; outcome unknown, retry")
	// ErrStopped: the node was stopped (or failed; see Node.Err).
	ErrStopped = errors.New("quorum: node stopped")
	// ErrConfChangeRejected: raft refused a membership change (another one is still
	// pending, or it was invalid).
	ErrConfChangeRejected = errors.New("quorum: membership change rejected")
	// ErrDropped: raft dropped the proposal (e.g. a leadership transfer is in progress or
	// too much is uncommitted). Retriable.
	ErrDropped = errors.New("quorum: proposal dropped")
)

// Progress is the leader's view of one peer's replication.
type Progress struct {
	Match, Next  uint64
	State        string // "StateProbe", "StateReplicate", "StateSnapshot"
	RecentActive bool
	Learner      bool
}

// Status is a snapshot of a Node's raft state.
type Status struct {
	ID       uint64
	Term     uint64
	Leader   uint64 // 0 when none known
	State    string // "StateLeader", "StateFollower", "StateCandidate", "StatePreCandidate"
	Commit   uint64
	Applied  uint64
	Voters   []uint64 // sorted
	Learners []uint64 // sorted
	// Progress of every peer, only on the leader.
	Progress map[uint64]Progress
	Removed  bool // this node saw its own removal applied
	Stopped  bool
}
