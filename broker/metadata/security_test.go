package metadata_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"math"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
	"github.com/meshkafka/meshkafka/internal/postcard"
)

func acl(name, principal string, op int8) metadata.ACL {
	return metadata.ACL{ResourceType: 2, ResourceName: name, PatternType: 3, Principal: principal, Host: "*", Operation: op, Permission: 3}
}

func cred(mech int8, b byte) metadata.ScramCredential {
	return metadata.ScramCredential{Mechanism: mech, Iterations: 4096, Salt: []byte{b}, StoredKey: []byte{b, 1}, ServerKey: []byte{b, 2}}
}

func user(name string) []metadata.QuotaPart { return []metadata.QuotaPart{{Type: "user", Name: name}} }

func securityCommands() []metadata.Command {
	return []metadata.Command{
		&metadata.CreateACLs{ACLs: []metadata.ACL{acl("t", "User:alice", 3), acl("", "", -1)}},
		&metadata.DeleteACLs{ACLs: []metadata.ACL{acl("t", "User:alice", 3)}},
		&metadata.AlterScram{Deletions: []metadata.ScramDeletion{{User: "bob", Mechanism: 2}},
			Upsertions: []metadata.ScramUpsertion{{User: "alice", Credential: cred(1, 7)}}},
		&metadata.AlterQuotas{Entries: []metadata.QuotaChange{
			{Entity: []metadata.QuotaPart{{Type: "client-id", Default: true}, {Type: "user", Name: "a"}},
				Set: map[string]float64{"producer_byte_rate": 1024, "consumer_byte_rate": 0.5}, Remove: []string{"x"}}}},
		&metadata.SetRoles{NodeID: node(3), Roles: metadata.RoleGateway | metadata.RoleAdmin},
	}
}

func (g *gen) securityCommand() metadata.Command {
	principal := []string{"User:a", "User:b", ""}[g.r.IntN(3)]
	switch g.r.IntN(6) {
	case 0:
		c := &metadata.CreateACLs{}
		for range 1 + g.r.IntN(3) {
			c.ACLs = append(c.ACLs, acl(g.name(), principal, int8(g.r.IntN(3))))
		}
		return c
	case 1:
		return &metadata.DeleteACLs{ACLs: []metadata.ACL{acl(g.name(), principal, int8(g.r.IntN(3)))}}
	case 2:
		c := &metadata.AlterScram{}
		for range g.r.IntN(2) {
			c.Deletions = append(c.Deletions, metadata.ScramDeletion{User: g.key(), Mechanism: int8(1 + g.r.IntN(2))})
		}
		for range g.r.IntN(3) {
			c.Upsertions = append(c.Upsertions, metadata.ScramUpsertion{User: []string{"k1", "k2", ""}[g.r.IntN(3)],
				Credential: cred(int8(g.r.IntN(3)), byte(g.r.IntN(4)))})
		}
		return c
	case 3, 4:
		ch := metadata.QuotaChange{Entity: user(g.key()), Set: map[string]float64{}}
		if g.r.IntN(5) == 0 {
			ch.Entity = nil
		}
		for range g.r.IntN(3) {
			ch.Set[g.key()] = float64(g.r.IntN(3))
		}
		for range g.r.IntN(2) {
			ch.Remove = append(ch.Remove, g.key())
		}
		return &metadata.AlterQuotas{Entries: []metadata.QuotaChange{ch}}
	default:
		return &metadata.SetRoles{NodeID: node(byte(g.r.IntN(3))), Roles: uint8(g.r.IntN(9))}
	}
}

func TestACLs(t *testing.T) {
	s := metadata.New()
	a, b, c := acl("t", "User:a", 3), acl("t", "User:b", 3), acl("u", "User:a", 2)
	check(t, apply(t, s, &metadata.CreateACLs{ACLs: []metadata.ACL{b, a, b}}), &metadata.ACLsResult{Changed: []bool{true, true, false}})
	check(t, apply(t, s, &metadata.CreateACLs{ACLs: []metadata.ACL{a, c}}), &metadata.ACLsResult{Changed: []bool{false, true}})
	check(t, s.ACLs(), []metadata.ACL{a, b, c}) // sorted: resource name, then principal
	check(t, apply(t, s, &metadata.DeleteACLs{ACLs: []metadata.ACL{b, b, acl("x", "User:a", 1)}}), &metadata.ACLsResult{Changed: []bool{true, false, false}})
	check(t, s.ACLs(), []metadata.ACL{a, c})
}

