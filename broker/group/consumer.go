package group

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
)

// KIP-848 consumer groups ("consumer" group type, Kafka 4.0): ConsumerGroupHeartbeat and
// ConsumerGroupDescribe. See doc.go, "Consumer groups (KIP-848)".

// Kafka error codes of the consumer group protocol.
const (
	errInvalidRequest        int16 = 42
	errGroupMaxSizeReached   int16 = 81
	errFencedMemberEpoch     int16 = 110
	errUnreleasedInstanceID  int16 = 111
	errUnsupportedAssignor   int16 = 112
	errStaleMemberEpoch      int16 = 113
	errInvalidRegularExpress int16 = 130
)

// Server assignor names.
const (
	AssignorUniform = "uniform"
	AssignorRange   = "range"
)

// memberState is a consumer-group member's reconciliation state, as Kafka names them.
type memberState uint8

const (
	msStable     memberState = iota // owns its share of the target (or waits for nothing)
	msUnrevoked                     // must revoke partitions before it gets new ones
	msUnreleased                    // waits for partitions other members still hold
)

type cgroup struct {
	epoch       int32 // group epoch: bumped on every membership, subscription or metadata change
	targetEpoch int32 // epoch of the current target assignment
	assignor    string
	members     map[string]*cmember
	statics     map[string]string // instance id -> member id
	owners      map[tpart]string  // partition -> member holding it (assigned or pending revocation)
	metaSig     string            // subscribed topics' metadata the target was computed with
	imageSeen   uint64            // Machine.imageVersion metaSig was computed at
}

type cmember struct {
	id, instance, rack   string
	clientID, clientHost string
	epoch, prevEpoch     int32
	state                memberState
	rebalance            time.Duration
	names                []string // sorted
	regex                string
	re                   *regexp.Regexp
	assignor             string
	assigned, revoking   assignment
	assignedAt           map[tpart]int32 // epoch each assigned partition was given at
	target               assignment
	expires              time.Time // session deadline
	revokeBy             time.Time // rebalance deadline while revoking; zero otherwise
}

// topicImage is the cluster's topics as the last heartbeat carried them.
type topicImage struct {
	byName map[string]brokerop.ConsumerGroupTopic
	byID   map[tid]brokerop.ConsumerGroupTopic
}

func newCgroup() *cgroup {
	return &cgroup{members: map[string]*cmember{}, statics: map[string]string{}, owners: map[tpart]string{}, assignor: AssignorUniform}
}

// cgState is the group's state as Kafka reports it.
func (cg *cgroup) state() string {
	if len(cg.members) == 0 {
		return "Empty"
	}
	if cg.epoch != cg.targetEpoch {
		return "Assigning"
	}
	for _, mem := range cg.members {
		if mem.epoch != -2 && (mem.epoch != cg.targetEpoch || mem.state != msStable) {
			return "Reconciling"
		}
	}
	return "Stable"
}

func (m *Machine) updateImage(topics []brokerop.ConsumerGroupTopic) {
	if m.image.byName != nil && len(topics) == len(m.image.byName) {
		same := true
		for _, t := range topics {
			if m.image.byName[t.Name] != t {
				same = false
				break
			}
		}
		if same {
			return
		}
	}
	img := topicImage{byName: make(map[string]brokerop.ConsumerGroupTopic, len(topics)), byID: make(map[tid]brokerop.ConsumerGroupTopic, len(topics))}
	for _, t := range topics {
		img.byName[t.Name] = t
		img.byID[t.TopicID] = t
	}
	m.image = img
	m.imageVersion++
}

// ConsumerGroupHeartbeat handles a ConsumerGroupHeartbeat request (always answered at once).
func (m *Machine) ConsumerGroupHeartbeat(now time.Time, tok Token, req *brokerop.ConsumerGroupHeartbeatReq) []Output {
	m.begin(now)
	defer m.touch(req.Group)
	resp := m.consumerHeartbeat(req)
	resp.HeartbeatIntervalMs = int32(m.cfg.ConsumerHeartbeatInterval / time.Millisecond)
	m.reply(tok, resp)
	return m.out
}

