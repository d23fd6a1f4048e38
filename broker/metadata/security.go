package metadata

// Security metadata (issue #17): ACL bindings, SCRAM credentials, client quotas and the roles
// of mesh nodes. Commands of kinds 30–39 (see doc.go); the state is the snapshot's trailing
// section 3. Kafka's validation (principal syntax, mechanisms, iteration bounds, quota keys)
// is the proposer's (package broker); Apply checks only what keeps the state well formed.

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// Command kinds of the security commands (30–39 are reserved for them).
const (
	kindCreateACLs  = 30
	kindDeleteACLs  = 31
	kindAlterScram  = 32
	kindAlterQuotas = 33
	kindSetRoles    = 34
)

// Codes the security commands answer besides the common ones.
const (
	CodeResourceNotFound int16 = 91
)

// ACL is one Kafka ACL binding, with Kafka's numeric enums (package broker/acl has the model).
type ACL struct {
	ResourceType int8
	ResourceName string
	PatternType  int8
	Principal    string
	Host         string
	Operation    int8
	Permission   int8
}

// CompareACL orders bindings field by field, in declaration order: the order State keeps
// them in (ACLs) and a DeleteACLs proposer can sort by.
func CompareACL(a, b ACL) int {
	return cmp.Or(cmp.Compare(a.ResourceType, b.ResourceType), strings.Compare(a.ResourceName, b.ResourceName),
		cmp.Compare(a.PatternType, b.PatternType), strings.Compare(a.Principal, b.Principal), strings.Compare(a.Host, b.Host),
		cmp.Compare(a.Operation, b.Operation), cmp.Compare(a.Permission, b.Permission))
}

// ScramCredential is what is stored for one user and mechanism (never a password).
type ScramCredential struct {
	Mechanism  int8 // 1 SCRAM-SHA-256, 2 SCRAM-SHA-512 (Kafka's numbering)
	Iterations int32
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

func (c ScramCredential) clone() ScramCredential {
	c.Salt, c.StoredKey, c.ServerKey = slices.Clone(c.Salt), slices.Clone(c.StoredKey), slices.Clone(c.ServerKey)
	return c
}

// ScramUser is one user's credentials, sorted by mechanism.
type ScramUser struct {
	Name        string
	Credentials []ScramCredential
}

// QuotaPart is one part of a client-quota entity: its type ("user", "client-id") and name;
// Default is Kafka's default entity (a null name; Name is then "").
type QuotaPart struct {
	Type    string
	Name    string
	Default bool
}

// Quota is one entity's quotas.
type Quota struct {
	Entity []QuotaPart // sorted by type, types unique
	Values map[string]float64
}

// Role bits of a mesh node (SetRoles). A registered broker is a broker by membership; the
// role table says what else a NodeId may do.
const (
	RoleBroker  uint8 = 1 << 0 // may take part as a broker (admission, like AllowBroker)
	RoleGateway uint8 = 1 << 1 // may call the brokers' kafkaop service as a gateway
	RoleAdmin   uint8 = 1 << 2 // may call the cluster's operator ops over the mesh
	roleMask          = RoleBroker | RoleGateway | RoleAdmin
)

// CreateACLs adds bindings (one already stored is not stored twice).
type CreateACLs struct{ ACLs []ACL }

// DeleteACLs removes bindings (the proposer resolves Kafka's filters into bindings).
type DeleteACLs struct{ ACLs []ACL }

// AlterScram deletes and upserts SCRAM credentials. Kafka's per-user rules (a user with any
// invalid alteration gets none applied) are the proposer's; here each item stands alone.
type AlterScram struct {
	Deletions  []ScramDeletion
	Upsertions []ScramUpsertion
}

// ScramDeletion removes one user's credential of one mechanism.
type ScramDeletion struct {
	User      string
	Mechanism int8
}

// ScramUpsertion sets one user's credential of one mechanism.
type ScramUpsertion struct {
	User       string
	Credential ScramCredential
}

// AlterQuotas sets and removes client quotas.
type AlterQuotas struct{ Entries []QuotaChange }

// QuotaChange is one entity's change: Set keys are set, Remove keys removed; an entity left
// with no quota is removed.
type QuotaChange struct {
	Entity []QuotaPart
	Set    map[string]float64
	Remove []string
}

// SetRoles sets a NodeId's roles (0: none; the node is then forgotten).
type SetRoles struct {
	NodeID NodeID
	Roles  uint8
}

// ACLsResult reports, per binding of a CreateACLs or DeleteACLs in order, whether it changed
// the stored set (added, or deleted).
type ACLsResult struct{ Changed []bool }

// CodesResult is one Kafka error code per item, in order (AlterScram: deletions, then
// upsertions; AlterQuotas: entries).
type CodesResult struct{ Codes []int16 }

// SetRolesResult reports the node's roles before the command, and a code (INVALID_REQUEST for
// unknown role bits or the zero NodeId).
type SetRolesResult struct {
	Code     int16
	Previous uint8
}

func (*CreateACLs) kind() uint64  { return kindCreateACLs }
func (*DeleteACLs) kind() uint64  { return kindDeleteACLs }
func (*AlterScram) kind() uint64  { return kindAlterScram }
func (*AlterQuotas) kind() uint64 { return kindAlterQuotas }
func (*SetRoles) kind() uint64    { return kindSetRoles }

func appendI8(b []byte, v int8) []byte { return append(b, byte(v)) }

func appendACL(b []byte, a ACL) []byte {
	b = appendI8(b, a.ResourceType)
	b = postcard.AppendString(b, a.ResourceName)
	b = appendI8(b, a.PatternType)
	b = postcard.AppendString(b, a.Principal)
	b = postcard.AppendString(b, a.Host)
	b = appendI8(b, a.Operation)
	return appendI8(b, a.Permission)
}

func appendACLs(b []byte, as []ACL) []byte {
	b = postcard.AppendUvarint(b, uint64(len(as)))
	for _, a := range as {
		b = appendACL(b, a)
	}
	return b
}

func appendCred(b []byte, c ScramCredential) []byte {
	b = appendI8(b, c.Mechanism)
	b = appendI32(b, c.Iterations)
	b = postcard.AppendBytes(b, c.Salt)
	b = postcard.AppendBytes(b, c.StoredKey)
	return postcard.AppendBytes(b, c.ServerKey)
}

func appendParts(b []byte, ps []QuotaPart) []byte {
	b = postcard.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = postcard.AppendString(b, p.Type)
		b = postcard.AppendBool(b, p.Default)
		b = postcard.AppendString(b, p.Name)
	}
	return b
}

