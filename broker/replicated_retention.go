package broker

// Retention and raft snapshots of replicated partitions (doc.go "Replicated partitions").
//
// Every replica enforces retention.ms, retention.bytes and the DeleteRecords log start on its
// own log, as Kafka's replicas do, but only below what raft no longer needs. One check, on
// the engine goroutine (Engine.AtApplied: no entry is appended or applied meanwhile):
//
//  1. the whole old segments retention wants gone are found (their records all lie below the
//     bound: the first offset with a timestamp at or after now-retention.ms, the size rule, the
//     log start DeleteRecords set);
//  2. a raft snapshot is created at the applied index A (raftstore.CreateSnapshot), carrying
//     the producer state as of A;
//  3. raft's log is compacted to C = A, or on the leader to the smallest Match of the
//     followers it heard from recently (a live follower that is behind keeps getting entries;
//     one that is down, or behind C, is sent the snapshot);
//  4. only the segments whose records all lie at or below entry C are deleted (Log.Retain),
//     so raft's first index has already moved past every deleted entry.

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/wal"
	"go.etcd.io/raft/v3"
	"go.etcd.io/raft/v3/raftpb"
)

// AtApplier is the optional part of Replication retention needs (*replica.Engine has it):
// f runs on the engine goroutine with the group's applied index and membership there.
type AtApplier interface {
	AtApplied(ctx context.Context, id replica.GroupID, f func(applied uint64, cs *raftpb.ConfState) error) error
}

// RaftCompactor is the optional part of RaftStorage retention needs (*raftstore.Store has
// it): snapshots at an index and log compaction.
type RaftCompactor interface {
	CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error)
	Compact(i uint64) error
	Snapshot() (*raftpb.Snapshot, error)
	FirstIndex() (uint64, error)
}

// snapProducerBudget bounds the producer state in a partition snapshot: the snapshot lives in
// the log's small state (wal.MaxStateBytes with raft's hard state and membership).
const snapProducerBudget = wal.MaxStateBytes - 1024

// segmentInfo is one segment file of a log: its base offset and size.
type segmentInfo struct {
	base, size int64
}

// segmentsOf lists the segment files of p's log, oldest first.
func (b *Broker) segmentsOf(p *partition) ([]segmentInfo, error) {
	names, err := b.fs.ReadDir(p.dir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // nothing flushed yet (the wal creates the directory lazily)
	}
	if err != nil {
		return nil, err
	}
	var segs []segmentInfo
	for _, n := range names {
		stem, ok := strings.CutSuffix(n, ".log")
		if !ok || len(stem) != 20 {
			continue
		}
		base, err := strconv.ParseInt(stem, 10, 64)
		if err != nil {
			continue
		}
		size, err := fileSize(b.fs, filepath.Join(p.dir(), n))
		if err != nil {
			return nil, err
		}
		segs = append(segs, segmentInfo{base: base, size: size})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].base < segs[j].base })
	return segs, nil
}

// retentionBound is the offset below which retention wants p's records gone, given its
// segments: time (the first entry with a timestamp at or after now-retention.ms), size
// (oldest segments while the rest is at least retention.bytes) and the DeleteRecords start.
func (b *Broker) retentionBound(l *wal.Log, segs []segmentInfo, cfg *topicConfig, logStart int64) (int64, error) {
	bound := logStart
	if cfg.retentionMs >= 0 {
		off, ok, err := l.OffsetForTimestamp(b.cfg.Now().UnixMilli() - cfg.retentionMs)
		if err != nil {
			return 0, err
		}
		if !ok {
			off = l.NextOffset()
		}
		bound = max(bound, off)
	}
	if cfg.retentionBytes >= 0 {
		var total int64
		for _, s := range segs {
			total += s.size
		}
		for i := 0; i+1 < len(segs) && total-segs[i].size >= cfg.retentionBytes; i++ {
			total -= segs[i].size
			bound = max(bound, segs[i+1].base)
		}
	}
	return bound, nil
}

