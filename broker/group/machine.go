package group

import (
	"bytes"
	"container/heap"
	"crypto/rand"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Token identifies one request handed to the Machine. The driver picks it (unique among the
// requests still unanswered) and gets it back in the Output that answers the request.
type Token uint64

// Output is one answer produced by the Machine. Resp is one of the *brokerop.…Resp types. When
// Records is non-empty the driver must make them durable and then call Machine.Apply before it
// delivers Resp; if it cannot, it delivers FailResp(Resp, code) instead and does not Apply.
// An Output with Token 0 and Resp nil answers nothing: it only carries Records to persist
// (a group's membership recorded when a timer emptied it).
type Output struct {
	Token   Token
	Resp    any
	Records []Record
}

// State is a group's state, named as Kafka names it in DescribeGroups and ListGroups.
type State uint8

// Group states.
const (
	Empty State = iota
	PreparingRebalance
	CompletingRebalance
	Stable
	Dead
)

var stateNames = [...]string{"Empty", "PreparingRebalance", "CompletingRebalance", "Stable", "Dead"}

func (s State) String() string { return stateNames[s] }

// MachineConfig tunes the coordinator. Zero values take Kafka's broker defaults.
type MachineConfig struct {
	MinSessionTimeout     time.Duration // group.min.session.timeout.ms; 0: 6s
	MaxSessionTimeout     time.Duration // group.max.session.timeout.ms; 0: 30min
	InitialRebalanceDelay time.Duration // group.initial.rebalance.delay.ms; 0: 3s; <0: none
	MaxMetadataBytes      int           // offset.metadata.max.bytes; 0: 4096
	// KIP-848 consumer groups (consumer.go).
	ConsumerSessionTimeout    time.Duration // group.consumer.session.timeout.ms; 0: 45s
	ConsumerHeartbeatInterval time.Duration // group.consumer.heartbeat.interval.ms; 0: 5s
	ConsumerGroupMaxSize      int           // group.consumer.max.size; 0: no limit
	// ConsumerStartGrace: for this long after the Machine first sees time, consumer-group
	// members are given no partition (see doc.go); 0: two heartbeat intervals; <0: none.
	ConsumerStartGrace time.Duration
	// NewMemberID mints a member id for a client; nil: clientID + "-" + a random UUID (Kafka's
	// form). Tests inject a counter for reproducible transcripts.
	NewMemberID func(clientID string) string
}

// Machine is the I/O-free consumer-group coordinator: every Kafka group request goes in with the
// current time and a Token, and the answers come out as Outputs, possibly much later (a JoinGroup
// is answered when the rebalance completes, a follower's SyncGroup when the leader has synced).
// Time passes only through the now arguments and Tick. Not safe for concurrent use: one owner
// (see Coordinator) drives it.
type Machine struct {
	cfg    MachineConfig
	groups map[string]*group
	timers timerHeap           // groups with a pending timer, by their earliest one
	dirty  map[string]struct{} // groups whose timers must be recomputed before the next look

	image        topicImage // the cluster's topics, from the last consumer-group heartbeat
	started      time.Time  // the first time the Machine saw (consumer start grace)
	imageVersion uint64     // bumped when image changes

	// scratch for the call in progress
	now time.Time
	out []Output
}

type tp struct {
	topic     string
	partition int32
}

type committed struct {
	offset      int64
	leaderEpoch int32
	metadata    string
	commitMs    int64
	writer, seq uint64 // the commit's stamp (brokerop.OffsetCommitReq Writer, Seq); 0: none
}

// Superseded reports whether a commit stamped (writer, seq) is older than the one that wrote
// a partition's offset (stamped lastWriter, lastSeq): the same writer committed a higher Seq
// there. Such a commit is a late copy (sent again, or forwarded late) and must not be
// applied over the newer one; commits of another writer, or unstamped, apply in arrival
// order. The metadata quorum's state applies the same rule.
func Superseded(writer, seq, lastWriter, lastSeq uint64) bool {
	return writer != 0 && writer == lastWriter && seq < lastSeq
}

// superseded reports whether r is a commit older than the one applied to its partition.
func (g *group) superseded(topic string, partition int32, writer, seq uint64) bool {
	c, ok := g.offsets[tp{topic, partition}]
	return ok && Superseded(writer, seq, c.writer, c.seq)
}

type group struct {
	id           string
	state        State
	protocolType string
	protocol     string
	generation   int32
	leader       string
	members      map[string]*member
	order        []string             // member ids in join order (leader fallback, member lists)
	statics      map[string]string    // group.instance.id -> member id
	pending      map[string]time.Time // ids handed out with MEMBER_ID_REQUIRED -> expiry

	// rebalance timing
	deadline     time.Time // PreparingRebalance: join deadline; CompletingRebalance: sync deadline
	initialDelay bool      // PreparingRebalance from Empty, within group.initial.rebalance.delay
	delayHadJoin bool      // a new member joined during the current delay window
	rebalanceEnd time.Time // upper bound of the initial delay extensions

	offsets map[tp]committed

	// recorded is the last membership record applied (KindMembers; members.go), what a
	// coordinator started now would restore; nil if none.
	recorded    *Membership
	recordedGen int32 // the highest generation of the records applied (KindGeneration, KindMembers)

	// cg is set while the group is a KIP-848 consumer group (consumer.go); the classic
	// fields are then unused (state Empty, no members).
	cg *cgroup

	due     time.Time // earliest timer, while in Machine.timers
	heapIdx int       // index in Machine.timers, -1 when absent
}

type member struct {
	id, instance         string
	clientID, clientHost string
	protocolType         string
	protocols            []brokerop.GroupProtocol
	session, rebalance   time.Duration
	expires              time.Time // session deadline while not parked in a join or sync
	assignment           []byte
	fresh                bool // joined during the rebalance in progress: not recorded yet

	joinWait, syncWait bool
	joinTok, syncTok   Token
}

// NewMachine returns an empty coordinator.
func NewMachine(cfg MachineConfig) *Machine {
	orDefault(&cfg.MinSessionTimeout, 6*time.Second)
	orDefault(&cfg.MaxSessionTimeout, 30*time.Minute)
	orDefaultOrOff(&cfg.InitialRebalanceDelay, 3*time.Second)
	orDefault(&cfg.ConsumerSessionTimeout, 45*time.Second)
	orDefault(&cfg.ConsumerHeartbeatInterval, 5*time.Second)
	orDefaultOrOff(&cfg.ConsumerStartGrace, 2*cfg.ConsumerHeartbeatInterval)
	orDefault(&cfg.MaxMetadataBytes, 4096)
	if cfg.NewMemberID == nil {
		cfg.NewMemberID = randomMemberID
	}
	return &Machine{cfg: cfg, groups: map[string]*group{}, dirty: map[string]struct{}{}}
}

// orDefault sets *v to def where it is zero (unset).
func orDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// orDefaultOrOff sets a duration to def where it is zero (unset) and to 0 (off) where it is
// negative.
func orDefaultOrOff(v *time.Duration, def time.Duration) {
	if *v < 0 {
		*v = 0
	} else {
		orDefault(v, def)
	}
}

func randomMemberID(clientID string) string {
	return clientID + "-" + rand.Text()
}

func (m *Machine) begin(now time.Time) {
	if m.started.IsZero() {
		m.started = now
	}
	m.now = now
	m.out = nil
}

func (m *Machine) reply(tok Token, resp any) {
	m.out = append(m.out, Output{Token: tok, Resp: resp})
}

func (m *Machine) getOrCreate(id string) *group {
	g := m.groups[id]
	if g == nil {
		g = &group{
			id:      id,
			members: map[string]*member{},
			statics: map[string]string{},
			pending: map[string]time.Time{},
			offsets: map[tp]committed{},
			heapIdx: -1,
		}
		m.groups[id] = g
	}
	return g
}

// ---- JoinGroup ----

// JoinGroup handles a JoinGroup request.
func (m *Machine) JoinGroup(now time.Time, tok Token, req *brokerop.JoinGroupReq) []Output {
	m.begin(now)
	defer m.touch(req.Group) // its timers may have changed
	fail := func(code int16) []Output {
		m.reply(tok, &brokerop.JoinGroupResp{ErrorCode: code, Generation: -1, MemberID: req.MemberID})
		return m.out
	}
	if req.Group == "" {
		return fail(errInvalidGroupID)
	}
	session := time.Duration(req.SessionTimeoutMs) * time.Millisecond
	if session < m.cfg.MinSessionTimeout || session > m.cfg.MaxSessionTimeout {
		return fail(errInvalidSessionTimeout)
	}
	if req.ProtocolType == "" || len(req.Protocols) == 0 {
		return fail(errInconsistentGroupProto)
	}
	g := m.groups[req.Group]
	if g == nil && req.MemberID != "" {
		return fail(errUnknownMemberID)
	}
	g = m.getOrCreate(req.Group)
	if g.cg != nil {
		if len(g.cg.members) > 0 {
			// A classic member cannot join a consumer group that has members (Kafka's
			// online migration is not implemented).
			return fail(errInconsistentGroupProto)
		}
		g.cg = nil // an empty consumer group becomes a classic group again
	}
	if g.state != Empty && (g.protocolType != req.ProtocolType || !g.supportsAny(req.Protocols)) {
		return fail(errInconsistentGroupProto)
	}

	if req.MemberID == "" {
		if req.InstanceID != "" {
			if old, ok := g.statics[req.InstanceID]; ok {
				m.staticRejoin(g, g.members[old], tok, req)
				return m.out
			}
		} else if req.RequireKnownMemberID {
			id := m.cfg.NewMemberID(req.ClientID)
			g.pending[id] = now.Add(session)
			m.reply(tok, &brokerop.JoinGroupResp{ErrorCode: errMemberIDRequired, Generation: -1, MemberID: id})
			return m.out
		}
		m.addMember(g, m.cfg.NewMemberID(req.ClientID), tok, req)
		return m.out
	}

	if _, ok := g.pending[req.MemberID]; ok {
		delete(g.pending, req.MemberID)
		m.addMember(g, req.MemberID, tok, req)
		return m.out
	}
	if req.InstanceID != "" {
		if cur, ok := g.statics[req.InstanceID]; ok && cur != req.MemberID {
			return fail(errFencedInstanceID)
		}
	}
	mem := g.members[req.MemberID]
	if mem == nil {
		return fail(errUnknownMemberID)
	}
	m.rejoin(g, mem, tok, req)
	return m.out
}

func (g *group) supportsAny(ps []brokerop.GroupProtocol) bool {
	for _, p := range ps {
		all := true
		for _, mem := range g.members {
			if !mem.supports(p.Name) {
				all = false
				break
			}
		}
		if all {
			return true
		}
	}
	return false
}

func (mem *member) supports(name string) bool {
	for _, p := range mem.protocols {
		if p.Name == name {
			return true
		}
	}
	return false
}

func (mem *member) metadataFor(name string) []byte {
	for _, p := range mem.protocols {
		if p.Name == name {
			return p.Metadata
		}
	}
	return nil
}

func sameProtocols(a, b []brokerop.GroupProtocol) bool {
	return slices.EqualFunc(a, b, func(x, y brokerop.GroupProtocol) bool {
		return x.Name == y.Name && bytes.Equal(x.Metadata, y.Metadata)
	})
}

func cloneProtocols(ps []brokerop.GroupProtocol) []brokerop.GroupProtocol {
	out := make([]brokerop.GroupProtocol, len(ps))
	for i, p := range ps {
		out[i] = brokerop.GroupProtocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)}
	}
	return out
}

