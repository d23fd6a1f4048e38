package group

import (
	"context"
	"time"
)

// TxnMember is the group membership a transactional offset commit names (TxnOffsetCommit v3,
// KIP-447): Generation -1, MemberID "" and InstanceID "" for none (older versions).
type TxnMember struct {
	Group      string
	Generation int32
	MemberID   string
	InstanceID string
}

// CheckTxnMember applies KIP-447's fencing of a transactional offset commit against the
// group, as Kafka's group coordinator does: a static member whose instance id now belongs
// to another member id is FENCED_INSTANCE_ID; a member id the group does not have is
// UNKNOWN_MEMBER_ID; a generation (≥ 0) other than the group's is ILLEGAL_GENERATION. An
// unknown group is treated as an empty one (a commit naming no member passes). It answers
// the error code through the output (an int16); it changes no state.
func (m *Machine) CheckTxnMember(now time.Time, tok Token, req *TxnMember) []Output {
	m.begin(now)
	m.reply(tok, checkTxnMember(m.groups[req.Group], req))
	return m.out
}

func checkTxnMember(g *group, req *TxnMember) int16 {
	if g != nil && g.cg != nil {
		return checkConsumerTxnMember(g.cg, req)
	}
	var generation int32
	if g != nil {
		if req.InstanceID != "" {
			if cur, ok := g.statics[req.InstanceID]; ok && cur != req.MemberID {
				return errFencedInstanceID
			}
		}
		generation = g.generation
	}
	if req.MemberID != "" && (g == nil || g.members[req.MemberID] == nil) {
		return errUnknownMemberID
	}
	if req.Generation >= 0 && req.Generation != generation {
		return errIllegalGeneration
	}
	return errNone
}

// checkConsumerTxnMember is checkTxnMember for a KIP-848 consumer group, whose members are
// its cgroup's and whose generation is the member epoch (Kafka's ConsumerGroup check of a
// transactional commit): a member id the group does not have is UNKNOWN_MEMBER_ID, an
// instance id of another member FENCED_INSTANCE_ID, a member epoch (≥ 0) other than the
// member's STALE_MEMBER_EPOCH. A commit naming no member passes.
func checkConsumerTxnMember(cg *cgroup, req *TxnMember) int16 {
	if req.MemberID == "" && req.InstanceID == "" {
		if req.Generation >= 0 {
			return errUnknownMemberID
		}
		return errNone
	}
	mem := cg.members[req.MemberID]
	switch {
	case mem == nil:
		return errUnknownMemberID
	case req.InstanceID != "" && mem.instance != req.InstanceID:
		return errFencedInstanceID
	case req.Generation >= 0 && req.Generation != mem.epoch:
		return errStaleMemberEpoch
	}
	return errNone
}

// CheckTxnMember runs Machine.CheckTxnMember: the Kafka error code refusing a transactional
// offset commit of this membership, or 0 (broker.TxnMemberChecker).
func (c *Coordinator) CheckTxnMember(ctx context.Context, group string, generation int32, memberID, instanceID string) (int16, error) {
	req := &TxnMember{Group: group, Generation: generation, MemberID: memberID, InstanceID: instanceID}
	r, err := c.do(ctx, func(m *Machine, now time.Time, tok Token) []Output { return m.CheckTxnMember(now, tok, req) })
	if err != nil {
		return 0, err
	}
	return r.(int16), nil
}
