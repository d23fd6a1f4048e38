package raftlog

import (
	"fmt"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// state is the raft state a Log serves: what its files replay to. It is never modified in
// place once published (apply returns a new state that may share the entries' backing
// array past the old length, as raft.MemoryStorage does), so readers may keep slices of it.
type state struct {
	hs *raftpb.HardState // nil: none saved yet
	// ents[0] is a dummy entry carrying the index and term of the entry before the first one
	// held (the compaction point); ents[i] has index ents[0].Index + i.
	ents []*raftpb.Entry
	live int64            // encoded bytes of ents[1:] (sizes the segment base record)
	snap *raftpb.Snapshot // never nil; index 0: none
	// mark is the snapshot a Save last reset the log to (zero: none). Open compares it with
	// the snapshot file to tell whether that reset became durable (see doc.go, Recovery).
	mark point
}

// point names an entry: its index and term.
type point struct{ index, term uint64 }

func newState() state {
	return state{ents: []*raftpb.Entry{dummy(0, 0)}, snap: raftpb.EnsureSnapshot(nil)}
}

func dummy(index, term uint64) *raftpb.Entry {
	return &raftpb.Entry{Index: new(index), Term: new(term)}
}

func (s *state) offset() uint64    { return s.ents[0].GetIndex() }
func (s *state) lastIndex() uint64 { return s.offset() + uint64(len(s.ents)) - 1 }

// term returns the term of entry i, with raft.Storage's errors.
func (s *state) term(i uint64) (uint64, error) {
	off := s.offset()
	if i < off {
		return 0, raft.ErrCompacted
	}
	if i-off >= uint64(len(s.ents)) {
		return 0, raft.ErrUnavailable
	}
	return s.ents[i-off].GetTerm(), nil
}

// apply returns the state after b, with the semantics of raft.MemoryStorage: a reset is
// ApplySnapshot's (every entry dropped), a compaction Compact's, entries Append's (entries
// at or below the compaction point ignored, a conflicting suffix replaced), the hard state
// SetHardState's. It fails if b does not fit s (entries leaving a gap, a compaction past the
// last index); s is never modified.
func (s state) apply(b *batch) (state, error) {
	switch {
	case b.flags&flagReset != 0:
		s.ents = []*raftpb.Entry{dummy(b.index, b.term)}
		s.live = 0
	case b.flags&flagCompact != 0:
		off := s.offset()
		if b.index <= off {
			break // already compacted further (replay of a compaction a later base covers)
		}
		if b.index > s.lastIndex() {
			return s, fmt.Errorf("compaction to %d past the last index %d", b.index, s.lastIndex())
		}
		i := b.index - off
		if t := s.ents[i].GetTerm(); t != b.term {
			return s, fmt.Errorf("compaction to %d at term %d, but the entry has term %d", b.index, b.term, t)
		}
		for _, e := range s.ents[1 : i+1] {
			s.live -= int64(proto.Size(e))
		}
		ents := make([]*raftpb.Entry, 1, uint64(len(s.ents))-i)
		ents[0] = dummy(b.index, b.term)
		s.ents = append(ents, s.ents[i+1:]...)
	}
	if ents := b.ents; len(ents) > 0 {
		first := s.offset() + 1
		if last := ents[0].GetIndex() + uint64(len(ents)) - 1; last >= first {
			if first > ents[0].GetIndex() {
				ents = ents[first-ents[0].GetIndex():]
			}
			at := ents[0].GetIndex() - s.offset()
			switch {
			case uint64(len(s.ents)) > at:
				for _, e := range s.ents[at:] {
					s.live -= int64(proto.Size(e))
				}
				s.ents = append(s.ents[:at:at], ents...)
			case uint64(len(s.ents)) == at:
				s.ents = append(s.ents, ents...)
			default:
				return s, fmt.Errorf("entries from %d leave a gap after the last index %d", ents[0].GetIndex(), s.lastIndex())
			}
			for _, e := range ents {
				s.live += int64(proto.Size(e))
			}
		}
	}
	if b.flags&flagSnapshot != 0 {
		s.mark = b.mark
	}
	if b.flags&flagHard != 0 {
		s.hs = b.hs
	}
	return s, nil
}

// base is the batch that rebuilds s from nothing: the first record of every segment.
func (s *state) base() *batch {
	b := &batch{flags: flagReset, index: s.offset(), term: s.ents[0].GetTerm(), hs: s.hs, ents: s.ents[1:]}
	if s.hs != nil {
		b.flags |= flagHard
	}
	if s.mark != (point{}) {
		b.flags |= flagSnapshot
		b.mark = s.mark
	}
	return b
}