func (m *Machine) updateMember(mem *member, req *brokerop.JoinGroupReq) {
	mem.clientID, mem.clientHost = req.ClientID, req.ClientHost
	mem.protocolType = req.ProtocolType
	mem.protocols = cloneProtocols(req.Protocols)
	mem.session = time.Duration(req.SessionTimeoutMs) * time.Millisecond
	mem.rebalance = time.Duration(req.RebalanceTimeoutMs) * time.Millisecond
	if mem.rebalance <= 0 {
		mem.rebalance = mem.session
	}
	mem.expires = m.now.Add(mem.session)
}

// parkJoin makes tok the member's pending JoinGroup, answering a previous one still parked.
func (m *Machine) parkJoin(mem *member, tok Token) {
	if mem.joinWait {
		m.reply(mem.joinTok, &brokerop.JoinGroupResp{ErrorCode: errRebalanceInProgress, Generation: -1, MemberID: mem.id})
	}
	mem.joinWait, mem.joinTok = true, tok
}

func (m *Machine) addMember(g *group, id string, tok Token, req *brokerop.JoinGroupReq) {
	mem := &member{id: id, instance: req.InstanceID, fresh: true}
	m.updateMember(mem, req)
	g.members[id] = mem
	g.order = append(g.order, id)
	if mem.instance != "" {
		g.statics[mem.instance] = id
	}
	if g.state == Empty {
		g.protocolType = req.ProtocolType
	}
	m.parkJoin(mem, tok)
	switch g.state {
	case PreparingRebalance:
		if g.initialDelay {
			g.delayHadJoin = true
		} else {
			m.tryCompleteJoin(g)
		}
	default:
		m.prepareRebalance(g)
	}
}