func cgFail(code int16, msg string) *brokerop.ConsumerGroupHeartbeatResp {
	return &brokerop.ConsumerGroupHeartbeatResp{ErrorCode: code, ErrorMessage: msg}
}

func validAssignor(name string) bool { return name == AssignorUniform || name == AssignorRange }

// compileSubscription compiles a subscribed regex the way Kafka matches it: the whole topic
// name must match (Kafka uses RE2/J; Go's regexp is RE2 too).
func compileSubscription(re string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + re + `)$`)
}

func (m *Machine) consumerHeartbeat(req *brokerop.ConsumerGroupHeartbeatReq) *brokerop.ConsumerGroupHeartbeatResp {
	// Request validation, as Kafka's throwIfConsumerGroupHeartbeatRequestIsInvalid.
	switch {
	case req.Group == "":
		return cgFail(errInvalidGroupID, "GroupId can't be empty.")
	case req.MemberEpoch < -2:
		return cgFail(errInvalidRequest, "MemberEpoch is invalid.")
	case req.MemberEpoch != 0 && req.MemberID == "":
		return cgFail(errUnknownMemberID, "MemberId can't be empty.")
	case req.ServerAssignor != "" && !validAssignor(req.ServerAssignor):
		return cgFail(errUnsupportedAssignor, "ServerAssignor "+req.ServerAssignor+" is not supported. Supported assignors: uniform, range.")
	}
	if req.MemberEpoch == 0 {
		switch {
		case req.RebalanceTimeoutMs <= 0:
			return cgFail(errInvalidRequest, "RebalanceTimeoutMs must be provided in first request.")
		case !req.HasSubscribedTopicNames && !req.HasSubscribedTopicRegex:
			return cgFail(errInvalidRequest, "SubscribedTopicNames or SubscribedTopicRegex must be set in first request.")
		case !req.HasOwned || len(req.Owned) > 0:
			return cgFail(errInvalidRequest, "TopicPartitions must be empty when (re-)joining.")
		}
	}
	var re *regexp.Regexp
	if req.HasSubscribedTopicRegex && req.SubscribedTopicRegex != "" {
		var err error
		if re, err = compileSubscription(req.SubscribedTopicRegex); err != nil {
			return cgFail(errInvalidRegularExpress, "SubscribedTopicRegex "+req.SubscribedTopicRegex+" is not a valid regular expression: "+err.Error())
		}
	}
	if req.HasTopics {
		m.updateImage(req.Topics)
	}

	g := m.groups[req.Group]
	if req.MemberEpoch < 0 {
		if g == nil || g.cg == nil {
			return cgFail(errUnknownMemberID, "")
		}
		return m.consumerLeave(g, req)
	}
	if g != nil && g.cg == nil && (g.state != Empty || len(g.members) > 0 || len(g.pending) > 0) {
		return cgFail(errGroupIDNotFound, "Group "+req.Group+" is a classic group with members; it cannot be converted to a consumer group while it has members.")
	}
	if g == nil {
		if req.MemberEpoch != 0 {
			return cgFail(errUnknownMemberID, "")
		}
		g = m.getOrCreate(req.Group)
	}
	if g.cg == nil {
		if req.MemberEpoch != 0 {
			return cgFail(errUnknownMemberID, "")
		}
		g.cg = newCgroup() // an empty classic group (maybe with offsets) is upgraded
	}
	cg := g.cg

	bump := false
	var mem *cmember
	if req.MemberEpoch == 0 {
		var code int16
		var msg string
		mem, bump, code, msg = m.consumerJoin(cg, req)
		if code != errNone {
			return cgFail(code, msg)
		}
	} else {
		var code int16
		if mem, code = cg.knownMember(req); code != errNone {
			return cgFail(code, "")
		}
		if code := mem.checkEpoch(req); code != errNone {
			return cgFail(code, "")
		}
	}

	// Apply the request's changes to the member.
	mem.expires = m.now.Add(m.cfg.ConsumerSessionTimeout)
	if req.ClientID != "" || req.MemberEpoch == 0 {
		mem.clientID, mem.clientHost = req.ClientID, req.ClientHost
	}
	if req.RackID != "" {
		mem.rack = req.RackID
	}
	if req.RebalanceTimeoutMs > 0 {
		mem.rebalance = time.Duration(req.RebalanceTimeoutMs) * time.Millisecond
	}
	if req.HasSubscribedTopicNames {
		names := slices.Clone(req.SubscribedTopicNames)
		slices.Sort(names)
		names = slices.Compact(names)
		if !slices.Equal(names, mem.names) {
			mem.names, bump = names, true
		}
	}
	if req.HasSubscribedTopicRegex && req.SubscribedTopicRegex != mem.regex {
		mem.regex, mem.re, bump = req.SubscribedTopicRegex, re, true
	}
	if req.ServerAssignor != "" && req.ServerAssignor != mem.assignor {
		mem.assignor, bump = req.ServerAssignor, true
	}
	if a := cg.pickAssignor(); a != cg.assignor {
		cg.assignor, bump = a, true
	}
	if bump || cg.imageSeen != m.imageVersion {
		if sig := m.metadataSig(cg); sig != cg.metaSig {
			cg.metaSig, bump = sig, true
		}
		cg.imageSeen = m.imageVersion
	}
	if bump {
		cg.epoch++
	}
	m.computeTarget(cg)

	var owned assignment
	if req.HasOwned {
		owned = assignment{}
		for _, t := range req.Owned {
			for _, p := range t.Partitions {
				owned.add(t.TopicID, p)
			}
		}
	}
	before := mem.assigned.clone()
	m.reconcile(cg, mem, owned)

	resp := &brokerop.ConsumerGroupHeartbeatResp{MemberID: mem.id, MemberEpoch: mem.epoch}
	full := req.RebalanceTimeoutMs != -1 && (req.HasSubscribedTopicNames || req.HasSubscribedTopicRegex) && req.HasOwned
	if req.MemberEpoch == 0 || full || !before.equal(mem.assigned) {
		resp.HasAssignment = true
		resp.Assignment = m.toWire(mem.assigned)
	}
	return resp
}

