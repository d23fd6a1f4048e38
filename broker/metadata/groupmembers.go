package metadata

// Classic consumer-group membership (issue #16): the group coordinator (package
// broker/group) runs on the quorum leader and records each group's membership (generation,
// protocol, leader, members and their assignments: Kafka's GroupMetadata record) as a
// GroupMembers command, so a coordinator started on a new leader restores the members and
// they go on without rejoining. The record bytes are broker/group's Membership encoding,
// opaque here (metadata does not import broker/group); the state keeps the latest record
// per group, with its generation in the clear for the ordering rule.

import (
	"maps"
	"slices"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// kindGroupMembers is the command kind of GroupMembers.
const kindGroupMembers = 17

// sectionGroupMembers is the tag of the snapshot section of recorded group memberships:
// count, then (group, generation, record) in ascending group order.
const sectionGroupMembers = 7

// MaxGroupMembersRecord bounds one group's membership record (broker/group records a larger
// membership as an empty group).
const MaxGroupMembersRecord = 1 << 20

// GroupMembers records a group's membership as of Generation (Record: broker/group's
// encoding; empty: the group has no recorded members). A record below the group's recorded
// generation (GroupGenerations, or an earlier GroupMembers) is stale and changes nothing;
// otherwise it replaces the group's record and raises its generation to Generation. A
// GroupGenerations above a group's recorded membership, and DeleteGroups, remove the
// membership (the generation stays). Result: *GroupMembersResult.
type GroupMembers struct {
	Group      string
	Generation int32
	Record     []byte
}

// GroupMembersResult is the result of GroupMembers: Code is CodeInvalidGroupID for an
// empty group id, CodeInvalidRequest for a negative generation or an oversized record
// (nothing changes then); Stale reports a record below the recorded generation (ignored).
type GroupMembersResult struct {
	Code  int16
	Stale bool
}

// GroupMembership is one group's recorded membership (GroupMembers).
type GroupMembership struct {
	Group      string
	Generation int32
	Record     []byte
}

func (*GroupMembers) kind() uint64 { return kindGroupMembers }
func (c *GroupMembers) appendFields(b []byte) []byte {
	b = postcard.AppendString(b, c.Group)
	b = appendI32(b, c.Generation)
	return postcard.AppendBytes(b, c.Record)
}

func decodeGroupMembers(d *dec) *GroupMembers {
	return &GroupMembers{Group: d.str(), Generation: d.i32(), Record: d.bytes()}
}

func (s *State) groupMembers(c *GroupMembers, dry bool) *GroupMembersResult {
	switch {
	case c.Group == "":
		return &GroupMembersResult{Code: CodeInvalidGroupID}
	case c.Generation < 0 || len(c.Record) > MaxGroupMembersRecord:
		return &GroupMembersResult{Code: CodeInvalidRequest}
	case c.Generation < s.gens[c.Group]:
		return &GroupMembersResult{Stale: true}
	}
	if !dry {
		if c.Generation > 0 {
			s.gens[c.Group] = c.Generation
		}
		if len(c.Record) == 0 || c.Generation == 0 {
			delete(s.members, c.Group)
		} else {
			s.members[c.Group] = memberRecord{gen: c.Generation, rec: slices.Clone(c.Record)}
		}
	}
	return &GroupMembersResult{}
}

// memberRecord is a group's recorded membership; gen equals the group's entry in
// State.gens (a higher generation removes the record).
type memberRecord struct {
	gen int32
	rec []byte
}

// GroupMemberships lists every group's recorded membership (copies), by group.
func (s *State) GroupMemberships() []GroupMembership {
	return read(s, func() []GroupMembership {
		out := make([]GroupMembership, 0, len(s.members))
		for _, g := range slices.Sorted(maps.Keys(s.members)) {
			m := s.members[g]
			out = append(out, GroupMembership{Group: g, Generation: m.gen, Record: slices.Clone(m.rec)})
		}
		return out
	})
}

// appendGroupMembers appends the section body, or returns nil without recorded members.
func (s *State) appendGroupMembers(b []byte) []byte {
	return appendSectionByKey(b, s.members, func(b []byte, m memberRecord) []byte {
		return postcard.AppendBytes(appendI32(b, m.gen), m.rec)
	})
}

// restoreGroupMembers reads the section appendGroupMembers writes into s (whose
// generations, section 6, are read).
func restoreGroupMembers(d *dec, s *State, check func(bool, string, ...any)) {
	n := d.count(3)
	check(n > 0, "empty section (a state without recorded members has none)")
	prev := ""
	for i := range n {
		g, gen, rec := d.str(), d.i32(), d.bytes()
		if d.err != nil {
			return
		}
		check(g != "" && (i == 0 || g > prev), "group %q empty or not in ascending order", g)
		check(gen > 0 && gen == s.gens[g], "group %q: membership of generation %d, recorded generation %d", g, gen, s.gens[g])
		check(len(rec) > 0 && len(rec) <= MaxGroupMembersRecord, "group %q: record of %d bytes", g, len(rec))
		if d.err != nil {
			return
		}
		prev, s.members[g] = g, memberRecord{gen: gen, rec: slices.Clone(rec)}
	}
}