func (m *Machine) rejoin(g *group, mem *member, tok Token, req *brokerop.JoinGroupReq) {
	changed := !sameProtocols(mem.protocols, req.Protocols)
	m.updateMember(mem, req)
	switch g.state {
	case PreparingRebalance:
		m.parkJoin(mem, tok)
		m.tryCompleteJoin(g)
	case CompletingRebalance:
		if !changed {
			m.replyJoin(tok, m.joinResult(g, mem, mem.id == g.leader, g.leader), g.membersRecord())
			return
		}
		m.parkJoin(mem, tok)
		m.prepareRebalance(g)
	case Stable:
		if changed || mem.id == g.leader {
			m.parkJoin(mem, tok)
			m.prepareRebalance(g)
			return
		}
		m.replyJoin(tok, m.joinResult(g, mem, false, g.leader), g.membersRecord())
	default:
		m.reply(tok, &brokerop.JoinGroupResp{ErrorCode: errUnknownMemberID, Generation: -1, MemberID: req.MemberID})
	}
}

// staticRejoin handles a known group.instance.id joining with an unknown member id (a restarted
// static member): the old member id is fenced and replaced; in a stable group with unchanged
// protocols the member gets the current generation and keeps its assignment, no rebalance.
func (m *Machine) staticRejoin(g *group, mem *member, tok Token, req *brokerop.JoinGroupReq) {
	oldID := mem.id
	newID := m.cfg.NewMemberID(req.ClientID)
	if mem.joinWait {
		m.reply(mem.joinTok, &brokerop.JoinGroupResp{ErrorCode: errFencedInstanceID, Generation: -1, MemberID: oldID})
		mem.joinWait = false
	}
	if mem.syncWait {
		m.reply(mem.syncTok, &brokerop.SyncGroupResp{ErrorCode: errFencedInstanceID})
		mem.syncWait = false
	}
	delete(g.members, oldID)
	mem.id = newID
	g.members[newID] = mem
	g.order[slices.Index(g.order, oldID)] = newID
	g.statics[mem.instance] = newID
	leaderBefore := g.leader
	if g.leader == oldID {
		g.leader = newID
	}
	changed := !sameProtocols(mem.protocols, req.Protocols)
	m.updateMember(mem, req)
	switch {
	case g.state == Stable && !changed:
		// Report the leader id from before the replacement: a rejoining leader then sees
		// someone else's id and does not compute a new assignment for a stable group.
		m.replyJoin(tok, m.joinResult(g, mem, false, leaderBefore), g.membersRecord())
	case g.state == PreparingRebalance:
		m.parkJoin(mem, tok)
		m.tryCompleteJoin(g)
	default:
		m.parkJoin(mem, tok)
		m.prepareRebalance(g)
	}
}

func (m *Machine) joinResult(g *group, mem *member, withMembers bool, leader string) *brokerop.JoinGroupResp {
	r := &brokerop.JoinGroupResp{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		LeaderID:     leader,
		MemberID:     mem.id,
	}
	if withMembers {
		for _, id := range g.order {
			o := g.members[id]
			r.Members = append(r.Members, brokerop.JoinGroupMember{
				MemberID: o.id, InstanceID: o.instance, Metadata: o.metadataFor(g.protocol),
			})
		}
	}
	return r
}

func (g *group) maxRebalance() time.Duration {
	var d time.Duration
	for _, mem := range g.members {
		d = max(d, mem.rebalance)
	}
	return d
}

// prepareRebalance moves the group to PreparingRebalance: parked SyncGroups are told
// REBALANCE_IN_PROGRESS and every member must rejoin before the rebalance timeout.
func (m *Machine) prepareRebalance(g *group) {
	for _, mem := range g.members {
		if mem.syncWait {
			mem.syncWait = false
			mem.expires = m.now.Add(mem.session)
			m.reply(mem.syncTok, &brokerop.SyncGroupResp{ErrorCode: errRebalanceInProgress})
		}
		mem.assignment = nil
	}
	wasEmpty := g.state == Empty
	g.state = PreparingRebalance
	g.deadline = m.now.Add(g.maxRebalance())
	g.initialDelay = false
	if wasEmpty && m.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay = true
		g.delayHadJoin = false
		g.rebalanceEnd = g.deadline
		g.deadline = m.now.Add(min(m.cfg.InitialRebalanceDelay, g.maxRebalance()))
		return
	}
	m.tryCompleteJoin(g)
}

func (m *Machine) tryCompleteJoin(g *group) {
	if g.state != PreparingRebalance || g.initialDelay || len(g.pending) > 0 {
		return
	}
	for _, mem := range g.members {
		if !mem.joinWait {
			return
		}
	}
	m.completeJoin(g)
}