// checkEpoch is Kafka's member epoch fencing for a heartbeat: a newer epoch than the
// member's is fenced; an older one only when it is the previous epoch and the member's owned
// partitions are a subset of what it is assigned (a lost response).
func (mem *cmember) checkEpoch(req *brokerop.ConsumerGroupHeartbeatReq) int16 {
	if req.MemberEpoch == mem.epoch {
		return errNone
	}
	if req.MemberEpoch > mem.epoch || req.MemberEpoch != mem.prevEpoch || !req.HasOwned {
		return errFencedMemberEpoch
	}
	for _, t := range req.Owned {
		for _, p := range t.Partitions {
			if !mem.assigned.has(t.TopicID, p) {
				return errFencedMemberEpoch
			}
		}
	}
	return errNone
}

// consumerJoin handles MemberEpoch 0: a new member, a member that rejoins (it keeps its
// state and gets its current assignment back) or a static member replacing its earlier
// incarnation (which must have left with epoch -2).
func (m *Machine) consumerJoin(cg *cgroup, req *brokerop.ConsumerGroupHeartbeatReq) (mem *cmember, bump bool, code int16, msg string) {
	id := req.MemberID
	if id == "" {
		id = m.cfg.NewMemberID(req.ClientID)
	}
	if req.InstanceID != "" {
		if oldID, ok := cg.statics[req.InstanceID]; ok {
			old := cg.members[oldID]
			if old != nil && oldID != id {
				if old.epoch != -2 {
					return nil, false, errUnreleasedInstanceID, "Static member with instance id " + req.InstanceID + " is still active; it must leave (epoch -2) before another member takes its place."
				}
				// The new incarnation takes the old one's place: epoch, assignment,
				// subscription; no rebalance.
				delete(cg.members, oldID)
				old.id = id
				old.epoch = old.prevEpoch
				cg.members[id] = old
				cg.statics[req.InstanceID] = id
				for tp, owner := range cg.owners {
					if owner == oldID {
						cg.owners[tp] = id
					}
				}
				return old, false, errNone, ""
			}
			if old != nil && old.epoch == -2 { // same id returning
				old.epoch = old.prevEpoch
				return old, false, errNone, ""
			}
		}
	}
	if mem = cg.members[id]; mem != nil {
		if mem.instance != req.InstanceID {
			return nil, false, errFencedInstanceID, ""
		}
		return mem, false, errNone, ""
	}
	if m.cfg.ConsumerGroupMaxSize > 0 && len(cg.members) >= m.cfg.ConsumerGroupMaxSize {
		return nil, false, errGroupMaxSizeReached, "The consumer group has reached its maximum capacity."
	}
	mem = &cmember{
		id: id, instance: req.InstanceID, assigned: assignment{}, revoking: assignment{}, target: assignment{},
		assignedAt: map[tpart]int32{},
	}
	cg.members[id] = mem
	if req.InstanceID != "" {
		cg.statics[req.InstanceID] = id
	}
	return mem, true, errNone, ""
}