func TestScram(t *testing.T) {
	s := metadata.New()
	r := apply(t, s, &metadata.AlterScram{
		Deletions: []metadata.ScramDeletion{{User: "alice", Mechanism: 1}},
		Upsertions: []metadata.ScramUpsertion{{User: "alice", Credential: cred(2, 1)}, {User: "alice", Credential: cred(1, 2)},
			{User: "", Credential: cred(1, 3)}, {User: "bob", Credential: metadata.ScramCredential{Mechanism: 1, Iterations: 4096}}}})
	check(t, r, &metadata.CodesResult{Codes: []int16{metadata.CodeResourceNotFound, 0, 0, metadata.CodeInvalidRequest, metadata.CodeInvalidRequest}})
	check(t, s.ScramUsers(), []metadata.ScramUser{{Name: "alice", Credentials: []metadata.ScramCredential{cred(1, 2), cred(2, 1)}}})
	r = apply(t, s, &metadata.AlterScram{Deletions: []metadata.ScramDeletion{{User: "alice", Mechanism: 1}, {User: "alice", Mechanism: 1}, {User: "alice", Mechanism: 2}}})
	check(t, r, &metadata.CodesResult{Codes: []int16{0, metadata.CodeResourceNotFound, 0}})
	if _, ok := s.ScramUser("alice"); ok {
		t.Error("alice still has credentials after both were deleted")
	}
}

func TestQuotas(t *testing.T) {
	s := metadata.New()
	r := apply(t, s, &metadata.AlterQuotas{Entries: []metadata.QuotaChange{
		{Entity: user("a"), Set: map[string]float64{"producer_byte_rate": 100, "consumer_byte_rate": 5}},
		{Entity: nil, Set: map[string]float64{"producer_byte_rate": 1}},
		{Entity: user("b"), Set: map[string]float64{"producer_byte_rate": math.NaN()}},
		{Entity: user("b"), Set: map[string]float64{"producer_byte_rate": -1}},
		{Entity: []metadata.QuotaPart{{Type: "user"}, {Type: "client-id"}}, Set: map[string]float64{"k": 1}},
		{Entity: []metadata.QuotaPart{{Type: "user", Default: true, Name: "x"}}, Set: map[string]float64{"k": 1}},
		{Entity: user("c"), Set: map[string]float64{"k": 1}, Remove: []string{"k"}},
	}})
	inv := metadata.CodeInvalidRequest
	check(t, r, &metadata.CodesResult{Codes: []int16{0, inv, inv, inv, inv, inv, inv}})
	mustApply(t, s, &metadata.AlterQuotas{Entries: []metadata.QuotaChange{{Entity: user("a"), Remove: []string{"consumer_byte_rate"}}}})
	check(t, s.Quotas(), []metadata.Quota{{Entity: user("a"), Values: map[string]float64{"producer_byte_rate": 100}}})
	mustApply(t, s, &metadata.AlterQuotas{Entries: []metadata.QuotaChange{{Entity: user("a"), Remove: []string{"producer_byte_rate"}}}})
	if q := s.Quotas(); len(q) != 0 {
		t.Errorf("an entity without quotas is kept: %+v", q)
	}
}

func TestRoles(t *testing.T) {
	s := metadata.New()
	check(t, apply(t, s, &metadata.SetRoles{NodeID: node(1), Roles: metadata.RoleGateway}), &metadata.SetRolesResult{})
	check(t, apply(t, s, &metadata.SetRoles{NodeID: node(1), Roles: 0x80}), &metadata.SetRolesResult{Code: metadata.CodeInvalidRequest, Previous: metadata.RoleGateway})
	check(t, apply(t, s, &metadata.SetRoles{Roles: metadata.RoleGateway}), &metadata.SetRolesResult{Code: metadata.CodeInvalidRequest})
	if s.Roles(node(1)) != metadata.RoleGateway || s.Roles(node(2)) != 0 {
		t.Errorf("roles %#x %#x", s.Roles(node(1)), s.Roles(node(2)))
	}
	mustApply(t, s, &metadata.SetRoles{NodeID: node(1)})
	if len(s.RoleNodes()) != 0 {
		t.Errorf("roles 0 kept the node: %v", s.RoleNodes())
	}
}

