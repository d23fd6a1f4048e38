package gateway

// Consumer-group APIs (files group_*.go). They reach the coordinator through the Backend's
// GroupBackend methods; when the Backend has no group support (its group ops answer
// brokerop.ErrUnsupported), every group API answers COORDINATOR_NOT_AVAILABLE, and a Go error from a GroupBackend call is answered with
// NOT_COORDINATOR, which makes clients look the coordinator up again and retry.
//
// Versions served (the flexible ones current clients negotiate included):
// FindCoordinator v0–6, JoinGroup v0–9, SyncGroup v0–5, Heartbeat v0–4, LeaveGroup v0–5,
// OffsetCommit v0–9, OffsetFetch v0–9, ListGroups v0–5, DescribeGroups v0–6,
// DeleteGroups v0–2, OffsetDelete v0, ConsumerGroupHeartbeat v0–1 and ConsumerGroupDescribe
// v0–1 (KIP-848, group_consumer.go). OffsetCommit and OffsetFetch v10 (topic ids) are not
// advertised. v0 OffsetCommit/OffsetFetch (ZooKeeper-era) are served like v1 with a
// generation-less "simple" commit. The gateway is every group's coordinator.

import (
	"context"
	"sync/atomic"

	"github.com/meshkafka/meshkafka/kafkawire"
)

// Kafka error codes used only by the group APIs.
const (
	errGroupIDNotFound      int16 = 69
	errUnstableOffsetCommit int16 = 88
)

// groupCall runs one GroupBackend call (op is the method, as GroupBackend.JoinGroup) and
// reduces "no group support" and call failures to the Kafka error code to answer with (0
// when resp is valid).
func groupCall[Req, Resp any](ctx context.Context, r *Request, op func(GroupBackend, context.Context, *Req) (*Resp, error), req *Req) (*Resp, int16) {
	return coordinatorCall(r, "group", func() (*Resp, error) { return op(r.Server.Backend(), ctx, req) })
}

// coordinatorCall runs one call of a coordinator's backend (GroupBackend or
// ProducerIDBackend) and reduces "not supported" and call failures to the
// Kafka error code to answer with (0 when resp is valid): COORDINATOR_NOT_AVAILABLE and
// NOT_COORDINATOR, which makes clients look the coordinator up again and retry.
func coordinatorCall[Resp any](r *Request, what string, call func() (*Resp, error)) (*Resp, int16) {
	resp, err := call()
	if unsupported(err) {
		return nil, kafkawire.ErrCoordinatorNotAvailable
	}
	if err != nil {
		r.Server.Logger().Debug(what+" backend call failed", "key", r.Header.APIKey, "err", err)
		return nil, kafkawire.ErrNotCoordinator
	}
	return resp, 0
}

// coordinatorSupport learns once whether the backend serves a coordinator's ops, for
// FindCoordinator: probe (an empty DescribeGroups for groups, DescribeTransactions for
// transactions) answered ErrUnsupported means no; any answer means yes. A failed probe
// (broker unreachable) is not remembered and counts as yes (the call itself then answers
// NOT_COORDINATOR, and the client retries).
type coordinatorSupport struct {
	known atomic.Int32 // 0 not known yet, 1 served, 2 not served
}

func (g *coordinatorSupport) has(probe func() error) bool {
	switch g.known.Load() {
	case 1:
		return true
	case 2:
		return false
	}
	err := probe()
	switch {
	case unsupported(err):
		g.known.Store(2)
		return false
	case err == nil:
		g.known.Store(1)
	}
	return true
}

func strOrEmpty(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func nilIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