// pickAssignor is the assignor most members ask for (ties and none: uniform, Kafka's
// default, before range).
func (cg *cgroup) pickAssignor() string {
	var u, r int
	for _, mem := range cg.members {
		switch mem.assignor {
		case AssignorUniform:
			u++
		case AssignorRange:
			r++
		}
	}
	if r > u {
		return AssignorRange
	}
	return AssignorUniform
}

// subscribedIDs resolves a member's subscription against the topic image: topic ids that
// exist, sorted.
func (m *Machine) subscribedIDs(mem *cmember) []tid {
	var out []tid
	for _, n := range mem.names {
		if t, ok := m.image.byName[n]; ok {
			out = append(out, t.TopicID)
		}
	}
	if mem.re != nil {
		for n, t := range m.image.byName {
			if mem.re.MatchString(n) {
				out = append(out, t.TopicID)
			}
		}
	}
	slices.SortFunc(out, func(a, b tid) int { return strings.Compare(string(a[:]), string(b[:])) })
	return slices.Compact(out)
}

// metadataSig describes the subscribed topics (name, id, partitions) of every member, so a
// topic created, deleted or grown that a member subscribes to changes it.
func (m *Machine) metadataSig(cg *cgroup) string {
	set := map[tid]bool{}
	for _, mem := range cg.members {
		for _, t := range m.subscribedIDs(mem) {
			set[t] = true
		}
	}
	ids := make([]tid, 0, len(set))
	for t := range set {
		ids = append(ids, t)
	}
	slices.SortFunc(ids, func(a, b tid) int { return strings.Compare(string(a[:]), string(b[:])) })
	var b strings.Builder
	for _, t := range ids {
		ti := m.image.byID[t]
		b.WriteString(ti.Name)
		b.WriteByte(0)
		b.Write(t[:])
		b.WriteString(strconv.Itoa(int(ti.Partitions)))
		b.WriteByte(0)
	}
	return b.String()
}

