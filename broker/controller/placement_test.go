package controller

import (
	"fmt"
	"slices"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/key"
)

// cands makes n candidates with raft ids 1..n and the given racks (cycled; none if empty),
// sorted by NodeId as liveCandidates returns them.
func cands(n int, racks ...string) []candidate {
	out := make([]candidate, n)
	for i := range out {
		out[i] = candidate{raftID: uint64(i + 1), node: key.GenerateSecretKey().Public()}
		if len(racks) > 0 {
			out[i].rack = racks[i%len(racks)]
		}
	}
	slices.SortFunc(out, func(a, b candidate) int {
		switch as, bs := a.node.String(), b.node.String(); {
		case as < bs:
			return -1
		case as > bs:
			return 1
		}
		return 0
	})
	return out
}

func byRaft(cs []candidate) map[uint64]candidate {
	m := map[uint64]candidate{}
	for _, c := range cs {
		m[c.raftID] = c
	}
	return m
}

// RF 1 places exactly as before replication: round robin from the topic's hash.
func TestPlaceSingleOwner(t *testing.T) {
	cs := cands(3)
	owners, reps := placeReplicas("orders", cs, 2, 8, 1)
	if reps != nil {
		t.Fatalf("replicas for RF 1: %v", reps)
	}
	first, _ := placeReplicas("orders", cs, 0, 8, 1)
	if !slices.Equal(owners, first[2:]) {
		t.Errorf("partitions 2..8 placed differently when placed alone: %v vs %v", owners, first[2:])
	}
	seen := map[key.PublicKey]int{}
	for _, o := range first[:6] {
		seen[o]++
	}
	for _, c := range cs {
		if seen[c.node] != 2 {
			t.Errorf("broker %d owns %d of 6 partitions, want 2", c.raftID, seen[c.node])
		}
	}
}

// RF 3 over n brokers: every partition has rf distinct replicas, its owner is its first one,
// leaders are spread evenly, and every broker holds replicas.
func TestPlaceReplicasSpread(t *testing.T) {
	for _, n := range []int{3, 4, 5, 7} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			cs := cands(n)
			br := byRaft(cs)
			parts := int32(4 * n)
			owners, reps := placeReplicas("t", cs, 0, parts, 3)
			leads, holds := map[uint64]int{}, map[uint64]int{}
			followers := map[string]bool{}
			for p, r := range reps {
				if len(r) != 3 || r[0] == r[1] || r[1] == r[2] || r[0] == r[2] {
					t.Fatalf("partition %d: replicas %v", p, r)
				}
				if br[r[0]].node != owners[p] {
					t.Errorf("partition %d: owner is not the first replica", p)
				}
				leads[r[0]]++
				for _, id := range r {
					holds[id]++
				}
				followers[fmt.Sprint(r)] = true
			}
			for _, c := range cs {
				if leads[c.raftID] != 4 {
					t.Errorf("broker %d leads %d partitions, want 4", c.raftID, leads[c.raftID])
				}
				if h := holds[c.raftID]; h < 8 || h > 16 {
					t.Errorf("broker %d holds %d replicas of %d partitions ×3 over %d brokers", c.raftID, h, parts, n)
				}
			}
			if n > 3 && len(followers) < n+1 {
				t.Errorf("only %d distinct replica lists: followers do not vary", len(followers))
			}
		})
	}
	// RF above the broker count is capped (the caller refuses it first).
	if _, reps := placeReplicas("t", cands(2), 0, 1, 3); len(reps[0]) != 2 {
		t.Errorf("RF 3 on 2 brokers: %v", reps)
	}
}

// With rack labels the replicas of a partition are on distinct racks whenever there are as
// many racks as replicas, and leaders still spread.
func TestPlaceReplicasRacks(t *testing.T) {
	for _, c := range []struct {
		n     int
		racks []string
		rf    int
	}{
		{6, []string{"a", "b", "c"}, 3},
		{4, []string{"a", "b"}, 2},
		{5, []string{"a", "b", "c"}, 3},
		{4, []string{"a", "a", "a", "b"}, 2}, // one broker on b: it is in every partition
		{6, []string{"x", "y", "z"}, 2},
	} {
		t.Run(fmt.Sprint(c.n, c.racks, c.rf), func(t *testing.T) {
			cs := cands(c.n, c.racks...)
			br := byRaft(cs)
			parts := int32(3 * c.n)
			_, reps := placeReplicas("events", cs, 0, parts, c.rf)
			leads := map[uint64]int{}
			for p, r := range reps {
				racks := map[string]bool{}
				for _, id := range r {
					racks[br[id].rack] = true
				}
				if len(r) != c.rf || len(racks) != c.rf {
					t.Errorf("partition %d: replicas %v on racks %v, want %d distinct", p, r, racks, c.rf)
				}
				leads[r[0]]++
			}
			for _, b := range cs {
				if leads[b.raftID] != 3 {
					t.Errorf("broker %d (rack %s) leads %d, want 3", b.raftID, b.rack, leads[b.raftID])
				}
			}
		})
	}
}

func TestCheckMinISR(t *testing.T) {
	for _, c := range []struct {
		v  string
		rf int
		ok bool
	}{{"1", 1, true}, {"2", 3, true}, {"3", 3, true}, {"4", 3, false}, {"0", 3, false}, {"x", 3, false}, {"-1", 1, false}} {
		if got := checkMinISR(map[string]string{minISRConfig: c.v}, c.rf) == ""; got != c.ok {
			t.Errorf("min.insync.replicas=%s rf %d: accepted %v", c.v, c.rf, got)
		}
	}
	if checkMinISR(nil, 3) != "" {
		t.Error("no min.insync.replicas refused")
	}
}

func TestDefaultRF(t *testing.T) {
	c := &Controller{}
	for live, want := range map[int]int{1: 1, 2: 2, 3: 3, 5: 3} {
		if got := c.defaultRF(live); got != want {
			t.Errorf("%d live: default RF %d, want %d", live, got, want)
		}
	}
	c.cfg.DefaultReplicationFactor = 2
	if got := c.defaultRF(5); got != 2 {
		t.Errorf("configured 2: %d", got)
	}
}
