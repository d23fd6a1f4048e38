package broker

import (
	"errors"
	"fmt"
	"maps"
	"slices"
)

// SyncTopics makes the broker's topics those of want, the cluster's authoritative state (the
// metadata quorum's, package broker/controller): topics missing here are created with want's
// ids, partition counts grow, config overrides are replaced, and topics not in want (or known
// here under another id: a deleted and recreated topic) are deleted with their data. It
// writes nothing to the Registry: want is already durable where it came from. A topic whose
// configs do not validate, or whose partition count would shrink, is left as it is and
// reported in the error; the others are synced.
//
// TopicRecord.Replicas says which partitions are replicated: SyncTopics starts the raft
// group of each replicated partition this broker is a replica of (SetReplication) and stops
// those it no longer is a replica of. A partition's replica list is otherwise taken as it
// is: membership changes of a running group are the controller's (raft conf changes). A
// replica in TopicRecord.Joining starts its group empty, waiting for the leader to add it
// (a replica reassignment); the others bootstrap a new group with Replicas as its voters.
func (b *Broker) SyncTopics(want []TopicRecord) error {
	return b.SyncTopicsFrom(func() []TopicRecord { return want })
}

// SyncTopicsFrom is SyncTopics with the wanted state read by want once the broker's admin
// lock is held (want is not called if the broker is closed). A caller whose state changes
// concurrently with the broker's own admin ops (the metadata quorum's leader, where
// DeleteTopics and CreateTopics store their change in the quorum and then apply it here)
// must read it there: a state read before an admin op's change and applied after it would
// undo the change (a deleted topic created again with an empty log: a replicated
// partition's group bootstraps again on this replica, whose leader still counts the entries
// the old log acknowledged, and etcd raft panics on the next heartbeat).
func (b *Broker) SyncTopicsFrom(want func() []TopicRecord) error {
	b.adminMu.Lock()
	defer b.adminMu.Unlock()
	if b.closed.Load() {
		return ErrClosed
	}
	return b.syncTopicsLocked(want())
}

// syncTopicsLocked is SyncTopics; callers hold adminMu.
func (b *Broker) syncTopicsLocked(want []TopicRecord) error {
	cur := *b.topics.Load()
	next := maps.Clone(cur)
	var errs []error
	var gone, created []*topic
	wanted := make(map[string]bool, len(want))
	type grow struct {
		t         *topic
		have, max int32
	}
	var grows []grow
	type alter struct {
		t   *topic
		cfg map[string]string
	}
	var alters []alter
	for _, rec := range want {
		wanted[rec.Name] = true
		cfgs, err := validateConfigs(rec.Configs)
		if err != nil {
			errs = append(errs, fmt.Errorf("topic %q: %w", rec.Name, err))
			continue
		}
		t := cur[rec.Name]
		if t != nil && t.id != rec.ID {
			gone = append(gone, t)
			delete(next, rec.Name)
			t = nil
		}
		if t == nil {
			nt := b.newTopic(rec.Name, rec.ID, cfgs)
			nt.setReplicas(rec.Replicas)
			nt.setJoining(rec.Joining)
			if err := b.fs.MkdirAll(nt.dir, 0o755); err != nil {
				errs = append(errs, fmt.Errorf("topic %q: %w", rec.Name, err))
				continue
			}
			parts := b.newPartitions(nt, 0, rec.Partitions, b.partitionsOnDisk(nt))
			nt.parts.Store(&parts)
			next[rec.Name] = nt
			created = append(created, nt)
			continue
		}
		have := int32(len(*t.parts.Load()))
		switch {
		case rec.Partitions > have:
			grows = append(grows, grow{t, have, rec.Partitions})
		case rec.Partitions < have:
			errs = append(errs, fmt.Errorf("topic %q: %d partitions here, %d wanted: partitions never shrink", rec.Name, have, rec.Partitions))
		}
		if !maps.Equal(t.cfg.Load().overrides, cfgs) {
			alters = append(alters, alter{t, cfgs})
		}
		t.setReplicas(rec.Replicas)
		t.setJoining(rec.Joining)
	}
	for name, t := range cur {
		if !wanted[name] && next[name] == t {
			gone = append(gone, t)
			delete(next, name)
		}
	}
	if len(created) > 0 {
		// The new topic directories' entries must be durable before a partition directory
		// appears in them (as in CreateTopics).
		if err := b.fs.SyncDir(b.topicsDir); err != nil {
			for _, t := range created {
				delete(next, t.name)
				_ = b.fs.RemoveAll(t.dir)
			}
			errs = append(errs, fmt.Errorf("sync topics dir: %w", err))
			created = nil
		}
	}
	b.topics.Store(&next)
	for _, t := range created {
		b.partitions.Add(int64(len(*t.parts.Load())))
		b.log.Info("broker: topic from the cluster", "topic", t.name, "partitions", len(*t.parts.Load()))
	}
	for _, g := range grows {
		parts := b.newPartitions(g.t, g.have, g.max, b.partitionsOnDisk(g.t))
		all := append(slices.Clone(*g.t.parts.Load()), parts...)
		g.t.parts.Store(&all)
		b.partitions.Add(int64(g.max - g.have))
		b.log.Info("broker: partitions from the cluster", "topic", g.t.name, "partitions", g.max)
	}
	for _, a := range alters {
		old := a.t.cfg.Load()
		cfg := resolveConfig(a.cfg, b.cfg.TopicDefaults)
		a.t.cfg.Store(cfg)
		if cfg.segmentBytes != old.segmentBytes {
			b.reopenLocked(a.t)
		}
	}
	if len(gone) > 0 {
		b.removeTopicsLocked(gone) // counts their partitions out
	}
	if err := b.syncGroupsLocked(b.sortedTopics()); err != nil { // replicated.go
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
