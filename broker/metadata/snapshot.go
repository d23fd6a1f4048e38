package metadata

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"maps"
	"slices"

	"github.com/meshkafka/meshkafka/internal/postcard"
)

// Snapshot layout (see doc.go): magic "MKMD" | version:u8 (=1) | crc32c(body):u32 big-endian |
// body, the body postcard-encoded with every collection in strictly ascending key order, so
// equal states have byte-identical snapshots and Restore accepts only that canonical order.

const (
	snapMagic   = "MKMD"
	snapVersion = 1
	snapHeader  = len(snapMagic) + 1 + 4
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrBadSnapshot is wrapped by every Restore error.
var ErrBadSnapshot = errors.New("metadata: bad snapshot")

// Snapshot returns the whole state as of the last applied index.
func (s *State) Snapshot() ([]byte, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	body := s.appendBody(nil)
	out := make([]byte, 0, snapHeader+len(body))
	out = append(out, snapMagic...)
	out = append(out, snapVersion)
	out = binary.BigEndian.AppendUint32(out, crc32.Checksum(body, castagnoli))
	return append(out, body...), nil
}

func (s *State) appendBody(b []byte) []byte {
	b = postcard.AppendUvarint(b, s.applied)
	b = postcard.AppendString(b, s.clusterID)
	b = postcard.AppendZigzag(b, s.nextProducerID)
	b = appendI32(b, s.nextKafkaID)

	b = postcard.AppendUvarint(b, uint64(len(s.kafkaIDs)))
	for _, n := range sortedNodes(maps.Keys(s.kafkaIDs)) {
		b = append(b, n[:]...)
		b = appendI32(b, s.kafkaIDs[n])
	}
	b = postcard.AppendUvarint(b, uint64(len(s.brokers)))
	for _, id := range slices.Sorted(maps.Keys(s.brokers)) {
		br := s.brokers[id]
		b = postcard.AppendUvarint(b, br.RaftID)
		b = append(b, br.NodeID[:]...)
		b = postcard.AppendBytes(b, br.Addr)
		b = postcard.AppendString(b, br.Rack)
	}
	b = appendNodeIDs(b, sortedNodes(maps.Keys(s.allowed)))

	b = postcard.AppendUvarint(b, uint64(len(s.topics)))
	for _, name := range slices.Sorted(maps.Keys(s.topics)) {
		t := s.topics[name]
		b = postcard.AppendString(b, t.Name)
		b = append(b, t.ID[:]...)
		b = appendMap(b, t.Configs)
		b = postcard.AppendUvarint(b, uint64(len(t.Partitions)))
		for _, p := range t.Partitions {
			b = append(b, p.Owner[:]...)
			b = appendI32(b, p.Epoch)
		}
	}

	b = postcard.AppendUvarint(b, uint64(len(s.groups)))
	for _, g := range slices.Sorted(maps.Keys(s.groups)) {
		b = postcard.AppendString(b, g)
		offs := sortedOffsets(s.groups[g])
		b = postcard.AppendUvarint(b, uint64(len(offs)))
		for _, o := range offs {
			b = appendOffset(b, o)
		}
	}
	// Trailing sections: tag:uvarint | body:bytes, in ascending tag order, each only when
	// its part of the state is not empty.
	var replicas, security, moves, gens []byte // nil: the section is empty
	if names := s.replicatedTopics(); len(names) > 0 {
		replicas = s.appendReplicated(nil, names)
	}
	if !s.sec.empty() {
		security = s.sec.appendSection(nil)
	}
	if names := s.movingTopics(); len(names) > 0 {
		moves = s.appendReassignments(nil, names)
	}
	if len(s.gens) > 0 {
		gens = s.appendGenerations(nil)
	}
	for _, sec := range []struct {
		tag  uint64
		body []byte
	}{
		{sectionReplicas, replicas},
		{sectionSecurity, security},
		{sectionReassignments, moves},
		{sectionOffsetStamps, s.appendOffsetStamps(nil)},
		{sectionGenerations, gens},
		{sectionGroupMembers, s.appendGroupMembers(nil)},
		{sectionKafkaListeners, s.appendKafkaListeners(nil)},
		{sectionTxns, s.appendTxns(nil)},
		{sectionShares, s.appendShares(nil)},
	} {
		if sec.body != nil {
			b = postcard.AppendUvarint(b, sec.tag)
			b = postcard.AppendBytes(b, sec.body)
		}
	}
	return b
}

// sectionOffsetStamps is the tag of the snapshot section of committed offsets' writer
// stamps (OffsetCommit Writer, Seq): by group, then topic and partition, the stamped offsets
// only, each naming an offset of the main body.
const sectionOffsetStamps = 5

// appendOffsetStamps appends the section body, or returns nil when no offset is stamped.
func (s *State) appendOffsetStamps(b []byte) []byte {
	found := false
	for _, g := range slices.Sorted(maps.Keys(s.groups)) {
		var stamped []GroupOffset
		for _, o := range sortedOffsets(s.groups[g]) {
			if o.Writer != 0 {
				stamped = append(stamped, o)
			}
		}
		if len(stamped) == 0 {
			continue
		}
		if !found {
			found = true
			b = []byte{}
		}
		b = postcard.AppendString(b, g)
		b = postcard.AppendUvarint(b, uint64(len(stamped)))
		for _, o := range stamped {
			b = postcard.AppendString(b, o.Topic)
			b = appendI32(b, o.Partition)
			b = postcard.AppendUvarint(b, o.Writer)
			b = postcard.AppendUvarint(b, o.Seq)
		}
	}
	return b
}

// restoreOffsetStamps reads the section into s's restored offsets.
func restoreOffsetStamps(d *dec, s *State, check func(bool, string, ...any)) {
	prevGroup := ""
	n := 0
	for d.err == nil && d.d.Remaining() > 0 {
		g := d.str()
		check(n == 0 || g > prevGroup, "groups not in ascending order")
		prevGroup = g
		n++
		offs := s.groups[g]
		m := d.count(4)
		check(m > 0, "group %q without stamps", g)
		var prev TopicPartition
		for j := range m {
			tp := TopicPartition{Topic: d.str(), Partition: d.i32()}
			w, seq := d.u64(), d.u64()
			if d.err != nil {
				return
			}
			check(j == 0 || compareTP(prev, tp) < 0, "stamps of group %q not in ascending order", g)
			prev = tp
			c, ok := offs[tp]
			check(ok, "stamp of group %q %s/%d without an offset", g, tp.Topic, tp.Partition)
			check(w != 0, "zero writer stamped")
			if d.err != nil {
				return
			}
			c.Writer, c.Seq = w, seq
			offs[tp] = c
		}
	}
	check(n > 0, "empty section (an empty state has none)")
}

// sectionGenerations is the tag of the snapshot section of groups' recorded generations
// (GroupGenerations): count, then (group, generation > 0) in ascending group order.
const sectionGenerations = 6

func (s *State) appendGenerations(b []byte) []byte { return appendByKey(b, s.gens, appendI32) }

// sectionRestorers reads each snapshot section (by tag) into a State.
var sectionRestorers = map[uint64]func(d *dec, s *State, check func(bool, string, ...any)){
	sectionReplicas:       restoreReplicated,
	sectionOffsetStamps:   restoreOffsetStamps,
	sectionGenerations:    restoreGenerations,
	sectionGroupMembers:   restoreGroupMembers,
	sectionReassignments:  restoreReassignments,
	sectionSecurity:       restoreSecurity,
	sectionKafkaListeners: restoreKafkaListeners,
	sectionTxns:           restoreTxns,
	sectionShares:         restoreShares,
}

func restoreSecurity(d *dec, s *State, check func(bool, string, ...any)) {
	s.sec.decodeSection(d)
	check(d.err != nil || !s.sec.empty(), "empty section (an empty state has none)")
}

func restoreGenerations(d *dec, s *State, check func(bool, string, ...any)) {
	n := d.count(2)
	check(n > 0, "empty section (an empty state has none)")
	prev := ""
	for i := range n {
		g, gen := d.str(), d.i32()
		if d.err != nil {
			return
		}
		check(i == 0 || g > prev, "groups not in ascending order")
		check(g != "" && gen > 0, "group %q generation %d", g, gen)
		prev = g
		s.gens[g] = gen
	}
}

// sectionKafkaListeners is the tag of the snapshot section of brokers' advertised Kafka
// listeners (the direct data path, issue #16 item 4): count, then (raft id, host:port) in
// ascending raft id order, for brokers that advertise one.
const sectionKafkaListeners = 8

// appendKafkaListeners appends the section body, or returns nil when no broker advertises a
// Kafka listener.
func (s *State) appendKafkaListeners(b []byte) []byte {
	var ids []uint64
	for _, id := range slices.Sorted(maps.Keys(s.brokers)) {
		if s.brokers[id].Kafka != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return nil
	}
	b = postcard.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = postcard.AppendUvarint(b, id)
		b = postcard.AppendString(b, s.brokers[id].Kafka)
	}
	return b
}

