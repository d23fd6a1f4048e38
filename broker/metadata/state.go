package metadata

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"sync"
)

// State is the cluster metadata state machine. Apply, Snapshot and Restore have the method
// set of quorum.StateMachine. It is safe for concurrent use: Apply and Restore take a write
// lock, Snapshot and the accessors a read lock, and accessors return copies.
type State struct {
	mu sync.RWMutex

	applied        uint64
	clusterID      string
	nextProducerID int64
	nextKafkaID    int32 // next Kafka broker id to assign; ids start at 1

	brokers  map[uint64]*Broker // by raft id
	byNode   map[NodeID]uint64  // NodeID -> raft id of its live incarnation
	kafkaIDs map[NodeID]int32   // every NodeID ever registered -> its Kafka broker id
	allowed  map[NodeID]struct{}

	topics     map[string]*Topic
	topicByID  map[TopicID]string
	collisions map[string]string // CollisionKey(name) -> name
	owned      map[NodeID]int64  // partitions per owner (derived)

	groups  map[string]map[TopicPartition]CommittedOffset // group -> committed offsets (never empty)
	gens    map[string]int32                              // group -> last generation handed out (> 0)
	members map[string]memberRecord                       // group -> recorded membership (groupmembers.go)

	sec security // ACLs, SCRAM credentials, client quotas, roles (security.go)

	txns map[string][]byte // transaction coordinator records by transactional id (txn.go)
	// shares: share coordinator records by group, then key (share.go)
	shares map[string]map[string][]byte
}

// New returns an empty state (no cluster id, nothing applied).
func New() *State {
	s := &State{}
	s.reset()
	return s
}

func (s *State) reset() {
	s.applied, s.clusterID, s.nextProducerID, s.nextKafkaID = 0, "", 0, 1
	s.brokers = map[uint64]*Broker{}
	s.byNode = map[NodeID]uint64{}
	s.kafkaIDs = map[NodeID]int32{}
	s.allowed = map[NodeID]struct{}{}
	s.topics = map[string]*Topic{}
	s.topicByID = map[TopicID]string{}
	s.collisions = map[string]string{}
	s.owned = map[NodeID]int64{}
	s.groups = map[string]map[TopicPartition]CommittedOffset{}
	s.gens = map[string]int32{}
	s.members = map[string]memberRecord{}
	s.sec.reset()
	s.txns = map[string][]byte{}
	s.shares = map[string]map[string][]byte{}
}

// Apply applies the committed entry at index (see result.go for what it returns). An entry it
// cannot decode changes nothing but the last applied index and returns an error, so that one
// bad entry never wedges the log; an index at or below the last applied one changes nothing.
func (s *State) Apply(index uint64, data []byte) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if index <= s.applied {
		return fmt.Errorf("%w: %d, applied %d", ErrStaleIndex, index, s.applied)
	}
	s.applied = index
	if len(data) == 0 {
		return nil // raft's empty entry
	}
	c, err := DecodeCommand(data)
	if err != nil {
		return err
	}
	return s.apply(c, false)
}