// retainReplicated applies retention to replicated partition p, whose group g runs here
// (file comment). It returns how many segments went and the log's start offset after.
func (b *Broker) retainReplicated(ctx context.Context, p *partition, g *replGroup, cfg *topicConfig) (int, int64, error) {
	aa, ok1 := g.eng.(AtApplier)
	rc, ok2 := g.st.(RaftCompactor)
	if !ok1 || !ok2 {
		return 0, g.log.StartOffset(), nil
	}
	// A cheap look first: most checks find nothing due and need not stop the engine.
	if due, err := b.retentionDue(p, g, cfg); err != nil || !due {
		return 0, g.log.StartOffset(), err
	}
	// The leader keeps what its live followers still need (Match only grows: a stale view
	// keeps more).
	keep := uint64(math.MaxUint64)
	if st, ok := g.eng.Status(g.id); ok && st.Leader == g.self {
		for id, pr := range st.Progress {
			if id != g.self && pr.RecentActive {
				keep = min(keep, pr.Match)
			}
		}
	}
	// f may still run after AtApplied returned (ctx done first): it reports through n.
	var n atomic.Int64
	err := aa.AtApplied(ctx, g.id, func(applied uint64, cs *raftpb.ConfState) error {
		l := g.log
		segs, err := b.segmentsOf(p)
		if err != nil || len(segs) < 2 {
			return err
		}
		bound, err := b.retentionBound(l, segs, cfg, g.logStart.Load())
		if err != nil || segs[1].base > bound {
			return err // nothing to delete
		}
		if err := g.snapshotAt(rc, applied, cs); err != nil {
			return err
		}
		c := min(applied, keep)
		_, cNext, ok := g.st.Offsets(c)
		if !ok {
			return nil // c is compacted already, or not stored
		}
		if first, _ := rc.FirstIndex(); c >= first {
			if err := rc.Compact(c); err != nil && !errors.Is(err, raft.ErrCompacted) {
				return fmt.Errorf("compact raft log to %d: %w", c, err)
			}
		}
		limit := min(bound, cNext)
		var doomed int64
		for i := 0; i+1 < len(segs) && segs[i+1].base <= limit; i++ {
			doomed += segs[i].size
		}
		if doomed == 0 {
			return nil
		}
		// Retain by bytes deletes oldest segments while what remains is at least the limit:
		// exactly the doomed ones (nothing is appended while f runs).
		k, err := l.Retain(-1, l.Size()-doomed)
		n.Store(int64(k))
		return err
	})
	return int(n.Load()), g.log.StartOffset(), err
}

// retentionDue reports whether retention wants at least p's oldest segment gone.
func (b *Broker) retentionDue(p *partition, g *replGroup, cfg *topicConfig) (bool, error) {
	segs, err := b.segmentsOf(p)
	if err != nil || len(segs) < 2 {
		return false, err
	}
	bound, err := b.retentionBound(g.log, segs, cfg, g.logStart.Load())
	return err == nil && segs[1].base <= bound, err
}

// snapshotAt creates g's raft snapshot at applied (the applied index, on the engine
// goroutine) with the producer state as of it, unless the newest snapshot is there already.
func (g *replGroup) snapshotAt(rc RaftCompactor, applied uint64, cs *raftpb.ConfState) error {
	snap, err := rc.Snapshot()
	if err != nil {
		return err
	}
	if snap.GetMetadata().GetIndex() >= applied {
		return nil
	}
	upTo := g.hw.Load()
	if _, nx, ok := g.st.Offsets(applied); ok {
		upTo = nx
	}
	g.mu.Lock()
	data := encodeSnapData(g.logStart.Load(), encodeSnapProducers(upTo, g.prods.producers, snapProducerBudget))
	g.mu.Unlock()
	if _, err := rc.CreateSnapshot(applied, cs, data); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
		return fmt.Errorf("raft snapshot at %d: %w", applied, err)
	}
	return nil
}

// encodeSnapProducers is the producer state of a partition snapshot: the producer snapshot
// format (encodeProducerSnapshot, no transactions) holding the most recently active producers
// that fit in budget bytes. Producers left out are unknown to a replica that installs the
// snapshot (as after expiry: KIP-360).
func encodeSnapProducers(upTo int64, prods map[int64]*producerEntry, budget int) []byte {
	ids := make([]int64, 0, len(prods))
	for id := range prods {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b int64) int {
		if d := prods[b].lastTs - prods[a].lastTs; d != 0 {
			if d > 0 {
				return 1
			}
			return -1
		}
		return int(min(max(a-b, -1), 1))
	})
	const fixed = len(snapMagic) + 1 + 8 + 4 + 4 + 4
	size := fixed
	keep := map[int64]*producerEntry{}
	for _, id := range ids {
		e := prods[id]
		sz := 8 + 2 + 8 + 8 + 1 + 16*len(e.batches)
		if size+sz > budget {
			break
		}
		size += sz
		keep[id] = e
	}
	return encodeProducerSnapshot(upTo, keep, nil)
}

// A replicated partition's raft snapshot data (the application part, after raftstore's
// offset): version u8 (1) | log start offset i64 (set by DeleteRecords through raft, -1:
// none) | the producer state (encodeSnapProducers), big-endian.
const snapDataVersion = 1

func encodeSnapData(logStart int64, prods []byte) []byte {
	b := binary.BigEndian.AppendUint64([]byte{snapDataVersion}, uint64(logStart))
	return append(b, prods...)
}

// decodeSnapData decodes a partition snapshot's application data (empty: a snapshot
// without any, nothing known).
func decodeSnapData(data []byte) (logStart int64, prods map[int64]*producerEntry, err error) {
	if len(data) == 0 {
		return -1, map[int64]*producerEntry{}, nil
	}
	if len(data) < 9 || data[0] != snapDataVersion {
		return 0, nil, errors.New("broker: raft snapshot data: bad header")
	}
	logStart = int64(binary.BigEndian.Uint64(data[1:]))
	if logStart < -1 {
		return 0, nil, fmt.Errorf("broker: raft snapshot data: bad log start %d", logStart)
	}
	_, prods, _, err = decodeProducerSnapshot(data[9:])
	if err != nil {
		return 0, nil, err
	}
	return logStart, prods, nil
}