func appendF64(b []byte, v float64) []byte {
	return binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
}

func appendFloats(b []byte, m map[string]float64) []byte {
	b = postcard.AppendUvarint(b, uint64(len(m)))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		b = postcard.AppendString(b, k)
		b = appendF64(b, m[k])
	}
	return b
}

func (c *CreateACLs) appendFields(b []byte) []byte { return appendACLs(b, c.ACLs) }
func (c *DeleteACLs) appendFields(b []byte) []byte { return appendACLs(b, c.ACLs) }

func (c *AlterScram) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(c.Deletions)))
	for _, d := range c.Deletions {
		b = postcard.AppendString(b, d.User)
		b = appendI8(b, d.Mechanism)
	}
	b = postcard.AppendUvarint(b, uint64(len(c.Upsertions)))
	for _, u := range c.Upsertions {
		b = postcard.AppendString(b, u.User)
		b = appendCred(b, u.Credential)
	}
	return b
}

func (c *AlterQuotas) appendFields(b []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(c.Entries)))
	for _, e := range c.Entries {
		b = appendParts(b, e.Entity)
		b = appendFloats(b, e.Set)
		b = appendStrings(b, e.Remove)
	}
	return b
}

func (c *SetRoles) appendFields(b []byte) []byte {
	b = append(b, c.NodeID[:]...)
	return append(b, c.Roles)
}

// ---- decoding ----

func (d *dec) i8() int8 {
	var b [1]byte
	d.take(b[:])
	return int8(b[0])
}

func (d *dec) u8() uint8 {
	var b [1]byte
	d.take(b[:])
	return b[0]
}

func (d *dec) f64() float64 {
	var b [8]byte
	d.take(b[:])
	return math.Float64frombits(binary.LittleEndian.Uint64(b[:]))
}

func (d *dec) acl() ACL {
	return ACL{ResourceType: d.i8(), ResourceName: d.str(), PatternType: d.i8(), Principal: d.str(), Host: d.str(),
		Operation: d.i8(), Permission: d.i8()}
}

func (d *dec) acls() []ACL {
	n := d.count(7)
	var out []ACL
	for range n {
		out = append(out, d.acl())
	}
	return out
}

func (d *dec) cred() ScramCredential {
	return ScramCredential{Mechanism: d.i8(), Iterations: d.i32(), Salt: d.bytes(), StoredKey: d.bytes(), ServerKey: d.bytes()}
}

