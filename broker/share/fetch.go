package share

import (
	"slices"
	"strings"
	"time"
)

// AckBatch acknowledges offsets First..Last (inclusive): Types holds one type for the whole
// range or one per offset.
type AckBatch struct {
	First, Last int64
	Types       []int8
}

// PartAcks are the acknowledgements of one partition.
type PartAcks struct {
	TP      TP
	Batches []AckBatch
}

// AcquiredRun is a run of acquired offsets with their delivery count.
type AcquiredRun struct {
	First, Last int64
	Count       int16
}

// Session opens, checks or closes a member's share session (ShareFetch and
// ShareAcknowledge). epoch 0 opens a new one with parts (a session with acknowledgements is
// INVALID_REQUEST; opening when MaxSessions are open is SHARE_SESSION_LIMIT_REACHED); -1
// closes it, releasing the records the member holds; anything else must equal the
// session's epoch (INVALID_SHARE_SESSION_EPOCH; SHARE_SESSION_NOT_FOUND without one), adds
// parts and drops forgotten. On success the session's next epoch is returned and the
// session's partitions are listed.
func (m *Machine) Session(now time.Time, groupName, memberID string, epoch int32, parts, forgotten []TP, acks bool) (int16, []TP) {
	if groupName == "" || memberID == "" {
		return ErrInvalidRequest, nil
	}
	key := sessionKey{groupName, memberID}
	switch {
	case epoch == 0:
		if acks {
			return ErrInvalidRequest, nil
		}
		delete(m.sessions, key)
		if len(m.sessions) >= m.cfg.MaxSessions {
			return ErrShareSessionLimit, nil
		}
		if g := m.groups[groupName]; g != nil {
			// A new session replaces the old one: what the member held is released.
			m.releaseMember(now, g, memberID)
		}
		s := &session{epoch: 1, parts: map[TP]bool{}}
		for _, tp := range parts {
			s.parts[tp] = true
		}
		m.sessions[key] = s
		return errNone, sortedTPs(s.parts)
	case epoch == -1:
		if _, ok := m.sessions[key]; !ok {
			return ErrShareSessionNotFound, nil
		}
		return errNone, nil
	case epoch < -1:
		return ErrInvalidShareSessionEpoch, nil
	}
	s := m.sessions[key]
	if s == nil {
		return ErrShareSessionNotFound, nil
	}
	if s.epoch != epoch {
		return ErrInvalidShareSessionEpoch, nil
	}
	for _, tp := range parts {
		s.parts[tp] = true
	}
	for _, tp := range forgotten {
		delete(s.parts, tp)
	}
	s.epoch++
	if s.epoch < 1 {
		s.epoch = 1
	}
	return errNone, sortedTPs(s.parts)
}

// CloseSession ends a member's share session (epoch -1, after its acknowledgements were
// applied) and releases the records the member still holds.
func (m *Machine) CloseSession(now time.Time, groupName, memberID string) {
	delete(m.sessions, sessionKey{groupName, memberID})
	if g := m.groups[groupName]; g != nil {
		m.releaseMember(now, g, memberID)
	}
}

func sortedTPs(set map[TP]bool) []TP {
	out := make([]TP, 0, len(set))
	for tp := range set {
		out = append(out, tp)
	}
	slices.SortFunc(out, sortedCmp)
	return out
}

// Bounds are a partition's log start offset and high watermark, as the owner reads them.
type Bounds struct{ LogStart, HighWatermark int64 }

// part returns the share partition, initialising its start offset from the group's
// share.auto.offset.reset (latest: the high watermark, earliest: the log start) the first
// time, and moving it up to the log start when records below it were deleted.
func (m *Machine) part(g *group, tp TP, b Bounds) *partition {
	p := g.parts[tp]
	if p == nil {
		start := b.HighWatermark
		reset := m.cfg.AutoOffsetReset
		if v, ok := g.configs["share.auto.offset.reset"]; ok {
			reset = v
		}
		if reset == "earliest" {
			start = b.LogStart
		}
		p = &partition{start: start}
		g.parts[tp] = p
		m.dirty[partKey{g.name, tp}] = true
	}
	if b.LogStart > p.start {
		drop := b.LogStart - p.start
		if drop >= int64(len(p.in)) {
			p.in = p.in[:0]
		} else {
			p.in = append(p.in[:0], p.in[drop:]...)
		}
		p.start = b.LogStart
		m.dirty[partKey{g.name, tp}] = true
	}
	return p
}

