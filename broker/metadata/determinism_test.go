package metadata_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/broker/metadata"
)

// gen makes random entries over a small vocabulary, so that names, ids, owners and groups
// collide often and every error path is taken.
type gen struct {
	r    *rand.Rand
	last *metadata.ReassignPartition // the last reassignment generated (CompleteReassignment reuses it)
}

func newGen(seed uint64) *gen { return &gen{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (g *gen) node() metadata.NodeID { return node(byte(1 + g.r.IntN(5))) }
func (g *gen) name() string {
	return []string{"a", "b", "c.d", "c_d", "e", "", "bad name"}[g.r.IntN(7)]
}

// rname is mostly the name of a replicated topic, sometimes of any.
func (g *gen) rname() string {
	if g.r.IntN(4) == 0 {
		return g.name()
	}
	return []string{"r1", "r2"}[g.r.IntN(2)]
}
func (g *gen) group() string         { return []string{"g1", "g2", "g3", ""}[g.r.IntN(4)] }
func (g *gen) key() string           { return []string{"k1", "k2", "k3"}[g.r.IntN(3)] }
func (g *gen) tid() metadata.TopicID { return tid(byte(g.r.IntN(12))) }

func (g *gen) owners(n int) []metadata.NodeID {
	out := make([]metadata.NodeID, n)
	for i := range out {
		out[i] = g.node()
	}
	return out
}

func (g *gen) configs() map[string]string {
	m := map[string]string{}
	for range g.r.IntN(3) {
		m[g.key()] = fmt.Sprint(g.r.IntN(100))
	}
	return m
}

// replicas returns n replica lists of rf raft ids (from 1..6, distinct within a list unless
// the dice say otherwise) and owners matching their first replica the way cluster() registers
// brokers (raft id i is node(i)), so that both valid and invalid lists come up.
func (g *gen) replicas(n, rf int) ([]metadata.NodeID, [][]uint64) {
	owners := make([]metadata.NodeID, n)
	reps := make([][]uint64, n)
	for p := range n {
		perm := g.r.Perm(4)
		for j := range rf {
			reps[p] = append(reps[p], uint64(perm[j]+1))
		}
		if g.r.IntN(10) == 0 {
			reps[p][rf-1] = reps[p][0]
		}
		owners[p] = node(byte(reps[p][0]))
	}
	return owners, reps
}

func (g *gen) command() metadata.Command {
	if g.r.IntN(6) == 0 {
		return g.securityCommand()
	}
	switch g.r.IntN(22) {
	case 19, 20:
		c := &metadata.AlterReassignments{}
		for range 1 + g.r.IntN(2) {
			it := metadata.ReassignPartition{Topic: g.rname(), Partition: int32(g.r.IntN(3))}
			if g.r.IntN(5) > 0 {
				perm := g.r.Perm(5)
				for j := range 2 + g.r.IntN(3)/2 {
					it.Target = append(it.Target, uint64(perm[j]+1))
				}
			}
			c.Partitions = append(c.Partitions, it)
			g.last = &it
		}
		return c
	case 21:
		if g.last != nil && g.r.IntN(3) > 0 {
			return &metadata.CompleteReassignment{Topic: g.last.Topic, Partition: g.last.Partition, Target: g.last.Target}
		}
		c := &metadata.CompleteReassignment{Topic: g.rname(), Partition: int32(g.r.IntN(3))}
		perm := g.r.Perm(5)
		for j := range 2 + g.r.IntN(2) {
			c.Target = append(c.Target, uint64(perm[j]+1))
		}
		return c
	case 14:
		n := 1 + g.r.IntN(3)
		o, r := g.replicas(n, 2+g.r.IntN(2)/2*g.r.IntN(2))
		return &metadata.CreateTopics{Topics: []metadata.NewTopic{{Name: g.rname(), ID: tid(byte(20 + g.r.IntN(4))), Partitions: int32(n), Owners: o, Replicas: r}}}
	case 15:
		add := 1 + g.r.IntN(2)
		o, r := g.replicas(add, 2+g.r.IntN(2))
		return &metadata.CreatePartitions{Topics: []metadata.NewPartitions{{Name: g.rname(), Count: int32(g.r.IntN(4) + add), Owners: o, Replicas: r}}}
	case 16, 17, 18:
		c := &metadata.UpdatePartition{Topic: g.rname(), Partition: int32(g.r.IntN(3)), Leader: uint64(1 + g.r.IntN(6)), LeaderEpoch: int32(g.r.IntN(5)) - 1}
		c.ISR = append(c.ISR, c.Leader)
		for range g.r.IntN(3) {
			c.ISR = append(c.ISR, uint64(1+g.r.IntN(6)))
		}
		return c
	case 0:
		return &metadata.InitCluster{ClusterID: []string{"c1", "c2", ""}[g.r.IntN(3)]}
	case 1:
		if id := 1 + g.r.IntN(4); g.r.IntN(3) > 0 {
			return &metadata.RegisterBroker{RaftID: uint64(id), NodeID: node(byte(id)), Rack: g.key(), Kafka: []string{"", "h:9093"}[g.r.IntN(2)]}
		}
		return &metadata.RegisterBroker{RaftID: uint64(g.r.IntN(8)), NodeID: g.node(), Addr: []byte{byte(g.r.IntN(3))}, Rack: g.key()}
	case 2:
		if g.r.IntN(3) == 0 {
			return &metadata.RemoveBroker{RaftID: uint64(g.r.IntN(8))}
		}
		if id := g.r.IntN(8); g.r.IntN(2) == 0 && id > 0 && id < 6 {
			return &metadata.RegisterBroker{RaftID: uint64(id), NodeID: node(byte(id))}
		}
		return &metadata.RegisterBroker{RaftID: uint64(g.r.IntN(8)), NodeID: g.node()}
	case 3:
		if g.r.IntN(2) == 0 {
			return &metadata.AllowBroker{NodeID: g.node()}
		}
		return &metadata.DisallowBroker{NodeID: g.node()}
	case 4, 5:
		c := &metadata.CreateTopics{MaxPartitions: int32(g.r.IntN(12))}
		for range 1 + g.r.IntN(3) {
			n := g.r.IntN(4)
			c.Topics = append(c.Topics, metadata.NewTopic{Name: g.name(), ID: g.tid(), Partitions: int32(n - g.r.IntN(2)),
				Configs: g.configs(), Owners: g.owners(n)})
		}
		return c
	case 6:
		if g.r.IntN(2) == 0 {
			return &metadata.CreateTopics{Topics: []metadata.NewTopic{{Name: g.name(), ID: g.tid(), Partitions: 1, Owners: g.owners(1)}}}
		}
		c := &metadata.DeleteTopics{}
		for range g.r.IntN(3) {
			c.Names = append(c.Names, g.name())
		}
		return c
	case 7:
		c := &metadata.CreatePartitions{MaxPartitions: int32(g.r.IntN(12))}
		for range 1 + g.r.IntN(2) {
			add := g.r.IntN(3)
			c.Topics = append(c.Topics, metadata.NewPartitions{Name: g.name(), Count: int32(g.r.IntN(4) + add), Owners: g.owners(add)})
		}
		return c
	case 8:
		c := &metadata.AlterConfigs{}
		for range 1 + g.r.IntN(2) {
			ch := metadata.ConfigChange{Name: g.name(), Replace: g.r.IntN(3) == 0, Set: g.configs()}
			for range g.r.IntN(2) {
				ch.Delete = append(ch.Delete, g.key())
			}
			c.Topics = append(c.Topics, ch)
		}
		return c
	case 9:
		c := &metadata.Reassign{}
		for range 1 + g.r.IntN(3) {
			c.Moves = append(c.Moves, metadata.Move{Topic: g.name(), Partition: int32(g.r.IntN(4)), Owner: g.node()})
		}
		return c
	case 10:
		return &metadata.AllocateProducerIDs{Count: int32(g.r.IntN(2000)) - 300}
	case 11, 12:
		c := &metadata.CommitOffsets{Group: g.group()}
		for range g.r.IntN(4) {
			c.Offsets = append(c.Offsets, metadata.OffsetCommit{Topic: g.name(), Partition: int32(g.r.IntN(3)),
				Offset: g.r.Int64N(1000), LeaderEpoch: int32(g.r.IntN(3)) - 1, Metadata: g.key(), CommitTimeMs: g.r.Int64N(1e12),
				Writer: uint64(g.r.IntN(3)), Seq: uint64(g.r.IntN(4))})
		}
		return c
	default:
		switch g.r.IntN(4) {
		case 0:
			return &metadata.DeleteGroups{Groups: []string{g.group()}}
		case 1:
			return &metadata.GroupGenerations{Groups: []metadata.GroupGeneration{{Group: g.group(), Generation: int32(g.r.IntN(6))}}}
		case 2:
			return &metadata.GroupMembers{Group: g.group(), Generation: int32(g.r.IntN(7)) - 1, Record: []byte(g.key())[:g.r.IntN(3)]}
		}
		return &metadata.DeleteOffsets{Group: g.group(), Partitions: []metadata.TopicPartition{{Topic: g.name(), Partition: int32(g.r.IntN(3))}}}
	}
}

// entry returns the next entry's bytes: mostly commands, sometimes raft's empty entry or a
// damaged command.
func (g *gen) entry() []byte {
	switch g.r.IntN(40) {
	case 0:
		return nil
	case 1:
		b := metadata.EncodeCommand(g.command())
		b[g.r.IntN(len(b))] ^= byte(1 + g.r.IntN(255))
		return b
	case 2:
		b := metadata.EncodeCommand(g.command())
		return b[:g.r.IntN(len(b))]
	}
	return metadata.EncodeCommand(g.command())
}

func entries(seed uint64, n int) [][]byte {
	g := newGen(seed)
	out := make([][]byte, n)
	for i := range out {
		out[i] = g.entry()
	}
	return out
}

const randomEntries = 2000

// Two states fed the same entries give the same results and byte-identical snapshots.
func TestDeterminism(t *testing.T) {
	for seed := range uint64(5) {
		a, b := metadata.New(), metadata.New()
		seen := map[string]int{}
		for i, e := range entries(seed, randomEntries) {
			ra := a.Apply(uint64(i+1), e)
			tally(seen, ra)
			rb := b.Apply(uint64(i+1), bytes.Clone(e))
			if !sameResult(ra, rb) {
				t.Fatalf("seed %d entry %d: results differ: %+v vs %+v", seed, i, ra, rb)
			}
			if i%100 == 0 && !bytes.Equal(snap(t, a), snap(t, b)) {
				t.Fatalf("seed %d entry %d: snapshots differ", seed, i)
			}
		}
		if !bytes.Equal(snap(t, a), snap(t, b)) {
			t.Fatalf("seed %d: final snapshots differ", seed)
		}
		for _, k := range []string{"TopicsResult/code0", "UpdatePartitionResult/code0", "UpdatePartitionResult/code74", "UpdatePartitionResult/code39"} {
			if seen[k] == 0 {
				t.Errorf("seed %d: no %s: the random sequence tests too little", seed, k)
			}
		}
		// The sequence takes the success path and error paths of every command.
		for _, k := range []string{"InitClusterResult", "RegisterBrokerResult", "RemoveBrokerResult", "AllowBrokerResult",
			"TopicsResult", "ReassignResult", "AllocateProducerIDsResult", "CommitOffsetsResult", "DeleteGroupsResult",
			"DeleteOffsetsResult", "GroupGenerationsResult", "GroupMembersResult", "UpdatePartitionResult", "ACLsResult", "CodesResult", "SetRolesResult", "AlterReassignmentsResult",
			"CompleteReassignmentResult", "error"} {
			if seen[k+"/ok"] == 0 || seen[k+"/err"] == 0 {
				t.Errorf("seed %d: %s: %d successes, %d failures; the random sequence tests too little", seed, k, seen[k+"/ok"], seen[k+"/err"])
			}
		}
	}
}

// tally counts results by type and outcome ("error/ok" is an empty entry).
func tally(seen map[string]int, r any) {
	name, ok := "error", true
	switch r := r.(type) {
	case error:
		ok = false
	case *metadata.InitClusterResult:
		name, ok = "InitClusterResult", r.Code == 0
	case *metadata.RegisterBrokerResult:
		name, ok = "RegisterBrokerResult", r.Code == 0
	case *metadata.RemoveBrokerResult:
		name, ok = "RemoveBrokerResult", r.Code == 0
	case *metadata.AllowBrokerResult:
		name, ok = "AllowBrokerResult", r.Changed
	case *metadata.TopicsResult:
		name = "TopicsResult"
		for _, t := range r.Topics {
			seen[fmt.Sprintf("%s/code%d", name, t.Code)]++
			ok = ok && t.Code == 0
		}
	case *metadata.ReassignResult:
		name = "ReassignResult"
		for _, m := range r.Moves {
			ok = ok && m.Code == 0
		}
	case *metadata.AllocateProducerIDsResult:
		name, ok = "AllocateProducerIDsResult", r.Code == 0
	case *metadata.CommitOffsetsResult:
		name, ok = "CommitOffsetsResult", r.Code == 0
	case *metadata.DeleteGroupsResult:
		name = "DeleteGroupsResult"
		for _, g := range r.Groups {
			ok = ok && g.Code == 0
		}
	case *metadata.DeleteOffsetsResult:
		name, ok = "DeleteOffsetsResult", r.Code == 0
	case *metadata.GroupGenerationsResult:
		name, ok = "GroupGenerationsResult", r.Code == 0
	case *metadata.GroupMembersResult:
		name, ok = "GroupMembersResult", r.Code == 0 && !r.Stale
	case *metadata.UpdatePartitionResult:
		name, ok = "UpdatePartitionResult", r.Code == 0
		seen[fmt.Sprintf("%s/code%d", name, r.Code)]++
	case *metadata.ACLsResult:
		name = "ACLsResult"
		for _, c := range r.Changed {
			ok = ok && c
		}
	case *metadata.CodesResult:
		name = "CodesResult"
		for _, c := range r.Codes {
			ok = ok && c == 0
		}
	case *metadata.SetRolesResult:
		name, ok = "SetRolesResult", r.Code == 0
	case *metadata.AlterReassignmentsResult:
		name = "AlterReassignmentsResult"
		for _, m := range r.Partitions {
			ok = ok && m.Code == 0
		}
	case *metadata.CompleteReassignmentResult:
		name, ok = "CompleteReassignmentResult", r.Code == 0
	}
	if ok {
		seen[name+"/ok"]++
	} else {
		seen[name+"/err"]++
	}
}

func sameResult(a, b any) bool {
	ea, aok := a.(error)
	eb, bok := b.(error)
	if aok || bok {
		return aok && bok && ea.Error() == eb.Error()
	}
	return reflect.DeepEqual(a, b)
}

// Snapshot → Restore → Snapshot is the identity, and applying after a restore equals
// applying without it (results and final state), from many cut points.
func TestSnapshotRestore(t *testing.T) {
	for seed := range uint64(3) {
		es := entries(100+seed, randomEntries)
		for _, cut := range []int{0, 1, 17, 250, 999, randomEntries} {
			ref := metadata.New()
			for i, e := range es[:cut] {
				ref.Apply(uint64(i+1), e)
			}
			sn := snap(t, ref)
			restored := metadata.New()
			mustApply(t, restored, &metadata.InitCluster{ClusterID: "to be replaced"})
			if err := restored.Restore(sn); err != nil {
				t.Fatalf("seed %d cut %d: %v", seed, cut, err)
			}
			if !bytes.Equal(snap(t, restored), sn) {
				t.Fatalf("seed %d cut %d: snapshot of the restored state differs", seed, cut)
			}
			if restored.LastApplied() != uint64(cut) {
				t.Fatalf("restored last applied %d, want %d", restored.LastApplied(), cut)
			}
			for i, e := range es[cut:] {
				idx := uint64(cut + i + 1)
				if ra, rb := ref.Apply(idx, e), restored.Apply(idx, e); !sameResult(ra, rb) {
					t.Fatalf("seed %d cut %d entry %d: results differ after restore: %+v vs %+v", seed, cut, i, ra, rb)
				}
			}
			if !bytes.Equal(snap(t, ref), snap(t, restored)) {
				t.Fatalf("seed %d cut %d: final states differ", seed, cut)
			}
		}
	}
}

func TestRestoreRefusesBadSnapshots(t *testing.T) {
	s := metadata.New()
	for i, e := range entries(7, 500) {
		s.Apply(uint64(i+1), e)
	}
	good := snap(t, s)
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 0x40; return b }
	cases := map[string][]byte{
		"empty":         nil,
		"magic":         flip(0),
		"version":       flip(4),
		"checksum":      flip(6),
		"body bit":      flip(len(good) - 1),
		"truncated":     good[:len(good)-1],
		"header only":   good[:9],
		"trailing byte": append(bytes.Clone(good), 0),
	}
	// Valid checksums over bodies that break an invariant.
	n1, n2 := node(1), node(2)
	cases["duplicate kafka id"] = minimalWith(t, func(b []byte) []byte {
		b = appendSeq(b, 2)
		b = append(append(b, n1[:]...), 2) // zigzag(1)
		return append(append(b, n2[:]...), 2)
	})
	cases["kafka id not below next"] = minimalWith(t, func(b []byte) []byte {
		return append(append(appendSeq(b, 1), n1[:]...), 4) // zigzag(2), next is 1
	})
	for name, data := range cases {
		target := metadata.New()
		mustApply(t, target, &metadata.InitCluster{ClusterID: "keep"})
		before := snap(t, target)
		err := target.Restore(data)
		if !errors.Is(err, metadata.ErrBadSnapshot) {
			t.Errorf("%s: Restore = %v, want ErrBadSnapshot", name, err)
		}
		if !bytes.Equal(snap(t, target), before) {
			t.Errorf("%s: a refused Restore changed the state", name)
		}
	}
}

func appendSeq(b []byte, n int) []byte { return append(b, byte(n)) }

// minimalWith builds a checksummed snapshot whose kafka-id table is written by kafka and whose
// other tables are empty.
func minimalWith(t *testing.T, kafka func([]byte) []byte) []byte {
	t.Helper()
	base := minimalSnapshot(1, 0)
	body := bytes.Clone(base[9:])
	// body: applied(1) cluster("") pid(0) next kafka id(zigzag 1) | 5 empty counts
	head, tail := body[:4], body[5:]
	nb := kafka(bytes.Clone(head))
	nb = append(nb, tail...)
	return reseal(nb)
}
