package share

import (
	"slices"
	"strconv"
	"time"
)

// Kafka error codes the Machine answers with.
const (
	errNone                     int16 = 0
	ErrUnknownTopicOrPartition  int16 = 3
	ErrUnknownMemberID          int16 = 25
	ErrInvalidRequest           int16 = 42
	ErrGroupIDNotFound          int16 = 69
	ErrFencedMemberEpoch        int16 = 110
	ErrGroupMaxSizeReached      int16 = 81
	ErrInvalidRecordState       int16 = 121
	ErrShareSessionNotFound     int16 = 122
	ErrInvalidShareSessionEpoch int16 = 123
	ErrShareSessionLimit        int16 = 133
	ErrNonEmptyGroup            int16 = 68
)

// Acknowledge types (KIP-932; Renew is KIP-1222, ShareFetch/ShareAcknowledge v2).
const (
	AckGap     int8 = 0
	AckAccept  int8 = 1
	AckRelease int8 = 2
	AckReject  int8 = 3
	AckRenew   int8 = 4
)

// State is a record's delivery state, with Kafka's numbering (RecordState).
type State uint8

const (
	Available    State = 0
	Acquired     State = 1
	Acknowledged State = 2
	Archived     State = 4
)

// Config holds the broker-level share-group settings (Kafka's broker config names in
// brackets; a group config without the "group." prefix overrides the first four for one
// group, see SetConfig). Zero fields take Kafka's defaults.
type Config struct {
	LockDuration      time.Duration // [group.share.record.lock.duration.ms] 30 s
	DeliveryLimit     int16         // [group.share.delivery.count.limit] 5
	HeartbeatInterval time.Duration // [group.share.heartbeat.interval.ms] 5 s
	SessionTimeout    time.Duration // [group.share.session.timeout.ms] 45 s
	MaxGroupSize      int           // [group.share.max.size] 200
	MaxRecordLocks    int           // [group.share.partition.max.record.locks] 2000
	MaxSessions       int           // [group.share.max.share.sessions] 2000
	// AutoOffsetReset is where a share partition without state starts
	// [share.auto.offset.reset]: "latest" (default) or "earliest".
	AutoOffsetReset string
}

func (c Config) withDefaults() Config {
	if c.LockDuration <= 0 {
		c.LockDuration = 30 * time.Second
	}
	if c.DeliveryLimit <= 0 {
		c.DeliveryLimit = 5
	}
	if c.HeartbeatInterval <= 0 {
		c.HeartbeatInterval = 5 * time.Second
	}
	if c.SessionTimeout <= 0 {
		c.SessionTimeout = 45 * time.Second
	}
	if c.MaxGroupSize <= 0 {
		c.MaxGroupSize = 200
	}
	if c.MaxRecordLocks <= 0 {
		c.MaxRecordLocks = 2000
	}
	if c.MaxSessions <= 0 {
		c.MaxSessions = 2000
	}
	if c.AutoOffsetReset == "" {
		c.AutoOffsetReset = "latest"
	}
	return c
}

// TP names a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Topics is what the Machine needs of the cluster's topics: a topic's partition count
// (false if the topic does not exist).
type Topics func(topic string) (partitions int32, ok bool)

// Machine is the I/O-free share-group state: groups, their members and assignment, share
// sessions, and each share partition's in-flight records. Every call takes the current time;
// durable changes come out as Records (Drain), which the owner makes durable before it
// answers, and Apply replays them at start.
type Machine struct {
	cfg      Config
	groups   map[string]*group
	sessions map[sessionKey]*session
	dirty    map[partKey]bool // share partitions whose state changed since Drain
	out      []*Record        // group records since Drain
	freed    map[string]bool  // groups with records acquirable again since Freed
}

type group struct {
	name       string
	epoch      int32 // group epoch: bumped when membership, subscriptions or metadata change
	members    map[string]*member
	parts      map[TP]*partition
	assignEpch int32             // the group epoch the assignment was computed at
	meta       map[string]int32  // partition counts of subscribed topics at the last assignment
	configs    map[string]string // group-level configs (share.auto.offset.reset, …)
}

type member struct {
	id, clientID, clientHost, rack string
	epoch, prevEpoch               int32
	topics                         []string // subscribed, sorted
	assigned                       []TP     // sorted
	deadline                       time.Time
}

type partKey struct {
	group string
	tp    TP
}

type sessionKey struct{ group, member string }

type session struct {
	epoch int32
	parts map[TP]bool
}

type rec struct {
	state    State
	count    int16
	member   string
	deadline time.Time
}