// FetchOffset is where the owner reads a partition for a member: the first available
// offset of the in-flight window, else the end of the window. ok is false when nothing can
// be acquired (the window is at its record-lock limit and holds no available record, or the
// offset is at the high watermark).
func (m *Machine) FetchOffset(groupName string, tp TP, b Bounds) (int64, bool) {
	g := m.groups[groupName]
	if g == nil {
		return 0, false
	}
	p := m.part(g, tp, b)
	for i := range p.in {
		if p.in[i].state == Available {
			return p.start + int64(i), true
		}
	}
	end := p.start + int64(len(p.in))
	return end, len(p.in) < m.cfg.MaxRecordLocks && end < b.HighWatermark
}

// Span is the offsets First..Last (inclusive) of one record batch the owner read.
type Span struct{ First, Last int64 }

// Acquire locks available records of the batches the owner read (spans, in offset order,
// never past the high watermark or, for read_committed, the last stable offset) for a
// member, at most maxRecords (≤ 0: no limit), never growing the window past
// MaxRecordLocks. A record at the delivery limit is archived instead. Offsets outside every
// batch (removed by compaction, or an aborted transaction's batches left out of a
// read_committed read) are never records: when the window holds nothing unfinished, SPSO
// jumps over them; otherwise acquisition stops before them until SPSO catches up. Offsets
// inside a batch that holds no record there (control records, records compacted out of a
// batch) are acquired with the rest, and the client acknowledges them as gaps. The
// returned runs are what ShareFetch answers as acquired records.
func (m *Machine) Acquire(now time.Time, groupName, memberID string, tp TP, spans []Span, maxRecords int) []AcquiredRun {
	g := m.groups[groupName]
	if g == nil || g.parts[tp] == nil {
		return nil
	}
	p := g.parts[tp]
	lock := now.Add(m.groupDuration(g, "share.record.lock.duration.ms", m.cfg.LockDuration))
	limit := m.limit(g)
	var out []AcquiredRun
	n := 0
	changed := false
spans:
	for _, sp := range spans {
		if sp.Last < p.start || sp.Last < sp.First {
			continue
		}
		if end := p.start + int64(len(p.in)); sp.First > end {
			if len(p.in) > 0 {
				break // a gap after unfinished records: wait for SPSO
			}
			p.start, changed = sp.First, true // nothing unfinished before the gap: skip it
		}
		for off := max(sp.First, p.start); off <= sp.Last; off++ {
			if maxRecords > 0 && n >= maxRecords {
				break spans
			}
			i := int(off - p.start)
			if i == len(p.in) {
				if len(p.in) >= m.cfg.MaxRecordLocks {
					break spans
				}
				p.in = append(p.in, rec{})
			}
			r := &p.in[i]
			if r.state != Available {
				continue
			}
			if r.count >= limit {
				r.state, changed = Archived, true
				continue
			}
			r.state, r.member, r.deadline = Acquired, memberID, lock
			r.count++
			n++
			if k := len(out); k > 0 && out[k-1].Last == off-1 && out[k-1].Count == r.count {
				out[k-1].Last = off
				continue
			}
			out = append(out, AcquiredRun{First: off, Last: off, Count: r.count})
		}
	}
	if changed {
		m.advance(g, p)
		m.dirty[partKey{groupName, tp}] = true
	}
	return out
}