// restoreKafkaListeners reads the section appendKafkaListeners writes into s (whose brokers
// are read).
func restoreKafkaListeners(d *dec, s *State, check func(bool, string, ...any)) {
	n := d.count(2)
	check(n > 0, "empty section (a state without Kafka listeners has none)")
	var prev uint64
	for range n {
		id, addr := d.u64(), d.str()
		if d.err != nil {
			return
		}
		b := s.brokers[id]
		check(id > prev && b != nil, "Kafka listener of unknown or unordered broker %d", id)
		check(addr != "" && len(addr) <= MaxKafkaAddr, "Kafka listener of %d bytes", len(addr))
		if d.err != nil {
			return
		}
		prev, b.Kafka = id, addr
	}
}

// sectionReplicas is the tag of the snapshot section of replicated partitions (issue #16).
const sectionReplicas = 2

// replicatedTopics lists the topics that have replicated partitions, by name.
func (s *State) replicatedTopics() []string {
	return s.topicsWhere(slices.Sorted(maps.Keys(s.topics)), (*Partition).Replicated)
}

// topicsWhere lists, in their order, the topics of names that have a partition for which has
// holds.
func (s *State) topicsWhere(names []string, has func(*Partition) bool) []string {
	var out []string
	for _, name := range names {
		if slices.ContainsFunc(s.topics[name].Partitions, func(p Partition) bool { return has(&p) }) {
			out = append(out, name)
		}
	}
	return out
}