// apply runs c; with dry it only validates and changes nothing (results are the same as
// applying it would give).
func (s *State) apply(c Command, dry bool) any {
	switch c := c.(type) {
	case *InitCluster:
		return s.initCluster(c, dry)
	case *RegisterBroker:
		return s.registerBroker(c, dry)
	case *RemoveBroker:
		return s.removeBroker(c, dry)
	case *AllowBroker:
		_, had := s.allowed[c.NodeID]
		if !dry {
			s.allowed[c.NodeID] = struct{}{}
		}
		return &AllowBrokerResult{Changed: !had}
	case *DisallowBroker:
		_, had := s.allowed[c.NodeID]
		if !dry {
			delete(s.allowed, c.NodeID)
		}
		return &AllowBrokerResult{Changed: had}
	case *CreateTopics:
		return s.createTopics(c, dry)
	case *DeleteTopics:
		return s.deleteTopics(c, dry)
	case *CreatePartitions:
		return s.createPartitions(c, dry)
	case *AlterConfigs:
		return s.alterConfigs(c, dry)
	case *Reassign:
		return s.reassign(c, dry)
	case *AllocateProducerIDs:
		return s.allocateProducerIDs(c, dry)
	case *CommitOffsets:
		return s.commitOffsets(c, dry)
	case *DeleteGroups:
		return s.deleteGroups(c, dry)
	case *GroupGenerations:
		return s.groupGenerations(c, dry)
	case *GroupMembers:
		return s.groupMembers(c, dry)
	case *DeleteOffsets:
		return s.deleteOffsets(c, dry)
	case *AlterReassignments:
		return s.alterReassignments(c, dry)
	case *CompleteReassignment:
		return s.completeReassignment(c, dry)
	case *UpdatePartition:
		return s.updatePartition(c, dry)
	case *CreateACLs:
		return s.createACLs(c, dry)
	case *DeleteACLs:
		return s.deleteACLs(c, dry)
	case *AlterScram:
		return s.alterScram(c, dry)
	case *AlterQuotas:
		return s.alterQuotas(c, dry)
	case *SetRoles:
		return s.setRoles(c, dry)
	case *PutTxn:
		return s.putTxn(c, dry)
	case *PutShares:
		return s.putShares(c, dry)
	}
	return fmt.Errorf("%w: %T", ErrUnknownCommand, c)
}

// Validate returns the result applying c now would give, without changing anything (for
// validate-only requests and for checks before proposing).
func (s *State) Validate(c Command) any {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.apply(c, true)
}

func (s *State) initCluster(c *InitCluster, dry bool) *InitClusterResult {
	switch {
	case c.ClusterID == "":
		return &InitClusterResult{ClusterID: s.clusterID, Code: CodeInvalidRequest}
	case s.clusterID == "":
		if !dry {
			s.clusterID = c.ClusterID
		}
		return &InitClusterResult{ClusterID: c.ClusterID}
	case s.clusterID != c.ClusterID:
		return &InitClusterResult{ClusterID: s.clusterID, Code: CodeInconsistentClusterID}
	}
	return &InitClusterResult{ClusterID: s.clusterID}
}

func (s *State) registerBroker(c *RegisterBroker, dry bool) *RegisterBrokerResult {
	fail := func(code int16, msg string) *RegisterBrokerResult {
		return &RegisterBrokerResult{Code: code, Message: msg}
	}
	if c.RaftID == 0 {
		return fail(CodeInvalidRequest, "Raft id 0 is not a valid raft id.")
	}
	if c.NodeID.IsZero() {
		return fail(CodeInvalidRequest, "The zero NodeId is not a valid broker identity.")
	}
	if len(c.Kafka) > MaxKafkaAddr {
		return fail(CodeInvalidRequest, fmt.Sprintf("A Kafka address of %d bytes is longer than %d.", len(c.Kafka), MaxKafkaAddr))
	}
	if b := s.brokers[c.RaftID]; b != nil && b.NodeID != c.NodeID {
		return fail(CodeInvalidRequest, fmt.Sprintf("Raft id %d is registered to broker %s.", c.RaftID, b.NodeID))
	}
	kid, ok := s.kafkaIDs[c.NodeID]
	if !ok {
		if s.nextKafkaID == math.MaxInt32 {
			return fail(CodeUnknownServerError, "Kafka broker ids are exhausted.")
		}
		kid = s.nextKafkaID
	}
	var replaced uint64
	if old, ok := s.byNode[c.NodeID]; ok && old != c.RaftID {
		replaced = old
	}
	if !dry {
		if !ok {
			s.kafkaIDs[c.NodeID] = kid
			s.nextKafkaID++
		}
		if replaced != 0 {
			delete(s.brokers, replaced)
			s.offline(replaced)
		}
		s.brokers[c.RaftID] = &Broker{RaftID: c.RaftID, NodeID: c.NodeID, Addr: c.Addr, Rack: c.Rack, KafkaID: kid, Kafka: c.Kafka}
		s.byNode[c.NodeID] = c.RaftID
	}
	return &RegisterBrokerResult{KafkaID: kid, Replaced: replaced}
}