// Acknowledge applies one partition's acknowledgements from a member: every batch is
// checked first (INVALID_REQUEST for malformed batches or offsets past the window,
// INVALID_RECORD_STATE for a record the member does not hold) and then all are applied, or
// none. Accept acknowledges, Release makes records available again (archived at the delivery
// limit), Reject and Gap archive, Renew extends the lock (renew says whether the request
// allows Renew).
func (m *Machine) Acknowledge(now time.Time, groupName, memberID string, pa PartAcks, renew bool) int16 {
	g := m.groups[groupName]
	if g == nil {
		return ErrInvalidRecordState
	}
	p := g.parts[pa.TP]
	if p == nil {
		return ErrInvalidRecordState
	}
	maxType := AckReject
	if renew {
		maxType = AckRenew
	}
	prev := int64(-1)
	end := p.start + int64(len(p.in))
	for _, b := range pa.Batches {
		if b.First > b.Last || b.First <= prev || len(b.Types) == 0 || (len(b.Types) > 1 && int64(len(b.Types)) != b.Last-b.First+1) {
			return ErrInvalidRequest
		}
		for _, t := range b.Types {
			if t < 0 || t > maxType {
				return ErrInvalidRequest
			}
		}
		prev = b.Last
		if b.Last >= end {
			return ErrInvalidRequest
		}
		for off := max(b.First, p.start); off <= b.Last; off++ {
			r := &p.in[off-p.start]
			if r.state != Acquired || r.member != memberID {
				return ErrInvalidRecordState
			}
		}
	}
	lock := now.Add(m.groupDuration(g, "share.record.lock.duration.ms", m.cfg.LockDuration))
	for _, b := range pa.Batches {
		for off := max(b.First, p.start); off <= b.Last; off++ {
			t := b.Types[0]
			if len(b.Types) > 1 {
				t = b.Types[off-b.First]
			}
			r := &p.in[off-p.start]
			switch t {
			case AckAccept:
				r.state, r.member, r.deadline = Acknowledged, "", time.Time{}
			case AckRelease:
				m.release(g, r)
			case AckGap, AckReject:
				r.state, r.member, r.deadline = Archived, "", time.Time{}
			case AckRenew:
				r.deadline = lock
			}
		}
	}
	m.advance(g, p)
	m.dirty[partKey{groupName, pa.TP}] = true
	return errNone
}

// StartOffset is a share partition's start offset (SPSO) and whether it has state.
func (m *Machine) StartOffset(groupName string, tp TP) (int64, bool) {
	g := m.groups[groupName]
	if g == nil || g.parts[tp] == nil {
		return -1, false
	}
	return g.parts[tp].start, true
}

// Partitions lists a group's share partitions with state.
func (m *Machine) Partitions(groupName string) []TP {
	g := m.groups[groupName]
	if g == nil {
		return nil
	}
	set := map[TP]bool{}
	for tp := range g.parts {
		set[tp] = true
	}
	return sortedTPs(set)
}

// AlterOffset sets a share partition's start offset (AlterShareGroupOffsets): allowed only
// while the group has no members (NON_EMPTY_GROUP); the in-flight state is dropped and the
// state epoch bumped. A group that does not exist yet is created.
func (m *Machine) AlterOffset(groupName string, tp TP, start int64) int16 {
	g := m.groups[groupName]
	if g != nil && len(g.members) > 0 {
		return ErrNonEmptyGroup
	}
	g = m.groupOrNew(groupName)
	p := g.parts[tp]
	if p == nil {
		p = &partition{}
		g.parts[tp] = p
	}
	p.start, p.in = start, nil
	p.stateEpoch++
	m.dirty[partKey{groupName, tp}] = true
	return errNone
}

// DeleteOffsets forgets a topic's share partitions (DeleteShareGroupOffsets): allowed only
// while the group has no members (NON_EMPTY_GROUP); GROUP_ID_NOT_FOUND without the group.
func (m *Machine) DeleteOffsets(groupName, topic string) int16 {
	g := m.groups[groupName]
	if g == nil {
		return ErrGroupIDNotFound
	}
	if len(g.members) > 0 {
		return ErrNonEmptyGroup
	}
	for tp := range g.parts {
		if tp.Topic == topic {
			delete(g.parts, tp)
			m.out = append(m.out, &Record{Kind: KindDeletePartition, Group: groupName, Topic: tp.Topic, Partition: tp.Partition})
			delete(m.dirty, partKey{groupName, tp})
		}
	}
	return errNone
}

// DeleteGroup deletes an empty share group and its state (NON_EMPTY_GROUP with members,
// GROUP_ID_NOT_FOUND without the group).
func (m *Machine) DeleteGroup(groupName string) int16 {
	g := m.groups[groupName]
	if g == nil {
		return ErrGroupIDNotFound
	}
	if len(g.members) > 0 {
		return ErrNonEmptyGroup
	}
	delete(m.groups, groupName)
	for k := range m.dirty {
		if k.group == groupName {
			delete(m.dirty, k)
		}
	}
	m.out = append(m.out, &Record{Kind: KindDeleteGroup, Group: groupName})
	return errNone
}

// SetConfig sets (value non-nil) or removes a group config. Read are
// share.auto.offset.reset, share.record.lock.duration.ms, share.delivery.count.limit,
// share.session.timeout.ms, share.heartbeat.interval.ms and share.isolation.level. The group is created if needed,
// as Kafka does for group configs.
func (m *Machine) SetConfig(groupName, name string, value *string) {
	g := m.groupOrNew(groupName)
	if value == nil {
		delete(g.configs, name)
	} else {
		g.configs[name] = *value
	}
	m.out = append(m.out, m.configRecord(g))
}