// appendReplicated appends the body of the replicated-partitions section: the topics names
// (those that have any), each with its replicated partitions in ascending order.
func (s *State) appendReplicated(b []byte, names []string) []byte {
	return s.appendPartitionSection(b, names, (*Partition).Replicated, func(b []byte, p *Partition) []byte {
		b = appendU64s(b, p.Replicas)
		b = postcard.AppendUvarint(b, p.Leader)
		b = appendI32(b, p.LeaderEpoch)
		return appendU64s(b, p.ISR)
	})
}

// appendPartitionSection appends a section about some partitions of the named topics:
// seq<name | seq<partition:i32 | fields written by each>>, the partitions those of each topic
// for which has is true, in ascending order.
func (s *State) appendPartitionSection(b []byte, names []string, has func(*Partition) bool, each func([]byte, *Partition) []byte) []byte {
	b = postcard.AppendUvarint(b, uint64(len(names)))
	for _, name := range names {
		t := s.topics[name]
		b = postcard.AppendString(b, name)
		n := 0
		for i := range t.Partitions {
			if has(&t.Partitions[i]) {
				n++
			}
		}
		b = postcard.AppendUvarint(b, uint64(n))
		for i := range t.Partitions {
			if p := &t.Partitions[i]; has(p) {
				b = appendI32(b, int32(i))
				b = each(b, p)
			}
		}
	}
	return b
}

// restorePartitionSection reads a section appendPartitionSection wrote into s (whose topics are
// read): what names the section in errors, minFields the least bytes one partition's fields
// take (bounds the counts against the data), and each reads one partition's fields, checks
// them and stores them into p (it is called only while the data is sound).
func restorePartitionSection(d *dec, s *State, check func(bool, string, ...any), what string, minFields int, each func(name string, idx int32, p *Partition)) {
	prevName := ""
	n := d.count(2)
	check(n > 0, "empty %s section", what)
	for i := range n {
		name := d.str()
		check(i == 0 || name > prevName, "%s: topics not in ascending order", what)
		prevName = name
		t := s.topics[name]
		check(t != nil, "%s of unknown topic %q", what, name)
		np := d.count(1 + minFields)
		check(np > 0, "topic %q listed in %s without partitions", name, what)
		prev := int32(-1)
		for range np {
			idx := d.i32()
			if d.err != nil || t == nil {
				return
			}
			check(idx > prev && int(idx) < len(t.Partitions), "topic %q: %s of partition %d out of order or range", name, what, idx)
			prev = idx
			if d.err != nil {
				return
			}
			each(name, idx, &t.Partitions[idx])
			if d.err != nil {
				return
			}
		}
	}
}