// computeTarget runs the group's assignor when the group epoch moved past the target's.
func (m *Machine) computeTarget(cg *cgroup) {
	if cg.targetEpoch == cg.epoch {
		return
	}
	spec := assignSpec{
		members:    sortedIDs(cg.members),
		subscribed: map[string][]tid{},
		previous:   map[string]assignment{},
		partitions: map[tid]int32{},
	}
	for id, mem := range cg.members {
		spec.previous[id] = mem.target
		for _, t := range m.subscribedIDs(mem) {
			spec.subscribed[id] = append(spec.subscribed[id], t)
			spec.partitions[t] = m.image.byID[t].Partitions
		}
	}
	var target map[string]assignment
	if cg.assignor == AssignorRange {
		target = assignRange(spec)
	} else {
		target = assignUniform(spec)
	}
	for id, mem := range cg.members {
		mem.target = target[id]
	}
	cg.targetEpoch = cg.epoch
}

// reconcile moves a member towards its target assignment, as Kafka's
// CurrentAssignmentBuilder: partitions to revoke first (the member keeps its epoch until it
// reports them gone), then partitions no other member holds any more.
func (m *Machine) reconcile(cg *cgroup, mem *cmember, owned assignment) {
	if mem.epoch == -2 {
		return
	}
	switch mem.state {
	case msStable:
		if mem.epoch != cg.targetEpoch {
			m.nextAssignment(cg, mem, owned)
		}
	case msUnrevoked:
		if owned == nil || ownsAny(owned, mem.revoking) {
			return
		}
		m.nextAssignment(cg, mem, owned)
	case msUnreleased:
		m.nextAssignment(cg, mem, owned)
	}
}

func ownsAny(owned, parts assignment) bool {
	for t, ps := range parts {
		for _, p := range ps {
			if owned.has(t, p) {
				return true
			}
		}
	}
	return false
}

func (m *Machine) nextAssignment(cg *cgroup, mem *cmember, owned assignment) {
	assigned, revoking, adding := assignment{}, assignment{}, assignment{}
	unreleased := false
	for _, tp := range mem.assigned.parts() {
		if mem.target.has(tp.topic, tp.part) {
			assigned.add(tp.topic, tp.part)
		} else {
			revoking.add(tp.topic, tp.part)
		}
	}
	for _, tp := range mem.target.parts() {
		if assigned.has(tp.topic, tp.part) {
			continue
		}
		if owner, ok := cg.owners[tp]; (ok && owner != mem.id) || m.now.Before(m.started.Add(m.cfg.ConsumerStartGrace)) {
			unreleased = true // held by another member, or maybe by a member of a lost coordinator
			continue
		}
		adding.add(tp.topic, tp.part)
	}
	cg.release(mem)
	switch {
	case revoking.count() > 0 && (owned == nil || ownsAny(owned, revoking)):
		mem.state = msUnrevoked
		mem.assigned, mem.revoking = assigned, revoking
		if mem.revokeBy.IsZero() {
			mem.revokeBy = m.now.Add(mem.rebalance)
		}
	default:
		for _, tp := range adding.parts() {
			assigned.add(tp.topic, tp.part)
			mem.assignedAt[tp] = cg.targetEpoch
		}
		mem.state = msStable
		if unreleased {
			mem.state = msUnreleased
		}
		mem.assigned, mem.revoking = assigned, assignment{}
		mem.revokeBy = time.Time{}
		if mem.epoch != cg.targetEpoch {
			mem.prevEpoch, mem.epoch = mem.epoch, cg.targetEpoch
		}
	}
	for tp := range mem.assignedAt {
		if !mem.assigned.has(tp.topic, tp.part) {
			delete(mem.assignedAt, tp)
		}
	}
	cg.hold(mem)
}

// release forgets the partitions a member holds; hold records them again.
func (cg *cgroup) release(mem *cmember) {
	for _, a := range []assignment{mem.assigned, mem.revoking} {
		for t, ps := range a {
			for _, p := range ps {
				if cg.owners[tpart{t, p}] == mem.id {
					delete(cg.owners, tpart{t, p})
				}
			}
		}
	}
}