func (s *State) removeBroker(c *RemoveBroker, dry bool) *RemoveBrokerResult {
	b := s.brokers[c.RaftID]
	if b == nil {
		return &RemoveBrokerResult{Code: CodeBrokerNotAvailable}
	}
	if !dry {
		delete(s.brokers, c.RaftID)
		delete(s.byNode, b.NodeID)
		s.offline(c.RaftID)
	}
	return &RemoveBrokerResult{NodeID: b.NodeID}
}

// offline marks the replicas of a broker incarnation that left (removed, or replaced by a new
// incarnation of its NodeID) as out of sync: it leaves every ISR, and a partition it led has
// no known leader until the next UpdatePartition. Its replicas stay in the replica lists
// (offline) until a replica reassignment moves them.
func (s *State) offline(raftID uint64) {
	for _, t := range s.topics {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if !p.member(raftID) {
				continue
			}
			if i := slices.Index(p.ISR, raftID); i >= 0 {
				p.ISR = slices.Delete(slices.Clone(p.ISR), i, i+1)
			}
			if p.Leader == raftID {
				p.Leader = 0
			}
		}
	}
}

// checkReplicas validates the replica lists of n new partitions with the given owners: nil
// for a single-owner topic (rf 1; rf 0 means "whatever the lists say", for a new topic),
// otherwise one list per partition, each of rf distinct registered raft ids (rf ≥ 2), whose
// first broker is the partition's owner.
func (s *State) checkReplicas(reps [][]uint64, owners []NodeID, rf int) (int16, string) {
	if len(reps) == 0 {
		if rf > 1 {
			return CodeInvalidReplicaAssignment, fmt.Sprintf("The topic has replication factor %d but no replica lists were given.", rf)
		}
		return CodeNone, ""
	}
	if rf == 1 {
		return CodeInvalidReplicaAssignment, "The topic is not replicated: its new partitions take owners, not replica lists."
	}
	if len(reps) != len(owners) {
		return CodeInvalidReplicaAssignment, fmt.Sprintf("%d replica lists for %d partitions.", len(reps), len(owners))
	}
	if rf == 0 {
		rf = len(reps[0])
	}
	for p, r := range reps {
		if len(r) != rf || rf < 2 {
			return CodeInvalidReplicaAssignment, fmt.Sprintf("Partition %d has %d replicas; every partition needs %d (at least 2).", p, len(r), max(rf, 2))
		}
		for j, id := range r {
			b := s.brokers[id]
			if b == nil {
				return CodeInvalidReplicaAssignment, fmt.Sprintf("Replica %d of partition %d is not a registered broker.", id, p)
			}
			if slices.Contains(r[:j], id) {
				return CodeInvalidReplicaAssignment, fmt.Sprintf("Partition %d lists replica %d twice.", p, id)
			}
			if j == 0 && b.NodeID != owners[p] {
				return CodeInvalidReplicaAssignment, fmt.Sprintf("Partition %d: its owner is not its first replica's broker.", p)
			}
		}
	}
	return CodeNone, ""
}

// newPartition is a partition as created: owner o, replicas r (nil: single-owner) all in sync.
func newPartition(o NodeID, r []uint64) Partition {
	p := Partition{Owner: o}
	if len(r) > 0 {
		p.Replicas, p.ISR = slices.Clone(r), slices.Clone(r)
	}
	return p
}

