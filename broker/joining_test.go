package broker

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker/replica"
)

// votersEngine records the bootstrap voters each group was added with.
type votersEngine struct {
	mu     sync.Mutex
	voters map[replica.GroupID][]uint64
	added  map[replica.GroupID]bool
}

func (e *votersEngine) AddGroup(id replica.GroupID, _ replica.Storage, _ replica.StateMachine, voters []uint64) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.voters[id], e.added[id] = slices.Clone(voters), true
	return nil
}

func (e *votersEngine) RemoveGroup(id replica.GroupID) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.added, id)
	return nil
}

func (e *votersEngine) Propose(context.Context, replica.GroupID, []byte) (*replica.Proposal, error) {
	return nil, &replica.NotLeaderError{}
}

func (e *votersEngine) Status(replica.GroupID) (replica.GroupStatus, bool) {
	return replica.GroupStatus{}, false
}

// A replica listed in TopicRecord.Joining (a reassignment adds it to a running group) starts
// its group with no bootstrap voters; the other replicas bootstrap with the replica list; a
// broker that leaves the list stops its group.
func TestJoiningReplicaStartsEmpty(t *testing.T) {
	rec := TopicRecord{Name: "r", ID: TopicID{7}, Partitions: 2, Replicas: [][]uint64{{1, 2, 3, 4}, {1, 2, 3}}, Joining: [][]uint64{{4}, nil}}
	gid := func(p int32) replica.GroupID { return replica.GroupID{Topic: rec.ID, Partition: p} }
	for _, c := range []struct {
		id    uint64
		want0 []uint64 // partition 0's bootstrap voters (nil: joins empty)
		runs1 bool
	}{
		{4, nil, false},
		{2, []uint64{1, 2, 3, 4}, true},
	} {
		e := newEnv(t, func(cfg *Config) {
			cfg.RaftStorage = openFakeRaftStorage
			cfg.ReplicaCheckInterval = -1
		})
		eng := &votersEngine{voters: map[replica.GroupID][]uint64{}, added: map[replica.GroupID]bool{}}
		if err := e.b.SetReplication(eng, c.id); err != nil {
			t.Fatal(err)
		}
		if err := e.b.SyncTopics([]TopicRecord{rec}); err != nil {
			t.Fatal(err)
		}
		if !eng.added[gid(0)] || !slices.Equal(eng.voters[gid(0)], c.want0) {
			t.Errorf("broker %d: partition 0 added %v with voters %v, want %v", c.id, eng.added[gid(0)], eng.voters[gid(0)], c.want0)
		}
		if eng.added[gid(1)] != c.runs1 {
			t.Errorf("broker %d: partition 1 runs %v, want %v", c.id, eng.added[gid(1)], c.runs1)
		}
		// The move completes without this broker: its group stops.
		done := rec
		done.Replicas, done.Joining = [][]uint64{{5, 6, 7}, {1, 2, 3}}, nil
		if err := e.b.SyncTopics([]TopicRecord{done}); err != nil {
			t.Fatal(err)
		}
		if eng.added[gid(0)] {
			t.Errorf("broker %d: partition 0's group still runs after the broker left its replicas", c.id)
		}
	}
}

func (e *votersEngine) Stats() replica.Stats { return replica.Stats{} }
