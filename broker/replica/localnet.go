package replica

import (
	"context"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/internal/raftnet"
)

// LocalNet is an in-memory network of Engines for tests of this package and of others (an
// internal/raftnet.Net): each LocalEndpoint delivers the messages sent to its raft id to the
// attached Engine through a queue and a goroutine, so Send never blocks. Nodes can be
// isolated, links cut and messages dropped by a filter; a message is checked when sent and
// again when delivered, so a cut also loses what was in flight. Close stops every delivery
// goroutine.
type LocalNet struct {
	*raftnet.Net[GroupMessage, *Engine]
}

// LocalEndpoint is one raft id's end of a LocalNet; it implements Transport. Attach(e) makes
// e the receiver of the messages sent to its id (replacing an earlier Engine, e.g. after a
// restart; nil detaches: messages are then lost).
type LocalEndpoint = raftnet.End[GroupMessage, *Engine]

// localQueueMax bounds an endpoint's inbound queue; beyond it messages are lost.
const localQueueMax = 1 << 16

// NewLocalNet returns an empty network.
func NewLocalNet() *LocalNet {
	return &LocalNet{raftnet.New(raftnet.Config[GroupMessage, *Engine]{
		QueueMax: localQueueMax,
		Ends: func(m GroupMessage) (uint64, uint64, bool) {
			return m.Msg.GetFrom(), m.Msg.GetTo(), m.Msg.GetType() == raftpb.MessageType_MsgSnap
		},
		Clone: func(m GroupMessage) GroupMessage {
			return GroupMessage{Group: m.Group, Msg: proto.Clone(m.Msg).(*raftpb.Message)}
		},
		Step: func(_ context.Context, e *Engine, m GroupMessage) bool {
			e.Step(m)
			return true
		},
		Failed: func(e *Engine, m GroupMessage) {
			if m.Msg.GetType() == raftpb.MessageType_MsgSnap {
				e.ReportSnapshot(m.Group, m.Msg.GetTo(), false)
			}
			e.ReportUnreachable(m.Msg.GetTo())
		},
		SnapshotDone: func(e *Engine, m GroupMessage, delivered bool) {
			e.ReportSnapshot(m.Group, m.Msg.GetTo(), delivered)
		},
	})}
}

// Endpoint returns id's endpoint, creating it (and its delivery goroutine) on first use.
func (ln *LocalNet) Endpoint(id uint64) *LocalEndpoint { return ln.End(id) }