// restoreReplicated reads the section appendReplicated writes into s (whose topics are read).
func restoreReplicated(d *dec, s *State, check func(bool, string, ...any)) {
	restorePartitionSection(d, s, check, "replicas", 4, func(name string, idx int32, p *Partition) {
		reps := d.u64s()
		leader := d.u64()
		epoch := d.i32()
		isr := d.u64s()
		if d.err != nil {
			return
		}
		check(len(reps) >= 2 && distinct(reps) && !slices.Contains(reps, 0), "topic %q partition %d: bad replica list", name, idx)
		// The leader and ISR are checked against the members once every section is read
		// (a reassignment's adding replicas may lead).
		check(epoch >= 0 && distinct(isr), "topic %q partition %d: bad leader epoch or ISR", name, idx)
		p.Replicas, p.Leader, p.LeaderEpoch, p.ISR = reps, leader, epoch, isr
	})
	if d.err == nil {
		// Every topic's partitions agree on the replication factor.
		for _, name := range slices.Sorted(maps.Keys(s.topics)) {
			t := s.topics[name]
			rf := len(t.Partitions[0].Replicas)
			for _, p := range t.Partitions {
				check(len(p.Replicas) == rf, "topic %q: partitions with different replication factors", t.Name)
			}
		}
	}
}

func distinct(ids []uint64) bool {
	for i, id := range ids {
		if slices.Contains(ids[:i], id) {
			return false
		}
	}
	return true
}