// Configs returns a group's configs (nil without the group).
func (m *Machine) Configs(groupName string) map[string]string {
	g := m.groups[groupName]
	if g == nil {
		return nil
	}
	out := make(map[string]string, len(g.configs))
	for k, v := range g.configs {
		out[k] = v
	}
	return out
}

// Drain returns the records that make the changes since the last Drain durable: a
// snapshot of every share partition whose state changed, after the group records.
func (m *Machine) Drain() []*Record {
	out := m.out
	m.out = nil
	keys := make([]partKey, 0, len(m.dirty))
	for k := range m.dirty {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b partKey) int {
		if a.group != b.group {
			return strings.Compare(a.group, b.group)
		}
		return sortedCmp(a.tp, b.tp)
	})
	for _, k := range keys {
		if g := m.groups[k.group]; g != nil {
			if p := g.parts[k.tp]; p != nil {
				out = append(out, snapshot(k.group, k.tp, p))
			}
		}
		delete(m.dirty, k)
	}
	return out
}

func sortedCmp(a, b TP) int {
	if a.Topic != b.Topic {
		return strings.Compare(a.Topic, b.Topic)
	}
	return int(a.Partition) - int(b.Partition)
}

// State returns every record needed to rebuild the durable state (compaction).
func (m *Machine) State() []*Record {
	var out []*Record
	for _, name := range slices.Sorted(mapsKeys(m.groups)) {
		g := m.groups[name]
		out = append(out, &Record{Kind: KindGroup, Group: name})
		if len(g.configs) > 0 {
			out = append(out, m.configRecord(g))
		}
		tps := make([]TP, 0, len(g.parts))
		for tp := range g.parts {
			tps = append(tps, tp)
		}
		slices.SortFunc(tps, sortedCmp)
		for _, tp := range tps {
			out = append(out, snapshot(name, tp, g.parts[tp]))
		}
	}
	return out
}

func (m *Machine) configRecord(g *group) *Record {
	r := &Record{Kind: KindConfig, Group: g.name}
	for _, k := range slices.Sorted(mapsKeys(g.configs)) {
		r.Configs = append(r.Configs, [2]string{k, g.configs[k]})
	}
	return r
}

// snapshot is a share partition's durable state: SPSO and the runs of the window. Acquired
// records are written as Available with their delivery count: after a restart they are
// delivered again (the lock does not survive).
func snapshot(groupName string, tp TP, p *partition) *Record {
	r := &Record{Kind: KindPartition, Group: groupName, Topic: tp.Topic, Partition: tp.Partition, StateEpoch: p.stateEpoch, Start: p.start}
	for i, x := range p.in {
		st := x.state
		if st == Acquired {
			st = Available
		}
		off := p.start + int64(i)
		if k := len(r.Runs); k > 0 && r.Runs[k-1].Last == off-1 && r.Runs[k-1].State == st && r.Runs[k-1].Count == x.count {
			r.Runs[k-1].Last = off
			continue
		}
		r.Runs = append(r.Runs, Run{First: off, Last: off, State: st, Count: x.count})
	}
	return r
}

// Apply replays a durable record (at start).
func (m *Machine) Apply(r *Record) {
	switch r.Kind {
	case KindGroup:
		m.groupOrNew(r.Group)
	case KindDeleteGroup:
		delete(m.groups, r.Group)
	case KindConfig:
		g := m.groupOrNew(r.Group)
		g.configs = map[string]string{}
		for _, kv := range r.Configs {
			g.configs[kv[0]] = kv[1]
		}
	case KindPartition:
		g := m.groupOrNew(r.Group)
		p := &partition{start: r.Start, stateEpoch: r.StateEpoch}
		for _, run := range r.Runs {
			if run.First < p.start || run.Last < run.First {
				continue
			}
			for off := run.First; off <= run.Last; off++ {
				for p.start+int64(len(p.in)) < off { // a hole: never acquired
					p.in = append(p.in, rec{})
				}
				st := run.State
				if st == Acquired {
					st = Available
				}
				p.in = append(p.in, rec{state: st, count: run.Count})
			}
		}
		m.advance(g, p)
		g.parts[TP{r.Topic, r.Partition}] = p
	case KindDeletePartition:
		if g := m.groups[r.Group]; g != nil {
			delete(g.parts, TP{r.Topic, r.Partition})
		}
	}
	m.out = nil
	clear(m.dirty)
	clear(m.freed)
}