// The security state is the snapshot's section 3: round trips, absent when empty, and a
// section out of order or empty is refused.
func TestSecuritySnapshot(t *testing.T) {
	s := metadata.New()
	empty := snap(t, s)
	mustApply(t, s, securityCommands()[0], securityCommands()[2], securityCommands()[3], securityCommands()[4])
	sn := snap(t, s)
	n := metadata.New()
	if err := n.Restore(sn); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(snap(t, n), sn) || len(n.ACLs()) != 2 || len(n.ScramUsers()) != 1 || len(n.Quotas()) != 1 || n.Roles(node(3)) == 0 {
		t.Fatalf("restored security state differs: %+v %+v %+v %v", n.ACLs(), n.ScramUsers(), n.Quotas(), n.RoleNodes())
	}
	// Deleting everything again gives the snapshot of a state that never had any.
	mustApply(t, s, &metadata.DeleteACLs{ACLs: s.ACLs()},
		&metadata.AlterScram{Deletions: []metadata.ScramDeletion{{User: "alice", Mechanism: 1}}},
		&metadata.AlterQuotas{Entries: []metadata.QuotaChange{{Entity: s.Quotas()[0].Entity, Remove: []string{"producer_byte_rate", "consumer_byte_rate"}}}},
		&metadata.SetRoles{NodeID: node(3)})
	e := metadata.New()
	e.Apply(s.LastApplied(), nil)
	if !bytes.Equal(snap(t, s), snap(t, e)) {
		t.Error("an emptied security state still writes a section")
	}
	emptyBody := empty[9:]
	section := sn[9+len(emptyBody):] // s and a new state differ only there (and the applied index, 0)
	if !bytes.Equal(sn[9 : 9+len(emptyBody)][1:], emptyBody[1:]) {
		t.Fatal("test assumption: only the applied index and the section differ")
	}
	for name, body := range map[string][]byte{
		"empty section":   append(bytes.Clone(emptyBody), append(postcard.AppendUvarint(nil, 3), postcard.AppendBytes(nil, []byte{0, 0, 0, 0})...)...),
		"unknown section": append(bytes.Clone(emptyBody), append(postcard.AppendUvarint(nil, 9), postcard.AppendBytes(nil, nil)...)...),
		"section twice":   append(append(bytes.Clone(emptyBody), section...), section...),
		"section cut":     append(bytes.Clone(emptyBody), section[:len(section)-1]...),
	} {
		if err := metadata.New().Restore(reseal(body)); !errors.Is(err, metadata.ErrBadSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := metadata.New().Restore(reseal(append(bytes.Clone(emptyBody), section...))); err != nil {
		t.Errorf("the section on an empty state's body: %v", err)
	}
}

func TestGoldenSecurityEncodings(t *testing.T) {
	for _, c := range []struct {
		name string
		got  []byte
		want string
	}{
		{"CreateACLs", metadata.EncodeCommand(&metadata.CreateACLs{ACLs: []metadata.ACL{acl("t", "U", 3)}}),
			"01" + "1e" + "01" + "02" + "0174" + "03" + "0155" + "012a" + "03" + "03"},
		{"AlterScram", metadata.EncodeCommand(&metadata.AlterScram{Deletions: []metadata.ScramDeletion{{User: "b", Mechanism: 2}},
			Upsertions: []metadata.ScramUpsertion{{User: "a", Credential: cred(1, 7)}}}),
			"01" + "20" + "01" + "0162" + "02" + "01" + "0161" + "01" + "8040" + "0107" + "020701" + "020702"},
		{"AlterQuotas", metadata.EncodeCommand(&metadata.AlterQuotas{Entries: []metadata.QuotaChange{{Entity: user("a"), Set: map[string]float64{"p": 1}}}}),
			"01" + "21" + "01" + "01" + "0475736572" + "00" + "0161" + "01" + "0170" + "000000000000f03f" + "00"},
		{"SetRoles", metadata.EncodeCommand(&metadata.SetRoles{NodeID: node(1), Roles: metadata.RoleGateway}),
			"01" + "22" + "01" + "000000000000000000000000000000000000000000000000000000000000" + "01" + "02"},
	} {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.name, got, c.want)
		}
	}
	s := metadata.New()
	mustApply(t, s, &metadata.SetRoles{NodeID: node(1), Roles: metadata.RoleGateway})
	// applied 1 | "" | pid 0 | kafka id 1 | five empty tables | section 3: 4 tables, one role
	want := "01" + "00" + "00" + "02" + "0000000000" + "03" + "25" + "00" + "00" + "00" + "01" +
		"01000000000000000000000000000000000000000000000000000000000000" + "01" + "02"
	if got := hex.EncodeToString(snap(t, s)[9:]); got != want {
		t.Errorf("snapshot body with a role:\ngot  %s\nwant %s", got, want)
	}
}