func (s *State) updatePartition(c *UpdatePartition, dry bool) *UpdatePartitionResult {
	fail := func(code int16, format string, args ...any) *UpdatePartitionResult {
		return &UpdatePartitionResult{Code: code, Message: fmt.Sprintf(format, args...)}
	}
	t := s.topics[c.Topic]
	if t == nil || c.Partition < 0 || int(c.Partition) >= len(t.Partitions) {
		return fail(CodeUnknownTopicOrPartition, "Partition %s-%d does not exist.", c.Topic, c.Partition)
	}
	p := &t.Partitions[c.Partition]
	switch {
	case !p.Replicated():
		return fail(CodeInvalidRequest, "Partition %s-%d is not replicated.", c.Topic, c.Partition)
	case c.LeaderEpoch < 0:
		return fail(CodeInvalidRequest, "Leader epoch %d is negative.", c.LeaderEpoch)
	case !p.member(c.Leader):
		return fail(CodeInvalidReplicaAssignment, "Broker %d is not a replica of %s-%d.", c.Leader, c.Topic, c.Partition)
	case c.LeaderEpoch < p.LeaderEpoch:
		return fail(CodeFencedLeaderEpoch, "Leader epoch %d is older than the partition's %d.", c.LeaderEpoch, p.LeaderEpoch)
	case c.LeaderEpoch == p.LeaderEpoch && p.Leader != 0 && p.Leader != c.Leader:
		return fail(CodeFencedLeaderEpoch, "Broker %d leads %s-%d at epoch %d, not broker %d.", p.Leader, c.Topic, c.Partition, p.LeaderEpoch, c.Leader)
	case !slices.Contains(c.ISR, c.Leader):
		return fail(CodeInvalidRequest, "The in-sync replicas must include the leader %d.", c.Leader)
	}
	for i, id := range c.ISR {
		if !p.member(id) {
			return fail(CodeInvalidReplicaAssignment, "In-sync replica %d is not a replica of %s-%d.", id, c.Topic, c.Partition)
		}
		if slices.Contains(c.ISR[:i], id) {
			return fail(CodeInvalidRequest, "In-sync replica %d is listed twice.", id)
		}
	}
	changed := p.Leader != c.Leader || p.LeaderEpoch != c.LeaderEpoch || !slices.Equal(p.ISR, c.ISR)
	if !dry && changed {
		p.Leader, p.LeaderEpoch, p.ISR = c.Leader, c.LeaderEpoch, slices.Clone(c.ISR)
	}
	return &UpdatePartitionResult{Changed: changed}
}

// dups returns the names that appear more than once in items.
func dups[T any](items []T, name func(T) string) map[string]bool {
	seen := make(map[string]bool, len(items))
	out := map[string]bool{}
	for _, it := range items {
		n := name(it)
		if seen[n] {
			out[n] = true
		}
		seen[n] = true
	}
	return out
}

// checkOwners validates a list of new partitions' owners (every one a registered broker) and
// the per-broker limit, counting the partitions this command already placed (in s.owned, or in
// pending for a dry run); it returns
// a code and message, or CodeNone.
func (s *State) checkOwners(owners []NodeID, want int64, max int32, pending map[NodeID]int64) (int16, string) {
	if int64(len(owners)) != want {
		return CodeInvalidReplicaAssignment, fmt.Sprintf("Increasing the number of partitions by %d but %d assignments provided.", want, len(owners))
	}
	add := map[NodeID]int64{}
	for _, o := range owners {
		if _, ok := s.byNode[o]; !ok {
			return CodeInvalidReplicaAssignment, fmt.Sprintf("Broker %s is not a registered broker.", o)
		}
		add[o]++
	}
	if max > 0 {
		for _, o := range sortedNodes(maps.Keys(add)) {
			have := s.owned[o] + pending[o]
			if n := add[o]; n > int64(max)-have {
				return CodeInvalidPartitions, fmt.Sprintf("Adding %d partitions would bring broker %s to %d partitions, above its limit of %d "+
					"(the broker's max partitions setting; it now has %d).", n, o, have+n, max, have)
			}
		}
	}
	return CodeNone, ""
}

// pend records new partitions of a dry run in pending (an apply counts them in s.owned).
func pend(pending map[NodeID]int64, owners []NodeID) {
	for _, o := range owners {
		pending[o]++
	}
}

