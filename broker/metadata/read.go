package metadata

import (
	"cmp"
	"maps"
	"slices"
	"strings"
)

// Read accessors. Each takes the read lock and returns copies the caller may keep and modify.

// read returns f's result computed under the read lock.
func read[T any](s *State, f func() T) T {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return f()
}

// lookup is read for a look-up that may find nothing.
func lookup[T any](s *State, f func() (T, bool)) (T, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return f()
}

// cloner is a stored record (*Broker, *Topic) that hands out copies of itself.
type cloner[T any] interface {
	*T
	clone() T
}

// found returns a copy of *p, or false when p is nil.
func found[T any, P cloner[T]](p P) (T, bool) {
	if p == nil {
		var zero T
		return zero, false
	}
	return p.clone(), true
}

// foundVia returns a copy of the record index names for k.
func foundVia[K, J comparable, T any, P cloner[T]](index map[K]J, m map[J]P, k K) (T, bool) {
	j, ok := index[k]
	if !ok {
		var zero T
		return zero, false
	}
	return found(m[j])
}

// sortedClones copies m's records in ascending key order.
func sortedClones[K cmp.Ordered, T any, P cloner[T]](m map[K]P) []T {
	out := make([]T, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[k].clone())
	}
	return out
}

// LastApplied is the index of the last entry Apply applied (or the snapshot's, after Restore).
func (s *State) LastApplied() uint64 {
	return read(s, func() uint64 { return s.applied })
}

// ClusterID is the cluster id ("" before InitCluster).
func (s *State) ClusterID() string {
	return read(s, func() string { return s.clusterID })
}

// NextProducerID is the first producer id the next AllocateProducerIDs hands out.
func (s *State) NextProducerID() int64 {
	return read(s, func() int64 { return s.nextProducerID })
}

// Brokers lists the registered brokers by raft id.
func (s *State) Brokers() []Broker {
	return read(s, func() []Broker { return sortedClones(s.brokers) })
}

// Broker returns the broker with raft id id.
func (s *State) Broker(raftID uint64) (Broker, bool) {
	return lookup(s, func() (Broker, bool) { return found(s.brokers[raftID]) })
}

// BrokerByNode returns the live incarnation of NodeID n.
func (s *State) BrokerByNode(n NodeID) (Broker, bool) {
	return lookup(s, func() (Broker, bool) { return foundVia(s.byNode, s.brokers, n) })
}

// BrokerByKafkaID returns the live broker with Kafka broker id kid.
func (s *State) BrokerByKafkaID(kid int32) (Broker, bool) {
	return lookup(s, func() (Broker, bool) {
		for _, b := range s.brokers {
			if b.KafkaID == kid {
				return b.clone(), true
			}
		}
		return Broker{}, false
	})
}

// KafkaID returns the Kafka broker id of NodeID n, if it was ever registered.
func (s *State) KafkaID(n NodeID) (int32, bool) {
	return lookup(s, func() (int32, bool) {
		id, ok := s.kafkaIDs[n]
		return id, ok
	})
}

// Allowed reports whether NodeID n was admitted by AllowBroker.
func (s *State) Allowed(n NodeID) bool {
	return read(s, func() bool {
		_, ok := s.allowed[n]
		return ok
	})
}

// AllowedNodes lists the admitted NodeIDs in ascending order.
func (s *State) AllowedNodes() []NodeID {
	return read(s, func() []NodeID { return sortedNodes(maps.Keys(s.allowed)) })
}

func compareNodes(a, b NodeID) int { return strings.Compare(string(a[:]), string(b[:])) }

func sortedNodes(seq func(func(NodeID) bool)) []NodeID {
	return slices.SortedFunc(seq, compareNodes)
}

// Topic returns the topic named name.
func (s *State) Topic(name string) (Topic, bool) {
	return lookup(s, func() (Topic, bool) { return found(s.topics[name]) })
}

// TopicByID returns the topic with id id.
func (s *State) TopicByID(id TopicID) (Topic, bool) {
	return lookup(s, func() (Topic, bool) { return foundVia(s.topicByID, s.topics, id) })
}

