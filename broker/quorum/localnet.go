package quorum

import (
	"context"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/internal/raftnet"
)

// LocalNet is an in-memory network of Nodes for tests (an internal/raftnet.Net): each
// LocalTransport delivers its messages to the attached Node of the destination id through a
// per-destination queue and goroutine (so Send never blocks). Links can be cut, nodes
// isolated, and messages dropped by a filter; a message is checked both when sent and when
// delivered, so a cut also drops what was in flight. Close stops every delivery goroutine.
type LocalNet struct {
	*raftnet.Net[*raftpb.Message, *Node]
}

// LocalTransport is one raft id's end of a LocalNet; it implements Transport. Attach(n)
// makes n the receiver of the messages addressed to its id (nil detaches).
type LocalTransport = raftnet.End[*raftpb.Message, *Node]

// localQueueMax bounds a destination's queue; beyond it messages are dropped.
const localQueueMax = 4096

// NewLocalNet returns an empty network.
func NewLocalNet() *LocalNet {
	return &LocalNet{raftnet.New(raftnet.Config[*raftpb.Message, *Node]{
		QueueMax: localQueueMax,
		Ends: func(m *raftpb.Message) (uint64, uint64, bool) {
			return m.GetFrom(), m.GetTo(), m.GetType() == raftpb.MsgSnap
		},
		Clone: func(m *raftpb.Message) *raftpb.Message { return proto.Clone(m).(*raftpb.Message) },
		Step: func(ctx context.Context, n *Node, m *raftpb.Message) bool {
			return n.Step(ctx, m) == nil
		},
		Failed: func(n *Node, m *raftpb.Message) {
			if m.GetType() == raftpb.MsgSnap {
				n.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			}
			n.ReportUnreachable(m.GetTo())
		},
		SnapshotDone: func(n *Node, m *raftpb.Message, delivered bool) {
			if delivered {
				n.ReportSnapshot(m.GetTo(), raft.SnapshotFinish)
			} else {
				n.ReportSnapshot(m.GetTo(), raft.SnapshotFailure)
			}
		},
	})}
}

// Transport returns id's transport, creating it (and its delivery goroutine) on first use.
func (ln *LocalNet) Transport(id uint64) *LocalTransport { return ln.End(id) }
