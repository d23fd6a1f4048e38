package group

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// Durable classic-group membership (Kafka's GroupMetadata records). A classic group's
// membership is recorded (KindMembers) at the points where Kafka's coordinator stores the
// group, and where an answer tells a member something a new coordinator must know:
//
//   - a rebalance's join phase completed (CompletingRebalance: the new generation, its
//     protocol, leader and members; or Empty when no member is left): every JoinGroup
//     answer carries the record, so no member learns a generation that is not durable;
//   - the leader's SyncGroup made the group Stable: the leader's and the parked followers'
//     SyncGroup answers carry the record with every member's assignment;
//   - a static member was replaced without a rebalance (its join answer carries it);
//   - a LeaveGroup removed members: the answer carries the group without them, so a member
//     that left is never brought back by a new coordinator.
//
// Not recorded (as in Kafka): members joining a rebalance in progress (a new coordinator
// does not know them; their retried JoinGroup is UNKNOWN_MEMBER_ID and they join afresh, as
// new members own nothing), expired sessions and members dropped at a rebalance timeout (a
// new coordinator restores them and they expire again, counted from its start; no other
// member was given their partitions, which takes a completed rebalance, recorded). A new
// coordinator (Machine.RestoreMembers) restores the last recorded membership of each group:
// members keep their ids, generation, protocol and leader, a Stable group its assignments,
// and every session and rebalance timer starts at the takeover.

// Membership is a classic group's recorded membership (a KindMembers record's body).
type Membership struct {
	Generation   int32
	State        State // Empty, PreparingRebalance, CompletingRebalance or Stable
	ProtocolType string
	Protocol     string
	Leader       string // a member's id; "" only while preparing a rebalance the leader left
	Members      []MemberRecord
}

// MemberRecord is one member of a recorded Membership, in join order.
type MemberRecord struct {
	ID, InstanceID       string
	ClientID, ClientHost string
	SessionMs            int32
	RebalanceMs          int32
	Protocols            []brokerop.GroupProtocol
	Assignment           []byte // Stable groups only
}

// membershipVersion is the first byte of an encoded Membership.
const membershipVersion = 1

// AppendMembership appends ms's encoding (see doc.go, "Offset log"):
//
//	membership = version:u8 (=1) | generation:i32 | state:u8 | protocolType:str |
//	             protocol:str | leader:str | count:uvarint | member*count
//	member     = id:str | instance:str | clientID:str | clientHost:str | sessionMs:i32 |
//	             rebalanceMs:i32 | count:uvarint | (name:str | metadata:str)*count |
//	             assignment:str
func AppendMembership(b []byte, ms *Membership) []byte {
	b = append(b, membershipVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(ms.Generation))
	b = append(b, byte(ms.State))
	b = appendString(b, ms.ProtocolType)
	b = appendString(b, ms.Protocol)
	b = appendString(b, ms.Leader)
	b = binary.AppendUvarint(b, uint64(len(ms.Members)))
	for _, mr := range ms.Members {
		b = appendString(b, mr.ID)
		b = appendString(b, mr.InstanceID)
		b = appendString(b, mr.ClientID)
		b = appendString(b, mr.ClientHost)
		b = binary.BigEndian.AppendUint32(b, uint32(mr.SessionMs))
		b = binary.BigEndian.AppendUint32(b, uint32(mr.RebalanceMs))
		b = binary.AppendUvarint(b, uint64(len(mr.Protocols)))
		for _, p := range mr.Protocols {
			b = appendString(b, p.Name)
			b = appendString(b, string(p.Metadata))
		}
		b = appendString(b, string(mr.Assignment))
	}
	return b
}

// DecodeMembership decodes an encoded Membership; every byte must be consumed and the
// membership must be one the Machine can have (ErrBadEntry otherwise, wrapped with why).
func DecodeMembership(data []byte) (*Membership, error) {
	d := decoder{b: data}
	ms, err := d.membership()
	if err == nil && len(d.b) != 0 {
		err = fmt.Errorf("%w: membership: %d trailing bytes", ErrBadEntry, len(d.b))
	}
	if err != nil {
		return nil, err
	}
	return ms, nil
}