// Topics lists every topic by name.
func (s *State) Topics() []Topic {
	return read(s, func() []Topic { return sortedClones(s.topics) })
}

// TopicNames lists the topic names in ascending order.
func (s *State) TopicNames() []string {
	return read(s, func() []string { return slices.Sorted(maps.Keys(s.topics)) })
}

// Owner returns the owner of one partition.
func (s *State) Owner(topic string, partition int32) (Partition, bool) {
	return lookup(s, func() (Partition, bool) {
		t := s.topics[topic]
		if t == nil || partition < 0 || int(partition) >= len(t.Partitions) {
			return Partition{}, false
		}
		return t.Partitions[partition].clone(), true
	})
}

// PartitionCount is the number of partitions owned by NodeID n (registered or not).
func (s *State) PartitionCount(n NodeID) int64 {
	return read(s, func() int64 { return s.owned[n] })
}

// OrphanedPartitions lists the single-owner partitions whose owner is not a registered broker
// (removed or replaced incarnations' NodeIDs are registered again when they rejoin), sorted by
// topic and partition: the ones to Reassign. (A replicated partition's replica on a removed
// broker is offline; OfflineReplicas lists those.)
func (s *State) OrphanedPartitions() []TopicPartition {
	return read(s, func() []TopicPartition {
		var out []TopicPartition
		for _, name := range slices.Sorted(maps.Keys(s.topics)) {
			for i, p := range s.topics[name].Partitions {
				if _, ok := s.byNode[p.Owner]; !ok && !p.Replicated() {
					out = append(out, TopicPartition{name, int32(i)})
				}
			}
		}
		return out
	})
}

// CommittedOffset returns a group's committed offset for one partition.
func (s *State) CommittedOffset(group, topic string, partition int32) (CommittedOffset, bool) {
	return lookup(s, func() (CommittedOffset, bool) {
		c, ok := s.groups[group][TopicPartition{topic, partition}]
		return c, ok
	})
}

// GroupOffsets lists a group's committed offsets sorted by topic and partition.
func (s *State) GroupOffsets(group string) []GroupOffset {
	return read(s, func() []GroupOffset { return sortedOffsets(s.groups[group]) })
}

func compareTP(a, b TopicPartition) int {
	if c := strings.Compare(a.Topic, b.Topic); c != 0 {
		return c
	}
	return cmp.Compare(a.Partition, b.Partition)
}

func sortedOffsets(g map[TopicPartition]CommittedOffset) []GroupOffset {
	if len(g) == 0 {
		return nil
	}
	out := make([]GroupOffset, 0, len(g))
	for _, tp := range slices.SortedFunc(maps.Keys(g), compareTP) {
		out = append(out, GroupOffset{tp, g[tp]})
	}
	return out
}

// GroupGenerations lists the recorded generation of every group that has one (GroupGenerations),
// by group.
func (s *State) GroupGenerations() []GroupGeneration {
	return read(s, func() []GroupGeneration {
		out := make([]GroupGeneration, 0, len(s.gens))
		for _, g := range slices.Sorted(maps.Keys(s.gens)) {
			out = append(out, GroupGeneration{Group: g, Generation: s.gens[g]})
		}
		return out
	})
}

// Groups lists the groups that have committed offsets, in ascending order.
func (s *State) Groups() []string {
	return read(s, func() []string { return slices.Sorted(maps.Keys(s.groups)) })
}

// OfflineReplicas lists the replicated partitions that have a replica whose raft id is not a
// registered broker (removed, or replaced by a new incarnation), sorted by topic and partition.
func (s *State) OfflineReplicas() []TopicPartition {
	return read(s, func() []TopicPartition {
		var out []TopicPartition
		for _, name := range slices.Sorted(maps.Keys(s.topics)) {
			for i, p := range s.topics[name].Partitions {
				if slices.ContainsFunc(p.Replicas, func(id uint64) bool { return s.brokers[id] == nil }) {
					out = append(out, TopicPartition{name, int32(i)})
				}
			}
		}
		return out
	})
}