func (s *State) createTopics(c *CreateTopics, dry bool) *TopicsResult {
	res := &TopicsResult{Topics: make([]TopicResult, len(c.Topics))}
	dup := dups(c.Topics, func(t NewTopic) string { return t.Name })
	pending := map[NodeID]int64{}
	newKeys := map[string]string{}
	newIDs := map[TopicID]bool{}
	for i, nt := range c.Topics {
		r := &res.Topics[i]
		r.Name = nt.Name
		fail := func(code int16, msg string) { r.Code, r.Message = code, msg }
		key := CollisionKey(nt.Name)
		if dup[nt.Name] {
			fail(CodeInvalidRequest, fmt.Sprintf("Create topics request contains multiple entries for the following topics: %s", nt.Name))
			continue
		}
		if msg := ValidateTopicName(nt.Name); msg != "" {
			fail(CodeInvalidTopicException, msg)
			continue
		}
		if s.topics[nt.Name] != nil {
			fail(CodeTopicAlreadyExists, fmt.Sprintf("Topic '%s' already exists.", nt.Name))
			continue
		}
		other, ok := s.collisions[key]
		if !ok {
			other, ok = newKeys[key]
		}
		if ok {
			fail(CodeInvalidTopicException, fmt.Sprintf("Topic '%s' collides with existing topic: %s", nt.Name, other))
			continue
		}
		if nt.ID.IsZero() {
			fail(CodeInvalidRequest, "The topic id must not be zero.")
			continue
		}
		if _, used := s.topicByID[nt.ID]; used || newIDs[nt.ID] {
			fail(CodeInvalidRequest, fmt.Sprintf("Topic id %x is already in use.", nt.ID[:]))
			continue
		}
		if nt.Partitions <= 0 {
			fail(CodeInvalidPartitions, "Number of partitions was set to an invalid non-positive value.")
			continue
		}
		if code, msg := s.checkOwners(nt.Owners, int64(nt.Partitions), c.MaxPartitions, pending); code != CodeNone {
			fail(code, msg)
			continue
		}
		if code, msg := s.checkReplicas(nt.Replicas, nt.Owners, 0); code != CodeNone {
			fail(code, msg)
			continue
		}
		newKeys[key] = nt.Name
		newIDs[nt.ID] = true
		r.ID = nt.ID
		if dry {
			pend(pending, nt.Owners)
			continue
		}
		t := &Topic{Name: nt.Name, ID: nt.ID, Partitions: make([]Partition, len(nt.Owners))}
		if len(nt.Configs) > 0 {
			t.Configs = maps.Clone(nt.Configs)
		}
		for p, o := range nt.Owners {
			var r []uint64
			if len(nt.Replicas) > 0 {
				r = nt.Replicas[p]
			}
			t.Partitions[p] = newPartition(o, r)
			s.owned[o]++
		}
		s.addTopic(t)
	}
	return res
}

func (s *State) addTopic(t *Topic) {
	s.topics[t.Name] = t
	s.topicByID[t.ID] = t.Name
	s.collisions[CollisionKey(t.Name)] = t.Name
}

func (s *State) deleteTopics(c *DeleteTopics, dry bool) *TopicsResult {
	res := &TopicsResult{Topics: make([]TopicResult, len(c.Names))}
	dup := dups(c.Names, func(n string) string { return n })
	for i, name := range c.Names {
		r := &res.Topics[i]
		r.Name = name
		t := s.topics[name]
		switch {
		case dup[name]:
			r.Code, r.Message = CodeInvalidRequest, "Duplicate topic in request."
			continue
		case t == nil:
			r.Code, r.Message = CodeUnknownTopicOrPartition, fmt.Sprintf("Topic '%s' does not exist.", name)
			continue
		}
		r.ID = t.ID
		if dry {
			continue
		}
		for _, p := range t.Partitions {
			s.disown(p.Owner)
		}
		delete(s.topics, name)
		delete(s.topicByID, t.ID)
		delete(s.collisions, CollisionKey(name))
	}
	return res
}

func (s *State) disown(o NodeID) {
	if s.owned[o]--; s.owned[o] <= 0 {
		delete(s.owned, o)
	}
}

func (s *State) createPartitions(c *CreatePartitions, dry bool) *TopicsResult {
	res := &TopicsResult{Topics: make([]TopicResult, len(c.Topics))}
	dup := dups(c.Topics, func(t NewPartitions) string { return t.Name })
	pending := map[NodeID]int64{}
	for i, np := range c.Topics {
		r := &res.Topics[i]
		r.Name = np.Name
		fail := func(code int16, msg string) { r.Code, r.Message = code, msg }
		t := s.topics[np.Name]
		if dup[np.Name] {
			fail(CodeInvalidRequest, "Duplicate topic in request.")
			continue
		}
		if t == nil {
			fail(CodeUnknownTopicOrPartition, fmt.Sprintf("The topic '%s' does not exist.", np.Name))
			continue
		}
		have := int32(len(t.Partitions))
		switch {
		case np.Count < have:
			fail(CodeInvalidPartitions, fmt.Sprintf("Topic currently has %d partitions, which is higher than the requested %d.", have, np.Count))
			continue
		case np.Count == have:
			fail(CodeInvalidPartitions, fmt.Sprintf("Topic already has %d partitions.", have))
			continue
		}
		if code, msg := s.checkOwners(np.Owners, int64(np.Count)-int64(have), c.MaxPartitions, pending); code != CodeNone {
			fail(code, msg)
			continue
		}
		if code, msg := s.checkReplicas(np.Replicas, np.Owners, t.ReplicationFactor()); code != CodeNone {
			fail(code, msg)
			continue
		}
		r.ID = t.ID
		if dry {
			pend(pending, np.Owners)
			continue
		}
		for i, o := range np.Owners {
			var r []uint64
			if len(np.Replicas) > 0 {
				r = np.Replicas[i]
			}
			t.Partitions = append(t.Partitions, newPartition(o, r))
			s.owned[o]++
		}
	}
	return res
}

