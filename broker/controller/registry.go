package controller

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Registry is the broker.Registry of a broker on the metadata quorum: Load reads the
// replica's applied topics, and Store proposes the difference between the broker's new state
// and the state it last had (DeleteTopics, CreateTopics with the broker's new topic ids and
// owners chosen by the controller, CreatePartitions, AlterConfigs) and returns once they are
// applied on this node. So the broker's own admin code (Kafka's validation, error codes,
// configs) decides, and the quorum is where its decisions are durable.
//
// Store runs only on the leader, inside the controller's admin ops (which hold the
// controller's admin lock and synced the broker after a ReadBarrier first); on any other
// node it fails. A failed Store is an ordinary error (the broker answers the op with a
// storage error and keeps running): the quorum's state is the truth, and SyncTopics brings
// the broker back to it.
type Registry struct {
	r       Replica
	timeout time.Duration

	mu    sync.Mutex
	base  map[string]broker.TopicRecord // the broker's topics as last synced or stored; guarded by mu
	place placer                        // owners (and replicas) of new partitions; guarded by mu
}

// NewRegistry returns the registry for a broker whose replica is r. Proposals made by Store
// give up after timeout (0: 10 s).
func NewRegistry(r Replica, timeout time.Duration) *Registry {
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Registry{r: r, timeout: timeout, base: map[string]broker.TopicRecord{}}
}

// Load implements broker.Registry: the replica's applied topics (never nil, so the broker
// never makes a cluster id of its own).
func (g *Registry) Load() (*broker.RegistryState, error) {
	st := &broker.RegistryState{ClusterID: g.r.ClusterID(), Topics: records(g.r.Topics())}
	g.synced(st.Topics)
	return st, nil
}

// synced records the topics the broker now has.
func (g *Registry) synced(recs []broker.TopicRecord) {
	m := make(map[string]broker.TopicRecord, len(recs))
	for _, r := range recs {
		m[r.Name] = r
	}
	g.mu.Lock()
	g.base = m
	g.mu.Unlock()
}

// placer returns the owners of partitions [from, to) of a topic and, for a replicated topic,
// their replica lists.
type placer func(topic string, from, to int32) ([]key.PublicKey, [][]uint64)

func (g *Registry) setPlacer(place placer) {
	g.mu.Lock()
	g.place = place
	g.mu.Unlock()
}

// Store implements broker.Registry.
func (g *Registry) Store(st *broker.RegistryState) error {
	g.mu.Lock()
	base := maps.Clone(g.base)
	place := g.place
	g.mu.Unlock()
	if place == nil {
		return fmt.Errorf("controller: registry: no controller attached")
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.timeout)
	defer cancel()
	next := make(map[string]broker.TopicRecord, len(st.Topics))
	for _, t := range st.Topics {
		next[t.Name] = t
	}
	var del []string
	for _, name := range slices.Sorted(maps.Keys(base)) {
		if n, ok := next[name]; !ok || n.ID != base[name].ID {
			del = append(del, name)
		}
	}
	var create []Topic
	var grow []CreatePartitions
	var alter []AlterConfigs
	for _, t := range st.Topics {
		old, ok := base[t.Name]
		if !ok || old.ID != t.ID {
			owners, reps := place(t.Name, 0, t.Partitions)
			create = append(create, Topic{Name: t.Name, ID: t.ID, Partitions: t.Partitions, Configs: t.Configs, Owners: owners, Replicas: reps})
			continue
		}
		if t.Partitions > old.Partitions {
			owners, reps := place(t.Name, old.Partitions, t.Partitions)
			grow = append(grow, CreatePartitions{Name: t.Name, Count: t.Partitions, Owners: owners, Replicas: reps})
		}
		if !maps.Equal(old.Configs, t.Configs) {
			a := AlterConfigs{Name: t.Name, Set: map[string]string{}}
			for k, v := range t.Configs {
				if ov, ok := old.Configs[k]; !ok || ov != v {
					a.Set[k] = v
				}
			}
			for k := range old.Configs {
				if _, ok := t.Configs[k]; !ok {
					a.Delete = append(a.Delete, k)
				}
			}
			slices.Sort(a.Delete)
			alter = append(alter, a)
		}
	}
	if len(del) > 0 {
		res, err := g.r.Do(ctx, DeleteTopics{Names: del})
		if err := firstCode("delete topics", res, err); err != nil {
			return err
		}
	}
	if len(create) > 0 {
		res, err := g.r.Do(ctx, CreateTopics{Topics: create})
		if err := firstCode("create topics", res, err); err != nil {
			return err
		}
	}
	for _, c := range grow {
		res, err := g.r.Do(ctx, c)
		if err := firstCode("create partitions", res, err); err != nil {
			return err
		}
	}
	for _, a := range alter {
		res, err := g.r.Do(ctx, a)
		if err := firstCode("alter configs", res, err); err != nil {
			return err
		}
	}
	g.synced(st.Topics)
	return nil
}

// firstCode turns a proposal's outcome into an error: a Go error, or the first non-zero
// Kafka code of its result.
func firstCode(what string, res any, err error) error {
	if err != nil {
		return fmt.Errorf("controller: %s: %w", what, err)
	}
	var codes []int16
	switch r := res.(type) {
	case int16:
		codes = []int16{r}
	case []int16:
		codes = r
	}
	for _, c := range codes {
		if c != 0 {
			return fmt.Errorf("controller: %s: the metadata state refused it (Kafka error %d)", what, c)
		}
	}
	return nil
}

// records converts the metadata state's topics for the broker, with the replica lists of
// replicated topics (the broker runs a raft group for each partition it replicates).
func records(ts []Topic) []broker.TopicRecord {
	out := make([]broker.TopicRecord, len(ts))
	for i, t := range ts {
		out[i] = broker.TopicRecord{Name: t.Name, ID: t.ID, Partitions: t.Partitions, Configs: t.Configs}
		out[i].Replicas = t.Replicas
		// During a replica reassignment the partition's raft group runs on its replicas and
		// the ones the move added, which join the running group (never bootstrapping it).
		for p := range t.Replicas {
			if m := t.move(p); len(m.Adding) > 0 {
				if out[i].Joining == nil {
					out[i].Replicas = slices.Clone(t.Replicas)
					out[i].Joining = make([][]uint64, len(t.Replicas))
				}
				out[i].Replicas[p] = t.members(p)
				out[i].Joining[p] = slices.Clone(m.Adding)
			}
		}
	}
	return out
}