// partition is one share partition: records from SPSO (start) on, in[i] being offset start+i;
// start+len(in) is the first offset never acquired (one past the share-partition end offset).
type partition struct {
	start      int64
	stateEpoch int32
	in         []rec
}

// NewMachine returns an empty Machine.
func NewMachine(cfg Config) *Machine {
	return &Machine{cfg: cfg.withDefaults(), groups: map[string]*group{}, sessions: map[sessionKey]*session{}, dirty: map[partKey]bool{},
		freed: map[string]bool{}}
}

// Config returns the effective configuration.
func (m *Machine) Config() Config { return m.cfg }

func (m *Machine) groupOrNew(name string) *group {
	g := m.groups[name]
	if g == nil {
		g = &group{name: name, members: map[string]*member{}, parts: map[TP]*partition{}, configs: map[string]string{}}
		m.groups[name] = g
		m.out = append(m.out, &Record{Kind: KindGroup, Group: name})
	}
	return g
}

// HasGroup reports whether a share group of that name exists.
func (m *Machine) HasGroup(name string) bool { return m.groups[name] != nil }

// Groups lists the share groups (sorted) with their state name.
func (m *Machine) Groups() [][2]string {
	var out [][2]string
	for _, name := range slices.Sorted(mapsKeys(m.groups)) {
		out = append(out, [2]string{name, m.groups[name].stateName()})
	}
	return out
}

func mapsKeys[K comparable, V any](mp map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range mp {
			if !yield(k) {
				return
			}
		}
	}
}

func (g *group) stateName() string {
	if len(g.members) == 0 {
		return "Empty"
	}
	return "Stable"
}

// HeartbeatReq is a ShareGroupHeartbeat.
type HeartbeatReq struct {
	Group, MemberID, ClientID, ClientHost string
	Rack                                  *string
	MemberEpoch                           int32
	Topics                                []string // nil: unchanged since the last heartbeat
}

// HeartbeatResp answers it. Assignment is non-nil when it is sent (a full request, or the
// member's epoch moved).
type HeartbeatResp struct {
	ErrorCode         int16
	ErrorMessage      string
	MemberID          string
	MemberEpoch       int32
	HeartbeatInterval time.Duration
	Assignment        []TP
	HasAssignment     bool
}

// Heartbeat serves ShareGroupHeartbeat: epoch 0 joins (or rejoins), -1 leaves, anything else
// must be the member's epoch or the one before it (FENCED_MEMBER_EPOCH otherwise).
func (m *Machine) Heartbeat(now time.Time, req HeartbeatReq, topics Topics) HeartbeatResp {
	resp := HeartbeatResp{MemberID: req.MemberID, HeartbeatInterval: m.cfg.HeartbeatInterval}
	if g := m.groups[req.Group]; g != nil {
		resp.HeartbeatInterval = m.groupDuration(g, "share.heartbeat.interval.ms", m.cfg.HeartbeatInterval)
	}
	if req.Group == "" || req.MemberID == "" || req.MemberEpoch < -1 {
		resp.ErrorCode, resp.ErrorMessage = ErrInvalidRequest, "group id and member id are required"
		return resp
	}
	g := m.groups[req.Group]
	if g == nil && req.MemberEpoch != 0 {
		resp.ErrorCode = ErrGroupIDNotFound
		return resp
	}
	switch req.MemberEpoch {
	case 0:
		if req.Topics == nil && (g == nil || g.members[req.MemberID] == nil) {
			resp.ErrorCode, resp.ErrorMessage = ErrInvalidRequest, "a joining member must name its subscribed topics"
			return resp
		}
		g = m.groupOrNew(req.Group)
		mem := g.members[req.MemberID]
		if mem == nil {
			if len(g.members) >= m.cfg.MaxGroupSize {
				resp.ErrorCode = ErrGroupMaxSizeReached
				return resp
			}
			mem = &member{id: req.MemberID}
			g.members[req.MemberID] = mem
			if len(req.Topics) == 0 {
				g.epoch++ // (a subscription bumps it in refresh)
			}
		}
		m.refresh(now, g, mem, req)
	case -1:
		mem := g.members[req.MemberID]
		if mem == nil {
			resp.ErrorCode = ErrUnknownMemberID
			return resp
		}
		m.removeMember(now, g, mem)
		resp.MemberEpoch = -1
		return resp
	default:
		mem := g.members[req.MemberID]
		if mem == nil {
			resp.ErrorCode = ErrUnknownMemberID
			return resp
		}
		if req.MemberEpoch != mem.epoch && req.MemberEpoch != mem.prevEpoch {
			resp.ErrorCode = ErrFencedMemberEpoch
			return resp
		}
		m.refresh(now, g, mem, req)
	}
	mem := g.members[req.MemberID]
	before := mem.epoch
	m.assign(g, topics)
	if mem.epoch != g.epoch {
		mem.prevEpoch, mem.epoch = mem.epoch, g.epoch
	}
	resp.MemberEpoch = mem.epoch
	if req.Topics != nil || mem.epoch != before {
		resp.HasAssignment = true
		resp.Assignment = slices.Clone(mem.assigned)
	}
	return resp
}