func (d *dec) parts() []QuotaPart {
	n := d.count(3)
	var out []QuotaPart
	for range n {
		out = append(out, QuotaPart{Type: d.str(), Default: d.bool(), Name: d.str()})
	}
	return out
}

// floats reads a map whose keys must be strictly ascending; nil when empty.
func (d *dec) floats() map[string]float64 { return ascendingMap(d, 9, d.f64) }

// decodeSecurity decodes the fields of a security command of kind k; ok is false for a kind
// that is not one.
func decodeSecurity(d *dec, k uint64) (Command, bool) {
	switch k {
	case kindCreateACLs:
		return &CreateACLs{ACLs: d.acls()}, true
	case kindDeleteACLs:
		return &DeleteACLs{ACLs: d.acls()}, true
	case kindAlterScram:
		x := &AlterScram{}
		for range d.count(2) {
			x.Deletions = append(x.Deletions, ScramDeletion{User: d.str(), Mechanism: d.i8()})
		}
		for range d.count(6) {
			x.Upsertions = append(x.Upsertions, ScramUpsertion{User: d.str(), Credential: d.cred()})
		}
		return x, true
	case kindAlterQuotas:
		x := &AlterQuotas{}
		for range d.count(3) {
			x.Entries = append(x.Entries, QuotaChange{Entity: d.parts(), Set: d.floats(), Remove: d.strings()})
		}
		return x, true
	case kindSetRoles:
		return &SetRoles{NodeID: d.nodeID(), Roles: d.u8()}, true
	}
	return nil, false
}

// ---- state ----

// security is the security part of State.
type security struct {
	acls   []ACL                               // sorted by CompareACL, unique
	users  map[string]map[int8]ScramCredential // user -> mechanism -> credential (never empty)
	quotas map[string]*Quota                   // by quotaKey(entity)
	roles  map[NodeID]uint8                    // non-zero roles
}

func (s *security) reset() {
	s.acls = nil
	s.users = map[string]map[int8]ScramCredential{}
	s.quotas = map[string]*Quota{}
	s.roles = map[NodeID]uint8{}
}

func (s *security) empty() bool {
	return len(s.acls) == 0 && len(s.users) == 0 && len(s.quotas) == 0 && len(s.roles) == 0
}

// quotaKey is an entity's canonical text.
func quotaKey(ps []QuotaPart) string {
	var sb strings.Builder
	for _, p := range ps {
		sb.WriteString(p.Type)
		if p.Default {
			sb.WriteString("\x00d")
		} else {
			sb.WriteString("\x00n")
			sb.WriteString(p.Name)
		}
		sb.WriteByte('\x01')
	}
	return sb.String()
}

// checkEntity returns a message for an entity that is not well formed: no parts, an empty
// type, types not strictly ascending, a default part with a name.
func checkEntity(ps []QuotaPart) string {
	if len(ps) == 0 {
		return "empty quota entity"
	}
	for i, p := range ps {
		switch {
		case p.Type == "":
			return "quota entity part without a type"
		case i > 0 && ps[i-1].Type >= p.Type:
			return "quota entity parts not in strictly ascending type order"
		case p.Default && p.Name != "":
			return "a default quota entity part has no name"
		}
	}
	return ""
}

func checkQuotaValue(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v > 0 }

func (s *State) createACLs(c *CreateACLs, dry bool) *ACLsResult {
	res := &ACLsResult{Changed: make([]bool, len(c.ACLs))}
	added := map[ACL]bool{}
	next := s.sec.acls
	if !dry {
		next = slices.Clone(next)
	}
	for i, a := range c.ACLs {
		if _, found := slices.BinarySearchFunc(s.sec.acls, a, CompareACL); found || added[a] {
			continue
		}
		added[a] = true
		res.Changed[i] = true
		if !dry {
			j, _ := slices.BinarySearchFunc(next, a, CompareACL)
			next = slices.Insert(next, j, a)
		}
	}
	if !dry {
		s.sec.acls = next
	}
	return res
}

func (s *State) deleteACLs(c *DeleteACLs, dry bool) *ACLsResult {
	res := &ACLsResult{Changed: make([]bool, len(c.ACLs))}
	gone := map[ACL]bool{}
	for i, a := range c.ACLs {
		if _, found := slices.BinarySearchFunc(s.sec.acls, a, CompareACL); found && !gone[a] {
			gone[a] = true
			res.Changed[i] = true
		}
	}
	if !dry && len(gone) > 0 {
		s.sec.acls = slices.DeleteFunc(slices.Clone(s.sec.acls), func(a ACL) bool { return gone[a] })
	}
	return res
}