// ApplyConfigChange returns the configs a topic with cur gets from ch (what AlterConfigs
// stores), or an INVALID_REQUEST code and message for a change that names a key twice. cur is
// not modified.
func ApplyConfigChange(cur map[string]string, ch ConfigChange) (map[string]string, int16, string) {
	for _, k := range ch.Delete {
		if _, dup := ch.Set[k]; dup {
			return nil, CodeInvalidRequest, fmt.Sprintf("Error due to duplicate config keys: %s", k)
		}
	}
	if d := dups(ch.Delete, func(k string) string { return k }); len(d) > 0 {
		return nil, CodeInvalidRequest, fmt.Sprintf("Error due to duplicate config keys: %s", slices.Sorted(maps.Keys(d))[0])
	}
	next := map[string]string{}
	if !ch.Replace {
		maps.Copy(next, cur)
	}
	maps.Copy(next, ch.Set)
	for _, k := range ch.Delete {
		delete(next, k)
	}
	if len(next) == 0 {
		return nil, CodeNone, ""
	}
	return next, CodeNone, ""
}

func (s *State) alterConfigs(c *AlterConfigs, dry bool) *TopicsResult {
	res := &TopicsResult{Topics: make([]TopicResult, len(c.Topics))}
	dup := dups(c.Topics, func(t ConfigChange) string { return t.Name })
	for i, ch := range c.Topics {
		r := &res.Topics[i]
		r.Name = ch.Name
		t := s.topics[ch.Name]
		if dup[ch.Name] {
			r.Code, r.Message = CodeInvalidRequest, fmt.Sprintf("Duplicate resource in request: topic %s", ch.Name)
			continue
		}
		if t == nil {
			r.Code, r.Message = CodeUnknownTopicOrPartition, fmt.Sprintf("Topic '%s' does not exist.", ch.Name)
			continue
		}
		next, code, msg := ApplyConfigChange(t.Configs, ch)
		if code != CodeNone {
			r.Code, r.Message = code, msg
			continue
		}
		r.ID = t.ID
		if !dry {
			t.Configs = next
		}
	}
	return res
}

func (s *State) reassign(c *Reassign, dry bool) *ReassignResult {
	res := &ReassignResult{Moves: make([]MoveResult, len(c.Moves))}
	epochs := map[TopicPartition]int32{} // moves of one partition earlier in this command (dry run)
	for i, m := range c.Moves {
		r := &res.Moves[i]
		t := s.topics[m.Topic]
		if t == nil || m.Partition < 0 || int(m.Partition) >= len(t.Partitions) {
			r.Code, r.Message = CodeUnknownTopicOrPartition, fmt.Sprintf("Partition %s-%d does not exist.", m.Topic, m.Partition)
			continue
		}
		if _, ok := s.byNode[m.Owner]; !ok {
			r.Code, r.Message = CodeInvalidReplicaAssignment, fmt.Sprintf("Broker %s is not a registered broker.", m.Owner)
			continue
		}
		p := &t.Partitions[m.Partition]
		if p.Replicated() {
			r.Code, r.Message = CodeInvalidRequest, fmt.Sprintf("Partition %s-%d is replicated: its replicas move by replica reassignment, not Reassign.", m.Topic, m.Partition)
			continue
		}
		tp := TopicPartition{m.Topic, m.Partition}
		e, ok := epochs[tp]
		if !ok {
			e = p.Epoch
		}
		if e == math.MaxInt32 {
			r.Code, r.Message = CodeUnknownServerError, fmt.Sprintf("Partition %s-%d's epoch is exhausted.", m.Topic, m.Partition)
			continue
		}
		r.Epoch = e + 1
		epochs[tp] = e + 1
		if !dry {
			s.disown(p.Owner)
			p.Owner, p.Epoch = m.Owner, e+1
			s.owned[m.Owner]++
		}
	}
	return res
}