func (d *decoder) membership() (*Membership, error) {
	if v := d.byte(); d.err == nil && v != membershipVersion {
		return nil, fmt.Errorf("%w: membership version %d", ErrBadEntry, v)
	}
	ms := &Membership{Generation: int32(d.u32()), State: State(d.byte())}
	ms.ProtocolType, ms.Protocol, ms.Leader = d.string(), d.string(), d.string()
	n := d.uvarint()
	// Each member takes at least 15 bytes: never preallocate beyond what the input holds.
	if d.err == nil && n > uint64(len(d.b)/15) {
		return nil, fmt.Errorf("%w: %d members in %d bytes", ErrBadEntry, n, len(d.b))
	}
	for i := uint64(0); i < n && d.err == nil; i++ {
		mr := MemberRecord{ID: d.string(), InstanceID: d.string(), ClientID: d.string(), ClientHost: d.string(),
			SessionMs: int32(d.u32()), RebalanceMs: int32(d.u32())}
		np := d.uvarint()
		if d.err == nil && np > uint64(len(d.b)/2) {
			return nil, fmt.Errorf("%w: %d protocols in %d bytes", ErrBadEntry, np, len(d.b))
		}
		for j := uint64(0); j < np && d.err == nil; j++ {
			p := brokerop.GroupProtocol{Name: d.string()}
			if md := d.string(); md != "" {
				p.Metadata = []byte(md)
			}
			mr.Protocols = append(mr.Protocols, p)
		}
		if a := d.string(); a != "" {
			mr.Assignment = []byte(a)
		}
		ms.Members = append(ms.Members, mr)
	}
	if d.err != nil {
		return nil, d.err
	}
	if err := ms.validate(); err != nil {
		return nil, fmt.Errorf("%w: membership: %w", ErrBadEntry, err)
	}
	return ms, nil
}

// validate checks what restoring ms relies on.
func (ms *Membership) validate() error {
	switch ms.State {
	case Empty, PreparingRebalance, CompletingRebalance, Stable:
	default:
		return fmt.Errorf("state %d", ms.State)
	}
	if ms.Generation < 0 {
		return fmt.Errorf("generation %d", ms.Generation)
	}
	if (ms.State == Empty) != (len(ms.Members) == 0) {
		return fmt.Errorf("%s with %d members", ms.State, len(ms.Members))
	}
	ids, instances := map[string]bool{}, map[string]bool{}
	leader := ms.Leader == "" && ms.State != CompletingRebalance && ms.State != Stable
	for _, mr := range ms.Members {
		if mr.ID == "" || ids[mr.ID] {
			return fmt.Errorf("member id %q empty or repeated", mr.ID)
		}
		ids[mr.ID] = true
		if mr.InstanceID != "" {
			if instances[mr.InstanceID] {
				return fmt.Errorf("instance id %q repeated", mr.InstanceID)
			}
			instances[mr.InstanceID] = true
		}
		if mr.SessionMs <= 0 || mr.RebalanceMs <= 0 || len(mr.Protocols) == 0 {
			return fmt.Errorf("member %q: session %d ms, rebalance %d ms, %d protocols", mr.ID, mr.SessionMs, mr.RebalanceMs, len(mr.Protocols))
		}
		if mr.Assignment != nil && ms.State != Stable {
			return fmt.Errorf("member %q: an assignment in %s", mr.ID, ms.State)
		}
		leader = leader || mr.ID == ms.Leader
	}
	if !leader {
		return fmt.Errorf("leader %q not a member", ms.Leader)
	}
	return nil
}