// completeJoin ends PreparingRebalance: members that did not rejoin are dropped, the generation
// advances, a protocol is chosen and every parked JoinGroup is answered (the leader with the
// member list).
func (m *Machine) completeJoin(g *group) {
	for _, id := range slices.Clone(g.order) {
		if mem := g.members[id]; !mem.joinWait {
			m.dropMember(g, mem)
		}
	}
	g.pending = map[string]time.Time{}
	g.generation++
	g.initialDelay = false
	if len(g.members) == 0 {
		g.state = Empty
		g.protocol, g.leader = "", "" // the protocol type stays for ListGroups, as in Kafka
		g.deadline = time.Time{}
		// Nobody to answer: the empty group is recorded on its own (members.go).
		m.out = append(m.out, Output{Records: []Record{g.membersRecord()}})
		return
	}
	g.protocol = g.selectProtocol()
	if _, ok := g.members[g.leader]; !ok {
		g.leader = g.order[0]
	}
	g.state = CompletingRebalance
	g.deadline = m.now.Add(g.maxRebalance())
	// The new generation is made durable before any member learns it (every answer waits
	// for the record): a coordinator started later goes on above it (Apply), so a group's
	// generations only go up, as Kafka's. A member's cooperative subscription carries its
	// generation, and of two members claiming a partition the assignor believes the one of
	// the higher generation (KIP-792): generations numbered from 1 again by a new
	// coordinator let a member of the old one keep partitions another member had consumed
	// since, going on from its old position.
	//
	// The record is the group's membership (KindMembers: generation, protocol, leader,
	// members), so a new coordinator also knows who is in it (members.go).
	for _, mem := range g.members {
		mem.fresh = false
	}
	rec := g.membersRecord()
	for _, id := range g.order {
		mem := g.members[id]
		mem.joinWait = false
		mem.expires = m.now.Add(mem.session)
		m.replyJoin(mem.joinTok, m.joinResult(g, mem, id == g.leader, g.leader), rec)
	}
}

// replyJoin answers a JoinGroup with g's current generation once rec, g's membership
// record, is durable (see completeJoin): every join answer carries the record, those that
// answer the current generation again too (it may be one whose record failed).
func (m *Machine) replyJoin(tok Token, resp *brokerop.JoinGroupResp, rec Record) {
	m.out = append(m.out, Output{Token: tok, Resp: resp, Records: []Record{rec}})
}