// refresh records a heartbeat's member data; a changed subscription bumps the group epoch.
func (m *Machine) refresh(now time.Time, g *group, mem *member, req HeartbeatReq) {
	mem.clientID, mem.clientHost = req.ClientID, req.ClientHost
	if req.Rack != nil {
		mem.rack = *req.Rack
	}
	mem.deadline = now.Add(m.groupDuration(g, "share.session.timeout.ms", m.cfg.SessionTimeout))
	if req.Topics != nil {
		t := slices.Clone(req.Topics)
		slices.Sort(t)
		t = slices.Compact(t)
		if !slices.Equal(t, mem.topics) {
			mem.topics = t
			g.epoch++
		}
	}
}

// assign recomputes the group's assignment when its epoch moved or the partition counts of
// its subscribed topics changed (the simple assignor, see the package doc).
func (m *Machine) assign(g *group, topics Topics) {
	meta := map[string]int32{}
	for _, mem := range g.members {
		for _, t := range mem.topics {
			if _, done := meta[t]; done {
				continue
			}
			if n, ok := topics(t); ok {
				meta[t] = n
			} else {
				meta[t] = 0
			}
		}
	}
	if !mapsEqual(meta, g.meta) {
		g.meta = meta
		g.epoch++
	}
	if g.assignEpch == g.epoch {
		return
	}
	g.assignEpch = g.epoch
	ids := slices.Sorted(mapsKeys(g.members))
	for _, id := range ids {
		g.members[id].assigned = nil
	}
	for _, t := range slices.Sorted(mapsKeys(meta)) {
		n := meta[t]
		var subs []string
		for _, id := range ids {
			if slices.Contains(g.members[id].topics, t) {
				subs = append(subs, id)
			}
		}
		if n == 0 || len(subs) == 0 {
			continue
		}
		if len(subs) <= int(n) {
			for p := range n {
				mem := g.members[subs[int(p)%len(subs)]]
				mem.assigned = append(mem.assigned, TP{t, p})
			}
		} else {
			for i, id := range subs {
				mem := g.members[id]
				mem.assigned = append(mem.assigned, TP{t, int32(i % int(n))})
			}
		}
	}
}

func mapsEqual(a, b map[string]int32) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// removeMember drops a member: its sessions close and the records it holds are released.
func (m *Machine) removeMember(now time.Time, g *group, mem *member) {
	delete(g.members, mem.id)
	g.epoch++
	delete(m.sessions, sessionKey{g.name, mem.id})
	m.releaseMember(now, g, mem.id)
}

func (m *Machine) releaseMember(now time.Time, g *group, id string) {
	for tp, p := range g.parts {
		changed := false
		for i := range p.in {
			r := &p.in[i]
			if r.state == Acquired && r.member == id {
				m.release(g, r)
				changed = true
			}
		}
		if changed {
			m.advance(g, p)
			m.dirty[partKey{g.name, tp}] = true
		}
	}
}

// limit is a group's delivery count limit (its share.delivery.count.limit, else the
// broker's).
func (m *Machine) limit(g *group) int16 {
	if v, ok := g.configs["share.delivery.count.limit"]; ok {
		if n, err := strconv.ParseInt(v, 10, 16); err == nil && n > 0 {
			return int16(n)
		}
	}
	return m.cfg.DeliveryLimit
}

// release makes an acquired record available again, or archives it at the delivery limit.
// A record available again is news for the group's waiting fetches (Freed).
func (m *Machine) release(g *group, r *rec) {
	r.member, r.deadline = "", time.Time{}
	if r.count >= m.limit(g) {
		r.state = Archived
	} else {
		r.state = Available
		m.freed[g.name] = true
	}
}

// advance moves SPSO past acknowledged and archived records. When the window was at its
// record-lock limit, records past it can now be acquired: news for waiting fetches too.
func (m *Machine) advance(g *group, p *partition) {
	n := 0
	for n < len(p.in) && (p.in[n].state == Acknowledged || p.in[n].state == Archived) {
		n++
	}
	if n > 0 {
		if len(p.in) >= m.cfg.MaxRecordLocks {
			m.freed[g.name] = true
		}
		p.start += int64(n)
		p.in = append(p.in[:0], p.in[n:]...)
	}
}