// membership is g's membership as a record would hold it now: members that joined a
// rebalance still in its join phase (fresh) are left out, as Kafka stores only a completed
// generation's members; a rebalance being prepared with none of the previous generation's
// members left is recorded as Empty.
func (g *group) membership() *Membership {
	ms := &Membership{Generation: g.generation, State: g.state, ProtocolType: g.protocolType, Protocol: g.protocol, Leader: g.leader}
	if g.state == Empty || g.state == Dead {
		ms.State, ms.Protocol, ms.Leader = Empty, "", ""
		return ms
	}
	for _, id := range g.order {
		mem := g.members[id]
		if mem.fresh {
			continue
		}
		mr := MemberRecord{
			ID: mem.id, InstanceID: mem.instance, ClientID: mem.clientID, ClientHost: mem.clientHost,
			SessionMs: int32(mem.session.Milliseconds()), RebalanceMs: int32(mem.rebalance.Milliseconds()),
			Protocols: cloneProtocols(mem.protocols),
		}
		if g.state == Stable {
			mr.Assignment = bytes.Clone(mem.assignment)
		}
		ms.Members = append(ms.Members, mr)
	}
	if len(ms.Members) == 0 {
		ms.State, ms.Protocol, ms.Leader = Empty, "", ""
	}
	return ms
}

// MaxMembershipBytes bounds an encoded Membership. A group whose membership encodes larger
// (thousands of members with large subscriptions) is recorded as Empty at its generation:
// its members rejoin a new coordinator, as before memberships were durable.
const MaxMembershipBytes = maxStringLen

// membersRecord is the KindMembers record of g's membership now.
func (g *group) membersRecord() Record {
	ms := g.membership()
	if len(ms.Members) > 0 && len(AppendMembership(nil, ms)) > MaxMembershipBytes {
		ms = &Membership{Generation: ms.Generation, State: Empty, ProtocolType: ms.ProtocolType}
	}
	return Record{Kind: KindMembers, Group: g.id, Generation: ms.Generation, Members: ms}
}

// RestoreMembers makes the recorded membership of every group (the KindMembers records
// applied so far) live, as a new coordinator does when it takes over: members keep their
// ids, the group its generation, protocol, leader, state and (Stable) assignments; every
// session expires a session timeout after now and a rebalance in progress ends a rebalance
// timeout after now. A membership recorded below the group's generation (a later
// generation's record is missing) is not restored: the group starts Empty at its
// generation, and its members rejoin. Groups that already have members (or are consumer
// groups) are left alone.
func (m *Machine) RestoreMembers(now time.Time) {
	for id, g := range m.groups {
		ms := g.recorded
		if ms == nil || ms.State == Empty || len(g.members) > 0 || g.cg != nil || ms.Generation != g.generation {
			continue
		}
		g.state, g.protocolType, g.protocol, g.leader = ms.State, ms.ProtocolType, ms.Protocol, ms.Leader
		for _, mr := range ms.Members {
			mem := &member{
				id: mr.ID, instance: mr.InstanceID, clientID: mr.ClientID, clientHost: mr.ClientHost,
				protocolType: ms.ProtocolType, protocols: cloneProtocols(mr.Protocols),
				session:   time.Duration(mr.SessionMs) * time.Millisecond,
				rebalance: time.Duration(mr.RebalanceMs) * time.Millisecond,
			}
			mem.expires = now.Add(mem.session)
			if ms.State == Stable {
				mem.assignment = bytes.Clone(mr.Assignment)
			}
			g.members[mem.id] = mem
			g.order = append(g.order, mem.id)
			if mem.instance != "" {
				g.statics[mem.instance] = mem.id
			}
		}
		if ms.State == PreparingRebalance || ms.State == CompletingRebalance {
			g.deadline = now.Add(g.maxRebalance())
		}
		m.touch(id)
	}
}

// dedupMembers drops every KindMembers record followed by a later one of the same group
// (every answer of a rebalance carries the same record; the last one is the state after
// all of them), keeping the order of the rest.
func dedupMembers(recs []Record) []Record {
	n := 0
	for _, r := range recs {
		if r.Kind == KindMembers {
			n++
		}
	}
	if n < 2 {
		return recs
	}
	seen := map[string]bool{}
	out := make([]Record, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- {
		r := recs[i]
		if r.Kind == KindMembers {
			if seen[r.Group] {
				continue
			}
			seen[r.Group] = true
		}
		out = append(out, r)
	}
	slices.Reverse(out)
	return out
}