func (s *State) allocateProducerIDs(c *AllocateProducerIDs, dry bool) *AllocateProducerIDsResult {
	if c.Count <= 0 || c.Count > MaxProducerIDBlock {
		return &AllocateProducerIDsResult{Code: CodeInvalidRequest, First: -1}
	}
	if s.nextProducerID > math.MaxInt64-int64(c.Count) {
		return &AllocateProducerIDsResult{Code: CodeUnknownServerError, First: -1}
	}
	first := s.nextProducerID
	if !dry {
		s.nextProducerID += int64(c.Count)
	}
	return &AllocateProducerIDsResult{First: first, Count: c.Count}
}

func (s *State) commitOffsets(c *CommitOffsets, dry bool) *CommitOffsetsResult {
	if c.Group == "" {
		return &CommitOffsetsResult{Code: CodeInvalidGroupID}
	}
	if dry || len(c.Offsets) == 0 {
		return &CommitOffsetsResult{Committed: len(c.Offsets)}
	}
	g := s.groups[c.Group]
	if g == nil {
		g = map[TopicPartition]CommittedOffset{}
		s.groups[c.Group] = g
	}
	for _, o := range c.Offsets {
		tp := TopicPartition{o.Topic, o.Partition}
		if last, ok := g[tp]; ok && o.Writer != 0 && o.Writer == last.Writer && o.Seq < last.Seq {
			continue // a late copy of a commit its writer has overtaken (OffsetCommit)
		}
		g[tp] = CommittedOffset{
			Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata, CommitTimeMs: o.CommitTimeMs,
			Writer: o.Writer, Seq: o.Seq,
		}
	}
	return &CommitOffsetsResult{Committed: len(c.Offsets)}
}

func (s *State) groupGenerations(c *GroupGenerations, dry bool) *GroupGenerationsResult {
	for _, g := range c.Groups {
		if g.Group == "" {
			return &GroupGenerationsResult{Code: CodeInvalidGroupID}
		}
	}
	if dry {
		return &GroupGenerationsResult{}
	}
	for _, g := range c.Groups {
		if g.Generation > s.gens[g.Group] {
			s.gens[g.Group] = g.Generation
			delete(s.members, g.Group) // the membership of an older generation
		}
	}
	return &GroupGenerationsResult{}
}

func (s *State) deleteGroups(c *DeleteGroups, dry bool) *DeleteGroupsResult {
	res := &DeleteGroupsResult{Groups: make([]GroupResult, len(c.Groups))}
	gone := map[string]bool{}
	for i, id := range c.Groups {
		r := &res.Groups[i]
		r.Group = id
		if !dry {
			delete(s.members, id) // its recorded membership too (an empty group's)
		}
		g := s.groups[id]
		if g == nil || gone[id] {
			r.Code = CodeGroupIDNotFound
			continue
		}
		r.Deleted = len(g)
		gone[id] = true
		if !dry {
			delete(s.groups, id)
		}
	}
	return res
}

func (s *State) deleteOffsets(c *DeleteOffsets, dry bool) *DeleteOffsetsResult {
	g := s.groups[c.Group]
	if g == nil {
		return &DeleteOffsetsResult{Code: CodeGroupIDNotFound}
	}
	gone := map[TopicPartition]bool{}
	for _, tp := range c.Partitions {
		if _, ok := g[tp]; ok && !gone[tp] {
			gone[tp] = true
		}
	}
	if !dry {
		for tp := range gone {
			delete(g, tp)
		}
		if len(g) == 0 {
			delete(s.groups, c.Group)
		}
	}
	return &DeleteOffsetsResult{Deleted: len(gone)}
}