// Freed lists (and forgets) the groups in which records became acquirable again since the
// last call without a new append: released by an acknowledgement, a closed session or a
// departed member, or by an expired acquisition lock (Tick), or a full window that moved.
// A ShareFetch waiting for records past the windows must wake for these too.
func (m *Machine) Freed() []string {
	if len(m.freed) == 0 {
		return nil
	}
	out := slices.Sorted(mapsKeys(m.freed))
	clear(m.freed)
	return out
}

// NextLockDeadline is the earliest acquisition lock deadline among a group's share
// partitions tps (zero if none holds an acquired record): when a waiting ShareFetch must
// let Tick run, since an expired lock frees its records.
func (m *Machine) NextLockDeadline(groupName string, tps []TP) time.Time {
	var next time.Time
	g := m.groups[groupName]
	if g == nil {
		return next
	}
	for _, tp := range tps {
		p := g.parts[tp]
		if p == nil {
			continue
		}
		for i := range p.in {
			if r := &p.in[i]; r.state == Acquired && (next.IsZero() || r.deadline.Before(next)) {
				next = r.deadline
			}
		}
	}
	return next
}

// Tick expires members whose session timed out and releases records whose acquisition
// lock expired.
func (m *Machine) Tick(now time.Time) {
	for _, g := range m.groups {
		for _, mem := range g.members {
			if !now.Before(mem.deadline) {
				m.removeMember(now, g, mem)
			}
		}
		for tp, p := range g.parts {
			changed := false
			for i := range p.in {
				r := &p.in[i]
				if r.state == Acquired && !now.Before(r.deadline) {
					m.release(g, r)
					changed = true
				}
			}
			if changed {
				m.advance(g, p)
				m.dirty[partKey{g.name, tp}] = true
			}
		}
	}
}

// NextDeadline is the earliest time Tick has work (zero if none).
func (m *Machine) NextDeadline() time.Time {
	var next time.Time
	early := func(t time.Time) {
		if !t.IsZero() && (next.IsZero() || t.Before(next)) {
			next = t
		}
	}
	for _, g := range m.groups {
		for _, mem := range g.members {
			early(mem.deadline)
		}
		for _, p := range g.parts {
			for i := range p.in {
				if p.in[i].state == Acquired {
					early(p.in[i].deadline)
				}
			}
		}
	}
	return next
}

// groupDuration reads a millisecond group config, or def.
func (m *Machine) groupDuration(g *group, name string, def time.Duration) time.Duration {
	if v, ok := g.configs[name]; ok {
		if ms, err := strconv.ParseInt(v, 10, 64); err == nil && ms > 0 {
			return time.Duration(ms) * time.Millisecond
		}
	}
	return def
}

// LockDuration is the acquisition lock duration of a group (its
// share.record.lock.duration.ms, else the broker's).
func (m *Machine) LockDuration(groupName string) time.Duration {
	if g := m.groups[groupName]; g != nil {
		return m.groupDuration(g, "share.record.lock.duration.ms", m.cfg.LockDuration)
	}
	return m.cfg.LockDuration
}

// ReadCommitted reports whether a group reads with share.isolation.level=read_committed
// (its records are then only those below the last stable offset, aborted ones left out);
// the default is read_uncommitted.
func (m *Machine) ReadCommitted(groupName string) bool {
	g := m.groups[groupName]
	return g != nil && g.configs["share.isolation.level"] == "read_committed"
}

// Member describes one member for ShareGroupDescribe.
type Member struct {
	ID, ClientID, ClientHost, Rack string
	Epoch                          int32
	Topics                         []string
	Assigned                       []TP
}

// GroupDesc describes a group.
type GroupDesc struct {
	State           string
	Epoch           int32
	AssignmentEpoch int32
	Members         []Member
}

// Describe describes a group (false if there is no such share group).
func (m *Machine) Describe(name string) (GroupDesc, bool) {
	g := m.groups[name]
	if g == nil {
		return GroupDesc{}, false
	}
	d := GroupDesc{State: g.stateName(), Epoch: g.epoch, AssignmentEpoch: g.assignEpch}
	for _, id := range slices.Sorted(mapsKeys(g.members)) {
		mem := g.members[id]
		d.Members = append(d.Members, Member{ID: id, ClientID: mem.clientID, ClientHost: mem.clientHost, Rack: mem.rack,
			Epoch: mem.epoch, Topics: slices.Clone(mem.topics), Assigned: slices.Clone(mem.assigned)})
	}
	return d, true
}