// Restore replaces the state with a snapshot's. On error the state is unchanged.
func (s *State) Restore(data []byte) error {
	n, err := decodeSnapshot(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrBadSnapshot, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.applied, s.clusterID, s.nextProducerID, s.nextKafkaID = n.applied, n.clusterID, n.nextProducerID, n.nextKafkaID
	s.brokers, s.byNode, s.kafkaIDs, s.allowed = n.brokers, n.byNode, n.kafkaIDs, n.allowed
	s.topics, s.topicByID, s.collisions, s.owned = n.topics, n.topicByID, n.collisions, n.owned
	s.groups, s.gens, s.members = n.groups, n.gens, n.members
	s.sec = n.sec
	s.txns = n.txns
	s.shares = n.shares
	return nil
}

func decodeSnapshot(data []byte) (*State, error) {
	if len(data) < snapHeader || string(data[:len(snapMagic)]) != snapMagic {
		return nil, errors.New("no snapshot header")
	}
	if v := data[len(snapMagic)]; v != snapVersion {
		return nil, fmt.Errorf("version %d", v)
	}
	body := data[snapHeader:]
	if want, got := binary.BigEndian.Uint32(data[len(snapMagic)+1:]), crc32.Checksum(body, castagnoli); want != got {
		return nil, fmt.Errorf("checksum mismatch (stored %08x, computed %08x)", want, got)
	}
	s := New()
	d := &dec{d: postcard.NewDecoder(body)}
	check := func(ok bool, format string, args ...any) {
		if !ok {
			d.fail(fmt.Errorf(format, args...))
		}
	}
	s.applied = d.u64()
	s.clusterID = d.str()
	s.nextProducerID = d.i64()
	s.nextKafkaID = d.i32()
	check(s.nextProducerID >= 0, "negative next producer id")
	check(s.nextKafkaID >= 1, "next kafka id %d", s.nextKafkaID)

	usedKafka := map[int32]bool{}
	var prevNode NodeID
	for i := range d.count(33) {
		n, kid := d.nodeID(), d.i32()
		check(i == 0 || compareNodes(prevNode, n) < 0, "kafka ids not in ascending NodeId order")
		check(!n.IsZero() && kid >= 1 && kid < s.nextKafkaID && !usedKafka[kid], "bad kafka id %d", kid)
		prevNode, usedKafka[kid] = n, true
		s.kafkaIDs[n] = kid
	}
	var prevRaft uint64
	for range d.count(34) {
		b := &Broker{RaftID: d.u64(), NodeID: d.nodeID(), Addr: d.bytes(), Rack: d.str()}
		check(b.RaftID > prevRaft, "brokers not in ascending raft id order")
		_, dupNode := s.byNode[b.NodeID]
		kid, known := s.kafkaIDs[b.NodeID]
		check(!dupNode && known, "broker %d: NodeId registered twice or without a kafka id", b.RaftID)
		prevRaft, b.KafkaID = b.RaftID, kid
		s.brokers[b.RaftID] = b
		s.byNode[b.NodeID] = b.RaftID
	}
	allowed := d.nodeIDs()
	for i, n := range allowed {
		check(i == 0 || compareNodes(allowed[i-1], n) < 0, "allowed NodeIds not in ascending order")
		s.allowed[n] = struct{}{}
	}
	prevName := ""
	for i := range d.count(1 + 16 + 1 + 1) {
		t := &Topic{Name: d.str(), ID: d.topicID(), Configs: d.stringMap()}
		np := d.count(33)
		for range np {
			p := Partition{Owner: d.nodeID(), Epoch: d.i32()}
			check(p.Epoch >= 0, "negative partition epoch")
			t.Partitions = append(t.Partitions, p)
			s.owned[p.Owner]++
		}
		if d.err != nil {
			break
		}
		check(i == 0 || t.Name > prevName, "topics not in ascending order")
		check(ValidateTopicName(t.Name) == "", "bad topic name %q", t.Name)
		check(np > 0 && !t.ID.IsZero(), "topic %q: no partitions or zero id", t.Name)
		_, dupID := s.topicByID[t.ID]
		_, collides := s.collisions[CollisionKey(t.Name)]
		check(!dupID && !collides, "topic %q: id or name collides", t.Name)
		prevName = t.Name
		s.addTopic(t)
	}
	prevGroup := ""
	for i := range d.count(2) {
		g := d.str()
		check(i == 0 || g > prevGroup, "groups not in ascending order")
		check(g != "", "empty group id")
		prevGroup = g
		offs := map[TopicPartition]CommittedOffset{}
		var prev TopicPartition
		n := d.count(6)
		check(n > 0, "group %q without offsets", g)
		for j := range n {
			tp := TopicPartition{Topic: d.str(), Partition: d.i32()}
			c := CommittedOffset{Offset: d.i64(), LeaderEpoch: d.i32(), Metadata: d.str(), CommitTimeMs: d.i64()}
			check(j == 0 || compareTP(prev, tp) < 0, "offsets of group %q not in ascending order", g)
			prev = tp
			offs[tp] = c
		}
		s.groups[g] = offs
	}
	prevTag := uint64(0)
	for d.err == nil && d.d.Remaining() > 0 {
		tag := d.u64()
		body := d.bytes()
		check(tag > prevTag, "snapshot sections not in ascending tag order")
		prevTag = tag
		if d.err != nil {
			break
		}
		sd := &dec{d: postcard.NewDecoder(body)}
		sectionCheck := func(ok bool, format string, args ...any) {
			if !ok {
				sd.fail(fmt.Errorf(format, args...))
			}
		}
		restore, ok := sectionRestorers[tag]
		if !ok {
			d.fail(fmt.Errorf("unknown snapshot section %d", tag))
			continue
		}
		restore(sd, s, sectionCheck)
		if sd.err == nil && sd.d.Remaining() != 0 {
			sd.fail(fmt.Errorf("%d trailing bytes", sd.d.Remaining()))
		}
		if sd.err != nil {
			d.fail(fmt.Errorf("section %d: %w", tag, sd.err))
		}
	}
	if d.err == nil {
		// Leaders and ISRs of replicated partitions are members of their raft groups.
		for _, name := range slices.Sorted(maps.Keys(s.topics)) {
			for i, p := range s.topics[name].Partitions {
				check(p.Leader == 0 || p.member(p.Leader), "topic %q partition %d: leader not a replica", name, i)
				check(!slices.ContainsFunc(p.ISR, func(id uint64) bool { return !p.member(id) }), "topic %q partition %d: bad leader epoch or ISR", name, i)
			}
		}
	}
	if d.err != nil {
		return nil, d.err
	}
	return s, nil
}