// selectProtocol picks, among the protocols every member supports, the one most members list
// first (Kafka's vote); ties go to the earliest in the first member's preference order.
func (g *group) selectProtocol() string {
	first := g.members[g.order[0]]
	var candidates []string
	for _, p := range first.protocols {
		all := true
		for _, mem := range g.members {
			all = all && mem.supports(p.Name)
		}
		if all {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, mem := range g.members {
		for _, p := range mem.protocols {
			if slices.Contains(candidates, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// dropMember removes a member without touching the group state; parked requests are answered
// with UNKNOWN_MEMBER_ID.
func (m *Machine) dropMember(g *group, mem *member) {
	if mem.joinWait {
		m.reply(mem.joinTok, &brokerop.JoinGroupResp{ErrorCode: errUnknownMemberID, Generation: -1, MemberID: mem.id})
		mem.joinWait = false
	}
	if mem.syncWait {
		m.reply(mem.syncTok, &brokerop.SyncGroupResp{ErrorCode: errUnknownMemberID})
		mem.syncWait = false
	}
	delete(g.members, mem.id)
	g.order = slices.DeleteFunc(g.order, func(id string) bool { return id == mem.id })
	if mem.instance != "" && g.statics[mem.instance] == mem.id {
		delete(g.statics, mem.instance)
	}
	if g.leader == mem.id {
		g.leader = ""
	}
}

// removeMember drops a member and rebalances the rest.
func (m *Machine) removeMember(g *group, mem *member) {
	m.dropMember(g, mem)
	switch g.state {
	case Stable, CompletingRebalance:
		m.prepareRebalance(g)
	case PreparingRebalance:
		m.tryCompleteJoin(g)
	}
}

// ---- SyncGroup, Heartbeat, LeaveGroup ----

// checkMember applies Kafka's member fencing: a known instance id bound to another member id is
// FENCED_INSTANCE_ID; an unknown member id is UNKNOWN_MEMBER_ID.
func (g *group) checkMember(memberID, instanceID string) (*member, int16) {
	if instanceID != "" {
		if cur, ok := g.statics[instanceID]; ok && cur != memberID {
			return nil, errFencedInstanceID
		}
	}
	mem := g.members[memberID]
	if mem == nil {
		return nil, errUnknownMemberID
	}
	return mem, errNone
}

// SyncGroup handles a SyncGroup request.
func (m *Machine) SyncGroup(now time.Time, tok Token, req *brokerop.SyncGroupReq) []Output {
	m.begin(now)
	defer m.touch(req.Group) // its timers may have changed
	fail := func(code int16) []Output {
		m.reply(tok, &brokerop.SyncGroupResp{ErrorCode: code})
		return m.out
	}
	g := m.groups[req.Group]
	if g == nil || g.state == Empty || g.state == Dead {
		return fail(errUnknownMemberID)
	}
	mem, code := g.checkMember(req.MemberID, req.InstanceID)
	if code != errNone {
		return fail(code)
	}
	if req.Generation != g.generation {
		return fail(errIllegalGeneration)
	}
	if (req.ProtocolType != "" && req.ProtocolType != g.protocolType) || (req.Protocol != "" && req.Protocol != g.protocol) {
		return fail(errInconsistentGroupProto)
	}
	mem.expires = now.Add(mem.session)
	switch g.state {
	case PreparingRebalance:
		return fail(errRebalanceInProgress)
	case Stable:
		m.reply(tok, m.syncResult(g, mem))
		return m.out
	}
	// CompletingRebalance
	if mem.syncWait {
		m.reply(mem.syncTok, &brokerop.SyncGroupResp{ErrorCode: errRebalanceInProgress})
	}
	mem.syncWait, mem.syncTok = true, tok
	if mem.id != g.leader {
		return m.out
	}
	given := map[string][]byte{}
	for _, a := range req.Assignments {
		given[a.MemberID] = a.Assignment
	}
	g.state = Stable
	g.deadline = time.Time{}
	for _, id := range g.order {
		g.members[id].assignment = bytes.Clone(given[id])
	}
	// The assignments are recorded before any member learns its own (Kafka stores the
	// group here too): a new coordinator answers a late SyncGroup with it.
	rec := g.membersRecord()
	for _, id := range g.order {
		o := g.members[id]
		if o.syncWait {
			o.syncWait = false
			o.expires = now.Add(o.session)
			m.out = append(m.out, Output{Token: o.syncTok, Resp: m.syncResult(g, o), Records: []Record{rec}})
		}
	}
	return m.out
}

func (m *Machine) syncResult(g *group, mem *member) *brokerop.SyncGroupResp {
	a := mem.assignment
	if a == nil {
		a = []byte{}
	}
	return &brokerop.SyncGroupResp{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: a}
}

// Heartbeat handles a Heartbeat request.
func (m *Machine) Heartbeat(now time.Time, tok Token, req *brokerop.HeartbeatReq) []Output {
	m.begin(now)
	defer m.touch(req.Group) // its timers may have changed
	code := m.heartbeat(req)
	m.reply(tok, &brokerop.HeartbeatResp{ErrorCode: code})
	return m.out
}

func (m *Machine) heartbeat(req *brokerop.HeartbeatReq) int16 {
	g := m.groups[req.Group]
	if g == nil || g.state == Empty || g.state == Dead {
		return errUnknownMemberID
	}
	mem, code := g.checkMember(req.MemberID, req.InstanceID)
	if code != errNone {
		return code
	}
	if req.Generation != g.generation {
		return errIllegalGeneration
	}
	mem.expires = m.now.Add(mem.session)
	if g.state == PreparingRebalance {
		return errRebalanceInProgress
	}
	return errNone
}

// LeaveGroup handles a LeaveGroup request.
func (m *Machine) LeaveGroup(now time.Time, tok Token, req *brokerop.LeaveGroupReq) []Output {
	m.begin(now)
	defer m.touch(req.Group) // its timers may have changed
	resp := &brokerop.LeaveGroupResp{}
	g := m.groups[req.Group]
	removed := false
	for _, lm := range req.Members {
		r := brokerop.LeaveGroupMemberResp{MemberID: lm.MemberID, InstanceID: lm.InstanceID}
		var gone bool
		r.ErrorCode, gone = m.leave(g, lm)
		removed = removed || gone
		resp.Members = append(resp.Members, r)
	}
	var recs []Record
	if removed {
		// The group without them is recorded before they learn they left: a new
		// coordinator never brings a member back that left.
		recs = []Record{g.membersRecord()}
	}
	m.out = append(m.out, Output{Token: tok, Resp: resp, Records: recs})
	return m.out
}

// leave removes one member; removed reports whether a member (not a pending id) left.
func (m *Machine) leave(g *group, lm brokerop.LeaveGroupMember) (code int16, removed bool) {
	if g == nil {
		return errUnknownMemberID, false
	}
	id := lm.MemberID
	if lm.InstanceID != "" {
		cur, ok := g.statics[lm.InstanceID]
		if !ok {
			return errUnknownMemberID, false
		}
		if id != "" && id != cur {
			return errFencedInstanceID, false
		}
		id = cur
	}
	if _, ok := g.pending[id]; ok {
		delete(g.pending, id)
		m.tryCompleteJoin(g)
		return errNone, false
	}
	mem := g.members[id]
	if mem == nil {
		return errUnknownMemberID, false
	}
	m.removeMember(g, mem)
	return errNone, true
}

// ---- timers ----

// NextDeadline reports when Tick next has work to do (ok false: no timer pending).
func (m *Machine) NextDeadline() (t time.Time, ok bool) {
	m.flushTimers()
	if len(m.timers) == 0 {
		return time.Time{}, false
	}
	return m.timers[0].due, true
}

// touch marks a group's timers for recomputation.
func (m *Machine) touch(id string) {
	if _, ok := m.groups[id]; ok {
		m.dirty[id] = struct{}{}
	}
}

// flushTimers recomputes the earliest timer of every touched group and fixes its place in the
// heap, so that NextDeadline is O(1) and a request costs O(members of its group + log groups).
func (m *Machine) flushTimers() {
	for id := range m.dirty {
		g := m.groups[id]
		if g == nil {
			continue
		}
		d, ok := g.nextDeadline()
		switch {
		case !ok && g.heapIdx >= 0:
			heap.Remove(&m.timers, g.heapIdx)
		case ok && g.heapIdx >= 0:
			g.due = d
			heap.Fix(&m.timers, g.heapIdx)
		case ok:
			g.due = d
			heap.Push(&m.timers, g)
		}
	}
	clear(m.dirty)
}

// timerHeap is a min-heap of groups by due time (container/heap).
type timerHeap []*group

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].id < h[j].id
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx, h[j].heapIdx = i, j
}
func (h *timerHeap) Push(x any) {
	g := x.(*group)
	g.heapIdx = len(*h)
	*h = append(*h, g)
}
func (h *timerHeap) Pop() any {
	old := *h
	g := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	g.heapIdx = -1
	return g
}

// Tick fires every timer due at now: expired sessions (the member is removed and the group
// rebalances), rebalance and sync timeouts, the end of the initial rebalance delay.
func (m *Machine) Tick(now time.Time) []Output {
	m.begin(now)
	m.flushTimers()
	var due []*group
	for len(m.timers) > 0 && !now.Before(m.timers[0].due) {
		due = append(due, heap.Pop(&m.timers).(*group))
	}
	sort.Slice(due, func(i, j int) bool { return due[i].id < due[j].id })
	for _, g := range due {
		// A step can arm a timer that is already due (a rebalance of a group whose last
		// member just expired has a zero timeout): run it too, so no timer is left behind.
		for range 8 {
			m.tickGroup(g)
			if d, ok := g.nextDeadline(); !ok || now.Before(d) {
				break
			}
		}
		m.touch(g.id)
	}
	m.flushTimers()
	return m.out
}

func (g *group) nextDeadline() (t time.Time, ok bool) {
	consider := func(d time.Time) {
		if !d.IsZero() && (!ok || d.Before(t)) {
			t, ok = d, true
		}
	}
	if g.state == PreparingRebalance || g.state == CompletingRebalance {
		consider(g.deadline)
	}
	for _, mem := range g.members {
		if !mem.joinWait && !mem.syncWait {
			consider(mem.expires)
		}
	}
	for _, exp := range g.pending {
		consider(exp)
	}
	if g.cg != nil {
		g.cg.deadline(consider)
	}
	return t, ok
}

func (m *Machine) tickGroup(g *group) {
	if g.cg != nil {
		m.tickConsumer(g.cg)
	}
	for _, id := range slices.Clone(g.order) {
		mem := g.members[id]
		if mem != nil && !mem.joinWait && !mem.syncWait && !m.now.Before(mem.expires) {
			m.removeMember(g, mem)
		}
	}
	expired := false
	for id, exp := range g.pending {
		if !m.now.Before(exp) {
			delete(g.pending, id)
			expired = true
		}
	}
	if expired {
		m.tryCompleteJoin(g)
	}
	if g.deadline.IsZero() || m.now.Before(g.deadline) {
		return
	}
	switch g.state {
	case PreparingRebalance:
		if g.initialDelay && g.delayHadJoin && m.now.Before(g.rebalanceEnd) {
			g.delayHadJoin = false
			g.deadline = minTime(m.now.Add(m.cfg.InitialRebalanceDelay), g.rebalanceEnd)
			return
		}
		m.completeJoin(g)
	case CompletingRebalance:
		// The leader never synced in time: drop whoever has not sent SyncGroup and start over.
		for _, id := range slices.Clone(g.order) {
			if mem := g.members[id]; !mem.syncWait {
				m.dropMember(g, mem)
			}
		}
		m.prepareRebalance(g)
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// ---- offsets ----

// OffsetCommit validates a commit. Accepted partitions come back as Records in the Output;
// the response must not be delivered before they are durable and applied.
func (m *Machine) OffsetCommit(now time.Time, tok Token, req *brokerop.OffsetCommitReq) []Output {
	m.begin(now)
	defer m.touch(req.Group) // its timers may have changed
	code := m.validateCommit(req)
	g := m.groups[req.Group]
	var perPartition func(topic string, p int32) int16
	if g != nil && g.cg != nil && req.Group != "" {
		code, perPartition = m.validateConsumerCommit(g.cg, req)
	}
	resp := &brokerop.OffsetCommitResp{}
	var recs []Record
	for _, t := range req.Topics {
		tr := brokerop.OffsetCommitTopicResp{Topic: t.Topic}
		for _, p := range t.Partitions {
			pc := code
			if pc == errNone && perPartition != nil {
				pc = perPartition(t.Topic, p.Partition)
			}
			if pc == errNone && len(p.Metadata) > m.cfg.MaxMetadataBytes {
				pc = errOffsetMetadataTooLarge
			}
			// A late copy of a commit its writer has since overtaken is answered as
			// committed (and at once overwritten by the newer one), not applied.
			if pc == errNone && (g == nil || !g.superseded(t.Topic, p.Partition, req.Writer, req.Seq)) {
				recs = append(recs, Record{
					Kind: KindCommit, Group: req.Group, Topic: t.Topic, Partition: p.Partition,
					Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, CommitMs: now.UnixMilli(),
					Writer: req.Writer, Seq: req.Seq,
				})
			}
			tr.Partitions = append(tr.Partitions, brokerop.OffsetCommitPartitionResp{Partition: p.Partition, ErrorCode: pc})
		}
		resp.Topics = append(resp.Topics, tr)
	}
	m.out = append(m.out, Output{Token: tok, Resp: resp, Records: recs})
	return m.out
}

func (m *Machine) validateCommit(req *brokerop.OffsetCommitReq) int16 {
	if req.Group == "" {
		return errInvalidGroupID
	}
	g := m.groups[req.Group]
	simple := req.Generation < 0 && req.MemberID == "" && req.InstanceID == ""
	if g == nil {
		if simple {
			return errNone
		}
		return errIllegalGeneration
	}
	if simple {
		if g.state == Empty {
			return errNone
		}
		return errUnknownMemberID
	}
	mem, code := g.checkMember(req.MemberID, req.InstanceID)
	if code != errNone {
		return code
	}
	if req.Generation != g.generation {
		return errIllegalGeneration
	}
	if g.state == CompletingRebalance {
		return errRebalanceInProgress
	}
	mem.expires = m.now.Add(mem.session)
	return errNone
}

// OffsetFetch answers from the applied (durable) offsets.
func (m *Machine) OffsetFetch(now time.Time, tok Token, req *brokerop.OffsetFetchReq) []Output {
	m.begin(now)
	resp := &brokerop.OffsetFetchResp{}
	g := m.groups[req.Group]
	lookup := func(t string, p int32) brokerop.OffsetFetchPartitionResp {
		r := brokerop.OffsetFetchPartitionResp{Partition: p, Offset: -1, LeaderEpoch: -1}
		if g != nil {
			if c, ok := g.offsets[tp{t, p}]; ok {
				r.Offset, r.LeaderEpoch, r.Metadata = c.offset, c.leaderEpoch, c.metadata
			}
		}
		return r
	}
	if req.Topics == nil {
		if g != nil {
			keys := make([]tp, 0, len(g.offsets))
			for k := range g.offsets {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool {
				if keys[i].topic != keys[j].topic {
					return keys[i].topic < keys[j].topic
				}
				return keys[i].partition < keys[j].partition
			})
			for _, k := range keys {
				if n := len(resp.Topics); n == 0 || resp.Topics[n-1].Topic != k.topic {
					resp.Topics = append(resp.Topics, brokerop.OffsetFetchTopicResp{Topic: k.topic})
				}
				last := &resp.Topics[len(resp.Topics)-1]
				last.Partitions = append(last.Partitions, lookup(k.topic, k.partition))
			}
		}
	} else {
		for _, t := range req.Topics {
			tr := brokerop.OffsetFetchTopicResp{Topic: t.Topic}
			for _, p := range t.Partitions {
				tr.Partitions = append(tr.Partitions, lookup(t.Topic, p))
			}
			resp.Topics = append(resp.Topics, tr)
		}
	}
	m.reply(tok, resp)
	return m.out
}

// OffsetDelete removes committed offsets of partitions the group is not consuming.
func (m *Machine) OffsetDelete(now time.Time, tok Token, req *brokerop.OffsetDeleteReq) []Output {
	m.begin(now)
	resp := &brokerop.OffsetDeleteResp{}
	g := m.groups[req.Group]
	switch {
	case g == nil:
		resp.ErrorCode = errGroupIDNotFound
	case g.state != Empty && g.protocolType != "consumer":
		resp.ErrorCode = errNonEmptyGroup
	}
	if resp.ErrorCode != errNone {
		m.reply(tok, resp)
		return m.out
	}
	subscribed := g.subscribedTopics()
	if g.cg != nil {
		subscribed = m.consumerSubscribed(g.cg)
	}
	var recs []Record
	for _, t := range req.Topics {
		tr := brokerop.OffsetDeleteTopicResp{Topic: t.Topic}
		for _, p := range t.Partitions {
			code := errNone
			if subscribed[t.Topic] {
				code = errGroupSubscribedToTopic
			} else {
				recs = append(recs, Record{Kind: KindDeleteOffset, Group: g.id, Topic: t.Topic, Partition: p})
			}
			tr.Partitions = append(tr.Partitions, brokerop.OffsetDeletePartitionResp{Partition: p, ErrorCode: code})
		}
		resp.Topics = append(resp.Topics, tr)
	}
	m.out = append(m.out, Output{Token: tok, Resp: resp, Records: recs})
	return m.out
}

// subscribedTopics decodes the consumer-protocol subscriptions of a consumer group's members
// (the only place the coordinator looks inside protocol metadata). An undecodable subscription
// subscribes to nothing.
func (g *group) subscribedTopics() map[string]bool {
	out := map[string]bool{}
	if g.protocolType != "consumer" {
		return out
	}
	for _, mem := range g.members {
		for _, p := range mem.protocols {
			var meta kmsg.ConsumerMemberMetadata
			if meta.ReadFrom(p.Metadata) != nil {
				continue
			}
			for _, t := range meta.Topics {
				out[t] = true
			}
		}
	}
	return out
}

// ---- group administration ----

// ListGroups lists groups sorted by name.
func (m *Machine) ListGroups(now time.Time, tok Token, req *brokerop.ListGroupsReq) []Output {
	m.begin(now)
	resp := &brokerop.ListGroupsResp{}
	match := func(filter []string, v string) bool {
		if len(filter) == 0 {
			return true
		}
		for _, f := range filter {
			if strings.EqualFold(f, v) {
				return true
			}
		}
		return false
	}
	ids := make([]string, 0, len(m.groups))
	for id := range m.groups {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		g := m.groups[id]
		lg := brokerop.ListedGroup{Group: id, ProtocolType: g.protocolType, State: g.state.String(), Type: "classic"}
		if g.cg != nil {
			lg = brokerop.ListedGroup{Group: id, ProtocolType: "consumer", State: g.cg.state(), Type: "consumer"}
		}
		if !match(req.StatesFilter, lg.State) || !match(req.TypesFilter, lg.Type) {
			continue
		}
		resp.Groups = append(resp.Groups, lg)
	}
	m.reply(tok, resp)
	return m.out
}

// DescribeGroups describes groups; member metadata and assignments are filled only for a
// Stable group, as Kafka does.
func (m *Machine) DescribeGroups(now time.Time, tok Token, req *brokerop.DescribeGroupsReq) []Output {
	m.begin(now)
	resp := &brokerop.DescribeGroupsResp{}
	for _, id := range req.Groups {
		g := m.groups[id]
		if g == nil {
			resp.Groups = append(resp.Groups, brokerop.DescribedGroup{Group: id, State: Dead.String()})
			continue
		}
		if g.cg != nil {
			// Kafka: "Group X is not a classic group." (ConsumerGroupDescribe describes it).
			resp.Groups = append(resp.Groups, brokerop.DescribedGroup{Group: id, ErrorCode: errGroupIDNotFound, State: Dead.String()})
			continue
		}
		d := brokerop.DescribedGroup{Group: id, State: g.state.String(), ProtocolType: g.protocolType}
		if g.state == Stable {
			d.Protocol = g.protocol
		}
		for _, mid := range g.order {
			mem := g.members[mid]
			dm := brokerop.DescribedMember{
				MemberID: mem.id, InstanceID: mem.instance, ClientID: mem.clientID, ClientHost: mem.clientHost,
			}
			if g.state == Stable {
				dm.Metadata = mem.metadataFor(g.protocol)
				dm.Assignment = mem.assignment
			}
			d.Members = append(d.Members, dm)
		}
		resp.Groups = append(resp.Groups, d)
	}
	m.reply(tok, resp)
	return m.out
}

// DeleteGroups deletes groups that have no members, with their offsets.
func (m *Machine) DeleteGroups(now time.Time, tok Token, req *brokerop.DeleteGroupsReq) []Output {
	m.begin(now)
	resp := &brokerop.DeleteGroupsResp{}
	var recs []Record
	for _, id := range req.Groups {
		g := m.groups[id]
		code := errNone
		switch {
		case g == nil:
			code = errGroupIDNotFound
		case g.state != Empty || (g.cg != nil && len(g.cg.members) > 0):
			code = errNonEmptyGroup
		default:
			recs = append(recs, Record{Kind: KindDeleteGroup, Group: id})
		}
		resp.Groups = append(resp.Groups, brokerop.DeletedGroup{Group: id, ErrorCode: code})
	}
	m.out = append(m.out, Output{Token: tok, Resp: resp, Records: recs})
	return m.out
}

// Apply makes durable records visible: it is called for records an Output asked to persist
// (after they are durable) and, at startup, for every record read back from the log.
func (m *Machine) Apply(recs []Record) {
	for _, r := range recs {
		switch r.Kind {
		case KindCommit:
			g := m.getOrCreate(r.Group)
			if g.superseded(r.Topic, r.Partition, r.Writer, r.Seq) {
				continue // a late copy behind a newer commit of its writer in the same batch
			}
			g.offsets[tp{r.Topic, r.Partition}] = committed{
				offset: r.Offset, leaderEpoch: r.LeaderEpoch, metadata: r.Metadata, commitMs: r.CommitMs,
				writer: r.Writer, seq: r.Seq,
			}
		case KindDeleteOffset:
			if g := m.groups[r.Group]; g != nil {
				delete(g.offsets, tp{r.Topic, r.Partition})
			}
		case KindGeneration:
			g := m.getOrCreate(r.Group)
			g.generation = max(g.generation, r.Generation)
			g.recordedGen = max(g.recordedGen, r.Generation)
		case KindMembers:
			// Only the record is kept: a live machine already has the state it describes,
			// and RestoreMembers makes it live in a machine that starts from the records.
			g := m.getOrCreate(r.Group)
			g.recorded = r.Members
			g.generation = max(g.generation, r.Members.Generation)
			g.recordedGen = max(g.recordedGen, r.Members.Generation)
		case KindDeleteGroup:
			if g := m.groups[r.Group]; g != nil {
				clear(g.offsets)
				if g.state == Empty && (g.cg == nil || len(g.cg.members) == 0) {
					if g.heapIdx >= 0 {
						heap.Remove(&m.timers, g.heapIdx)
					}
					delete(m.dirty, r.Group)
					delete(m.groups, r.Group)
				}
			}
		}
	}
}

// Snapshot returns one commit record per committed offset and each group's recorded
// membership, or its generation when none is recorded (sorted), the state a fresh log starts
// from when the offset log is compacted. A membership comes without a generation record: the
// live generation may be one whose record failed, above the recorded membership's, which a
// generation record would make look stale.
func (m *Machine) Snapshot() []Record {
	var out []Record
	for id, g := range m.groups {
		switch {
		case g.recorded == nil:
			if g.generation > 0 {
				out = append(out, Record{Kind: KindGeneration, Group: id, Generation: g.generation})
			}
		case g.recordedGen > g.recorded.Generation: // a stale membership stays stale
			out = append(out, Record{Kind: KindGeneration, Group: id, Generation: g.recordedGen})
			fallthrough
		default:
			out = append(out, Record{Kind: KindMembers, Group: id, Generation: g.recorded.Generation, Members: g.recorded})
		}
		for k, c := range g.offsets {
			out = append(out, Record{
				Kind: KindCommit, Group: id, Topic: k.topic, Partition: k.partition,
				Offset: c.offset, LeaderEpoch: c.leaderEpoch, Metadata: c.metadata, CommitMs: c.commitMs,
				Writer: c.writer, Seq: c.seq,
			})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Group != b.Group {
			return a.Group < b.Group
		}
		if a.Topic != b.Topic {
			return a.Topic < b.Topic
		}
		if a.Partition != b.Partition {
			return a.Partition < b.Partition
		}
		return a.Kind < b.Kind
	})
	return out
}

// FailResp returns resp with every error field set to code, for an Output whose Records could
// not be made durable.
func FailResp(resp any, code int16) any {
	switch r := resp.(type) {
	case nil: // records only (see Output)
	case *brokerop.SyncGroupResp: // the assignments were not recorded: the member joins again
		*r = brokerop.SyncGroupResp{ErrorCode: code}
	case *brokerop.LeaveGroupResp: // the departure was not recorded: the member may retry
		r.ErrorCode = code
	case *brokerop.OffsetCommitResp:
		for i := range r.Topics {
			for j := range r.Topics[i].Partitions {
				if r.Topics[i].Partitions[j].ErrorCode == errNone {
					r.Topics[i].Partitions[j].ErrorCode = code
				}
			}
		}
	case *brokerop.OffsetDeleteResp:
		r.ErrorCode = code
	case *brokerop.JoinGroupResp: // its generation was not recorded: the member joins again
		r.ErrorCode = code
	case *brokerop.DeleteGroupsResp:
		for i := range r.Groups {
			if r.Groups[i].ErrorCode == errNone {
				r.Groups[i].ErrorCode = code
			}
		}
	default:
		panic(fmt.Sprintf("group: FailResp on %T", resp))
	}
	return resp
}

// TxnOffsetCommit applies the offsets of a committed transaction (package broker/txn): no
// member or generation check (the transaction coordinator fenced the producer), the
// metadata limit as for OffsetCommit. The Output's response is an *OffsetCommitResp.
func (m *Machine) TxnOffsetCommit(now time.Time, tok Token, req *brokerop.OffsetCommitReq) []Output {
	m.begin(now)
	resp := &brokerop.OffsetCommitResp{}
	var recs []Record
	for _, t := range req.Topics {
		tr := brokerop.OffsetCommitTopicResp{Topic: t.Topic}
		for _, p := range t.Partitions {
			pc := errNone
			if len(p.Metadata) > m.cfg.MaxMetadataBytes {
				pc = errOffsetMetadataTooLarge
			} else {
				recs = append(recs, Record{
					Kind: KindCommit, Group: req.Group, Topic: t.Topic, Partition: p.Partition,
					Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata, CommitMs: now.UnixMilli(),
				})
			}
			tr.Partitions = append(tr.Partitions, brokerop.OffsetCommitPartitionResp{Partition: p.Partition, ErrorCode: pc})
		}
		resp.Topics = append(resp.Topics, tr)
	}
	m.out = append(m.out, Output{Token: tok, Resp: resp, Records: recs})
	return m.out
}