func (s *State) alterScram(c *AlterScram, dry bool) *CodesResult {
	res := &CodesResult{Codes: make([]int16, 0, len(c.Deletions)+len(c.Upsertions))}
	deleted := map[ScramDeletion]bool{}
	for _, d := range c.Deletions {
		_, ok := s.sec.users[d.User][d.Mechanism]
		if !ok || deleted[d] {
			res.Codes = append(res.Codes, CodeResourceNotFound)
			continue
		}
		deleted[d] = true
		res.Codes = append(res.Codes, CodeNone)
		if !dry {
			delete(s.sec.users[d.User], d.Mechanism)
			if len(s.sec.users[d.User]) == 0 {
				delete(s.sec.users, d.User)
			}
		}
	}
	for _, u := range c.Upsertions {
		cr := u.Credential
		if u.User == "" || cr.Mechanism <= 0 || cr.Iterations <= 0 || len(cr.Salt) == 0 || len(cr.StoredKey) == 0 || len(cr.ServerKey) == 0 {
			res.Codes = append(res.Codes, CodeInvalidRequest)
			continue
		}
		res.Codes = append(res.Codes, CodeNone)
		if !dry {
			m := s.sec.users[u.User]
			if m == nil {
				m = map[int8]ScramCredential{}
				s.sec.users[u.User] = m
			}
			m[cr.Mechanism] = cr.clone()
		}
	}
	return res
}

func (s *State) alterQuotas(c *AlterQuotas, dry bool) *CodesResult {
	res := &CodesResult{Codes: make([]int16, len(c.Entries))}
	for i, e := range c.Entries {
		bad := checkEntity(e.Entity) != ""
		for _, v := range e.Set {
			bad = bad || !checkQuotaValue(v)
		}
		for _, k := range e.Remove {
			_, both := e.Set[k]
			bad = bad || both || k == ""
		}
		if _, empty := e.Set[""]; empty || len(dups(e.Remove, func(k string) string { return k })) > 0 {
			bad = true
		}
		if bad {
			res.Codes[i] = CodeInvalidRequest
			continue
		}
		if dry {
			continue
		}
		key := quotaKey(e.Entity)
		values := map[string]float64{}
		if q := s.sec.quotas[key]; q != nil {
			maps.Copy(values, q.Values)
		}
		maps.Copy(values, e.Set)
		for _, k := range e.Remove {
			delete(values, k)
		}
		if len(values) == 0 {
			delete(s.sec.quotas, key)
		} else {
			s.sec.quotas[key] = &Quota{Entity: slices.Clone(e.Entity), Values: values}
		}
	}
	return res
}

func (s *State) setRoles(c *SetRoles, dry bool) *SetRolesResult {
	prev := s.sec.roles[c.NodeID]
	if c.NodeID.IsZero() || c.Roles&^roleMask != 0 {
		return &SetRolesResult{Code: CodeInvalidRequest, Previous: prev}
	}
	if !dry {
		if c.Roles == 0 {
			delete(s.sec.roles, c.NodeID)
		} else {
			s.sec.roles[c.NodeID] = c.Roles
		}
	}
	return &SetRolesResult{Previous: prev}
}

// ---- read accessors ----

// ACLs returns every binding, sorted (CompareACL).
func (s *State) ACLs() []ACL { return read(s, func() []ACL { return slices.Clone(s.sec.acls) }) }

// ScramUsers returns every user with credentials, sorted by name (credentials by mechanism).
func (s *State) ScramUsers() []ScramUser {
	return read(s, func() []ScramUser {
		out := make([]ScramUser, 0, len(s.sec.users))
		for _, name := range slices.Sorted(maps.Keys(s.sec.users)) {
			out = append(out, s.scramUser(name))
		}
		return out
	})
}

// ScramUser returns one user's credentials.
func (s *State) ScramUser(name string) (ScramUser, bool) {
	return lookup(s, func() (ScramUser, bool) {
		if _, ok := s.sec.users[name]; !ok {
			return ScramUser{}, false
		}
		return s.scramUser(name), true
	})
}

func (s *State) scramUser(name string) ScramUser {
	m := s.sec.users[name]
	u := ScramUser{Name: name}
	for _, mech := range slices.Sorted(maps.Keys(m)) {
		u.Credentials = append(u.Credentials, m[mech].clone())
	}
	return u
}