func (cg *cgroup) hold(mem *cmember) {
	for _, a := range []assignment{mem.assigned, mem.revoking} {
		for t, ps := range a {
			for _, p := range ps {
				cg.owners[tpart{t, p}] = mem.id
			}
		}
	}
}

// knownMember returns the member a heartbeat of a nonzero epoch names, or why not:
// FENCED_INSTANCE_ID when its instance id is another member's, UNKNOWN_MEMBER_ID when there
// is no such member.
func (cg *cgroup) knownMember(req *brokerop.ConsumerGroupHeartbeatReq) (*cmember, int16) {
	mem := cg.members[req.MemberID]
	if mem == nil {
		if req.InstanceID != "" {
			if cur, ok := cg.statics[req.InstanceID]; ok && cur != req.MemberID {
				return nil, errFencedInstanceID
			}
		}
		return nil, errUnknownMemberID
	}
	if req.InstanceID != "" && mem.instance != req.InstanceID {
		return nil, errFencedInstanceID
	}
	return mem, errNone
}

// consumerLeave handles MemberEpoch -1 (leave) and -2 (a static member's temporary leave:
// it keeps its assignment until its session expires or its instance id rejoins).
func (m *Machine) consumerLeave(g *group, req *brokerop.ConsumerGroupHeartbeatReq) *brokerop.ConsumerGroupHeartbeatResp {
	cg := g.cg
	mem, code := cg.knownMember(req)
	if code != errNone {
		return cgFail(code, "")
	}
	resp := &brokerop.ConsumerGroupHeartbeatResp{MemberID: mem.id, MemberEpoch: req.MemberEpoch}
	if req.MemberEpoch == -2 && mem.instance != "" {
		if mem.epoch != -2 {
			// Partitions it was revoking are free; what it is assigned stays held.
			for t, ps := range mem.revoking {
				for _, p := range ps {
					delete(cg.owners, tpart{t, p})
				}
			}
			mem.revoking, mem.state, mem.revokeBy = assignment{}, msStable, time.Time{}
			mem.prevEpoch, mem.epoch = mem.epoch, -2
		}
		return resp
	}
	m.removeConsumer(cg, mem)
	return resp
}

// removeConsumer removes a member (leave, session or rebalance timeout) and bumps the
// group epoch: its partitions go to the others.
func (m *Machine) removeConsumer(cg *cgroup, mem *cmember) {
	cg.release(mem)
	delete(cg.members, mem.id)
	if mem.instance != "" && cg.statics[mem.instance] == mem.id {
		delete(cg.statics, mem.instance)
	}
	cg.epoch++
	cg.metaSig = m.metadataSig(cg)
	cg.imageSeen = m.imageVersion
	m.computeTarget(cg)
}

// consumerDeadline is the earliest session or rebalance deadline of a consumer group.
func (cg *cgroup) deadline(consider func(time.Time)) {
	for _, mem := range cg.members {
		consider(mem.expires)
		if mem.state == msUnrevoked {
			consider(mem.revokeBy)
		}
	}
}

// tick removes members whose session expired or that did not revoke in time.
func (m *Machine) tickConsumer(cg *cgroup) {
	for _, id := range sortedIDs(cg.members) {
		mem := cg.members[id]
		if !m.now.Before(mem.expires) || (mem.state == msUnrevoked && !mem.revokeBy.IsZero() && !m.now.Before(mem.revokeBy)) {
			m.removeConsumer(cg, mem)
		}
	}
}

// toWire converts an assignment to its wire form, topics sorted by id.
func (m *Machine) toWire(a assignment) []brokerop.ConsumerGroupTopicPartitions {
	out := []brokerop.ConsumerGroupTopicPartitions{}
	for t, ps := range a {
		if len(ps) == 0 {
			continue
		}
		out = append(out, brokerop.ConsumerGroupTopicPartitions{TopicID: t, Topic: m.image.byID[t].Name, Partitions: slices.Clone(ps)})
	}
	slices.SortFunc(out, func(a, b brokerop.ConsumerGroupTopicPartitions) int {
		return strings.Compare(string(a.TopicID[:]), string(b.TopicID[:]))
	})
	return out
}

