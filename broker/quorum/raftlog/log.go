package raftlog

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"

	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/wal"
)

// Defaults of Options.
const (
	DefaultSegmentBytes = 8 << 20
	DefaultKeepEntries  = 1024
)

// ErrClosed is returned by writes to a closed Log.
var ErrClosed = errors.New("raftlog: closed")

// Options configure a Log. The zero value is usable.
type Options struct {
	// SegmentBytes: a write that would take the active segment past both SegmentBytes and
	// twice the encoded size of the live entries writes a new segment instead (see doc.go).
	// Zero means DefaultSegmentBytes.
	SegmentBytes int64
	// KeepEntries is how many entries CreateSnapshot(index) keeps below index for followers
	// that lag a little (it compacts the log to index-KeepEntries). Zero means
	// DefaultKeepEntries; negative: CreateSnapshot never compacts (call Compact).
	KeepEntries int
	// Logger receives notes on recovery (a torn tail cut, a reset to the snapshot). Nil: none.
	Logger *slog.Logger
	// Rand is the source of the raft id made on first Open. Nil: crypto/rand.
	Rand io.Reader
}

// Stats are a Log's counters.
type Stats struct {
	Saves          int64 // Save calls that wrote something
	Fsyncs         int64 // file and directory fsyncs the Log did, recovery included
	Rolls          int64 // new segments written (each rewrites the live entries)
	TruncatedBytes int64 // torn tail bytes cut by Open
}

// Log is durable raft storage in one directory: a raft.Storage whose writes (Save,
// CreateSnapshot, Compact) are fsynced before they return. Every method is safe for
// concurrent use; reads never wait for a write's fsync. A Log starts no goroutines.
type Log struct {
	fs   wal.FS
	dir  string
	opts Options
	log  *slog.Logger
	id   uint64

	saves, fsyncs, rolls, truncated atomic.Int64

	// wmu serializes writers (Save, CreateSnapshot, Compact, Close) and guards the fields
	// below it. A writer holding wmu may read st without mu: only writers replace it.
	wmu    sync.Mutex
	seg    wal.File // active segment, or nil once closed (or if its roll failed)
	segSeq uint64   // its sequence number
	size   int64    // its size; all of it is durable (every write is fsynced before the next)
	err    error    // sticky: set by a failed write or fsync; every later write fails with it
	closed bool

	// mu guards st (writers replace it holding wmu and mu; readers copy it under mu.RLock).
	mu sync.RWMutex
	st state
}

// RaftID returns the node's raft id: random, non-zero, made durable by the first Open of
// the directory before anything else was written to it.
func (l *Log) RaftID() uint64 { return l.id }

// Stats returns the counters.
func (l *Log) Stats() Stats {
	return Stats{Saves: l.saves.Load(), Fsyncs: l.fsyncs.Load(), Rolls: l.rolls.Load(), TruncatedBytes: l.truncated.Load()}
}

func (l *Log) state() state {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.st
}

// InitialState implements raft.Storage: the saved hard state (nil if none was saved) and
// the snapshot's ConfState.
func (l *Log) InitialState() (*raftpb.HardState, *raftpb.ConfState, error) {
	s := l.state()
	var hs *raftpb.HardState
	if s.hs != nil {
		hs = proto.CloneOf(s.hs)
	}
	cs := raftpb.EnsureConfState(proto.CloneOf(s.snap.GetMetadata().GetConfState()))
	return hs, cs, nil
}

// Entries implements raft.Storage with raft.MemoryStorage's answers, except that a range
// past the last index is an error wrapping raft.ErrUnavailable where MemoryStorage panics.
func (l *Log) Entries(lo, hi, maxSize uint64) ([]*raftpb.Entry, error) {
	s := l.state()
	off := s.offset()
	if lo <= off {
		return nil, raft.ErrCompacted
	}
	if hi > s.lastIndex()+1 || lo > hi {
		return nil, fmt.Errorf("raftlog: entries [%d, %d) out of bounds (last index %d): %w", lo, hi, s.lastIndex(), raft.ErrUnavailable)
	}
	if len(s.ents) == 1 {
		return nil, raft.ErrUnavailable
	}
	ents := limitSize(s.ents[lo-off:hi-off], maxSize)
	return ents[:len(ents):len(ents)], nil
}

// limitSize returns the longest prefix of ents whose encoded size is at most maxSize, but at
// least one entry (raft's rule).
func limitSize(ents []*raftpb.Entry, maxSize uint64) []*raftpb.Entry {
	if len(ents) == 0 {
		return ents
	}
	size := uint64(proto.Size(ents[0]))
	for n := 1; n < len(ents); n++ {
		size += uint64(proto.Size(ents[n]))
		if size > maxSize {
			return ents[:n]
		}
	}
	return ents
}

// Term implements raft.Storage.
func (l *Log) Term(i uint64) (uint64, error) {
	s := l.state()
	return s.term(i)
}

// LastIndex implements raft.Storage.
func (l *Log) LastIndex() (uint64, error) {
	s := l.state()
	return s.lastIndex(), nil
}

// FirstIndex implements raft.Storage.
func (l *Log) FirstIndex() (uint64, error) {
	s := l.state()
	return s.offset() + 1, nil
}

// Snapshot implements raft.Storage: the newest snapshot (index 0 if there is none).
func (l *Log) Snapshot() (*raftpb.Snapshot, error) {
	s := l.state()
	return proto.CloneOf(s.snap), nil
}