// Quotas returns every entity's quotas, sorted by the entity's canonical text.
func (s *State) Quotas() []Quota {
	return read(s, func() []Quota {
		out := make([]Quota, 0, len(s.sec.quotas))
		for _, k := range slices.Sorted(maps.Keys(s.sec.quotas)) {
			q := s.sec.quotas[k]
			out = append(out, Quota{Entity: slices.Clone(q.Entity), Values: maps.Clone(q.Values)})
		}
		return out
	})
}

// Roles returns a NodeId's role bits (0: none).
func (s *State) Roles(n NodeID) uint8 { return read(s, func() uint8 { return s.sec.roles[n] }) }

// RoleNodes returns every NodeId with roles and its roles, sorted by NodeId.
func (s *State) RoleNodes() map[NodeID]uint8 {
	return read(s, func() map[NodeID]uint8 { return maps.Clone(s.sec.roles) })
}

// ---- snapshot section ----

// sectionSecurity is the tag of the security section of a snapshot (written only when the
// security state is not empty, so a state without it snapshots as before the section existed).
const sectionSecurity = 3

// security = acls:seq<acl> (sorted) | users:seq<name:str | seq<credential>> (by name, then
//
//	mechanism) | quotas:seq<entity | map<str,f64>> (by entity key) |
//	roles:seq<node_id:[32] | roles:u8> (by NodeId)
func (s *security) appendSection(b []byte) []byte {
	b = appendACLs(b, s.acls)
	b = postcard.AppendUvarint(b, uint64(len(s.users)))
	for _, name := range slices.Sorted(maps.Keys(s.users)) {
		b = postcard.AppendString(b, name)
		m := s.users[name]
		b = postcard.AppendUvarint(b, uint64(len(m)))
		for _, mech := range slices.Sorted(maps.Keys(m)) {
			b = appendCred(b, m[mech])
		}
	}
	b = postcard.AppendUvarint(b, uint64(len(s.quotas)))
	for _, k := range slices.Sorted(maps.Keys(s.quotas)) {
		q := s.quotas[k]
		b = appendParts(b, q.Entity)
		b = appendFloats(b, q.Values)
	}
	b = postcard.AppendUvarint(b, uint64(len(s.roles)))
	for _, n := range sortedNodes(maps.Keys(s.roles)) {
		b = append(b, n[:]...)
		b = append(b, s.roles[n])
	}
	return b
}

// decodeSection reads a security section into s (reset), checking order and invariants.
func (s *security) decodeSection(d *dec) {
	check := func(ok bool, format string, args ...any) {
		if !ok {
			d.fail(fmt.Errorf(format, args...))
		}
	}
	s.acls = d.acls()
	for i := 1; i < len(s.acls); i++ {
		check(CompareACL(s.acls[i-1], s.acls[i]) < 0, "ACLs not in ascending order")
	}
	prevUser := ""
	for i := range d.count(2) {
		name := d.str()
		check(name != "" && (i == 0 || name > prevUser), "SCRAM users not in ascending order, or an empty name")
		prevUser = name
		m := map[int8]ScramCredential{}
		n := d.count(6)
		check(n > 0, "SCRAM user %q without credentials", name)
		var prev int8
		for j := range n {
			c := d.cred()
			check(j == 0 || c.Mechanism > prev, "credentials of %q not in ascending mechanism order", name)
			check(c.Mechanism > 0 && c.Iterations > 0 && len(c.Salt) > 0 && len(c.StoredKey) > 0 && len(c.ServerKey) > 0,
				"invalid credential of %q", name)
			prev = c.Mechanism
			m[c.Mechanism] = c
		}
		if d.err != nil {
			return
		}
		s.users[name] = m
	}
	prevKey := ""
	for i := range d.count(2) {
		q := &Quota{Entity: d.parts(), Values: d.floats()}
		if d.err != nil {
			return
		}
		k := quotaKey(q.Entity)
		check(checkEntity(q.Entity) == "", "bad quota entity")
		check(i == 0 || k > prevKey, "quotas not in ascending entity order")
		check(len(q.Values) > 0, "quota entity without values")
		for name, v := range q.Values {
			check(name != "" && checkQuotaValue(v), "bad quota %q", name)
		}
		prevKey = k
		s.quotas[k] = q
	}
	var prevNode NodeID
	for i := range d.count(33) {
		n, r := d.nodeID(), d.u8()
		check(i == 0 || compareNodes(prevNode, n) < 0, "roles not in ascending NodeId order")
		check(!n.IsZero() && r != 0 && r&^roleMask == 0, "bad roles %#x", r)
		prevNode = n
		s.roles[n] = r
	}
}