// validateConsumerCommit is OffsetCommit's member check for a consumer group: the generation
// is the member epoch. The current epoch is accepted; an older one only for partitions the
// member still holds and was given at or before that epoch (Kafka 4.3's rule, which a client
// committing across a reconciliation needs); a newer one is STALE_MEMBER_EPOCH.
func (m *Machine) validateConsumerCommit(cg *cgroup, req *brokerop.OffsetCommitReq) (int16, func(topic string, p int32) int16) {
	if req.Generation < 0 && req.MemberID == "" && req.InstanceID == "" {
		if len(cg.members) == 0 {
			return errNone, nil
		}
		return errUnknownMemberID, nil
	}
	mem := cg.members[req.MemberID]
	if mem == nil {
		return errUnknownMemberID, nil
	}
	if req.InstanceID != "" && mem.instance != req.InstanceID {
		return errFencedInstanceID, nil
	}
	if req.Generation == mem.epoch {
		return errNone, nil
	}
	if req.Generation > mem.epoch || req.Generation < 0 {
		return errStaleMemberEpoch, nil
	}
	return errNone, func(topic string, p int32) int16 {
		t, ok := m.image.byName[topic]
		if !ok {
			return errStaleMemberEpoch
		}
		at, ok := mem.assignedAt[tpart{t.TopicID, p}]
		if !ok || at > req.Generation {
			return errStaleMemberEpoch
		}
		return errNone
	}
}

// subscribedNames is the topics a consumer group's members subscribe to (for OffsetDelete).
func (m *Machine) consumerSubscribed(cg *cgroup) map[string]bool {
	out := map[string]bool{}
	for _, mem := range cg.members {
		for _, n := range mem.names {
			out[n] = true
		}
		for _, t := range m.subscribedIDs(mem) {
			out[m.image.byID[t].Name] = true
		}
	}
	return out
}

// ConsumerGroupDescribe describes consumer groups.
func (m *Machine) ConsumerGroupDescribe(now time.Time, tok Token, req *brokerop.ConsumerGroupDescribeReq) []Output {
	m.begin(now)
	resp := &brokerop.ConsumerGroupDescribeResp{}
	for _, id := range req.Groups {
		d := brokerop.ConsumerGroupDescribed{Group: id}
		g := m.groups[id]
		switch {
		case g == nil:
			d.ErrorCode, d.ErrorMessage = errGroupIDNotFound, "Group "+id+" not found."
		case g.cg == nil && (g.state != Empty || len(g.members) > 0):
			d.ErrorCode, d.ErrorMessage = errGroupIDNotFound, "Group "+id+" is not a consumer group."
		case g.cg == nil:
			d.State, d.AssignorName = "Empty", AssignorUniform
		default:
			cg := g.cg
			d.State, d.Epoch, d.AssignmentEpoch, d.AssignorName = cg.state(), cg.epoch, cg.targetEpoch, cg.assignor
			for _, mid := range sortedIDs(cg.members) {
				mem := cg.members[mid]
				d.Members = append(d.Members, brokerop.ConsumerGroupDescribedMember{
					MemberID: mem.id, InstanceID: mem.instance, RackID: mem.rack, MemberEpoch: mem.epoch,
					ClientID: mem.clientID, ClientHost: mem.clientHost,
					SubscribedTopicNames: slices.Clone(mem.names), SubscribedTopicRegex: mem.regex,
					Assignment: m.toWire(mem.assigned), TargetAssignment: m.toWire(mem.target),
				})
			}
		}
		resp.Groups = append(resp.Groups, d)
	}
	m.reply(tok, resp)
	return m.out
}
