package broker

// Retention and raft snapshots of replicated partitions (doc.go "Replicated partitions").
//
// Every replica enforces retention.ms, retention.bytes and the DeleteRecords log start on its
// own log, as Kafka's replicas do, but only below what raft no longer needs. One check, on
// the engine goroutine (Engine.AtApplied: no entry is appended or applied meanwhile), with A
// the applied index and HW the offset after it:
//
//  1. the whole old segments retention wants gone are found: those whose records all lie
//     below the bound (the first offset with a timestamp at or after now-retention.ms, the
//     size rule, the log start DeleteRecords set), below HW, and on the leader below what
//     every follower it heard from recently already has (a live follower that is behind keeps
//     getting entries rather than a snapshot). The first segment kept starts at offset L, with
//     entry S+1: S is the retention point;
//  2. a raft snapshot is created at S (raftstore.CreateSnapshot, with the membership in force
//     at S), never above it: a follower that installs it resets its log to start at L, where
//     this replica's log starts, and gets every entry after S from the log. Its data is the
//     DeleteRecords log start and the producer state as of A (with HW as its "up to" offset:
//     a replica that restores it skips the producer updates of the entries S+1..A it then
//     applies again, which the state already holds);
//  3. raft's log is compacted to S and the state made durable (Log.Commit);
//  4. the segments below L are deleted (Log.RetainBelow).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
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
// it): snapshots at an index (cs nil: the membership the storage saved for it), log
// compaction, the entry holding an offset.
type RaftCompactor interface {
	CreateSnapshot(i uint64, cs *raftpb.ConfState, data []byte) (*raftpb.Snapshot, error)
	Compact(i uint64) error
	Snapshot() (*raftpb.Snapshot, error)
	FirstIndex() (uint64, error)
	IndexForOffset(off int64) (uint64, bool)
}

// retentionBound is the offset below which retention wants p's records gone, given its
// segments: time (the first entry with a timestamp at or after now-retention.ms), size
// (oldest segments while the rest is at least retention.bytes) and the DeleteRecords start;
// without delete in cleanup.policy, only the DeleteRecords start.
func (b *Broker) retentionBound(l *wal.Log, segs []wal.SegmentInfo, cfg *topicConfig, logStart int64) (int64, error) {
	bound := logStart
	if !cfg.deleteOld {
		return bound, nil // cleanup.policy=compact: only DeleteRecords moves the log start
	}
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
			total += s.Size
		}
		for i := 0; i+1 < len(segs) && total-segs[i].Size >= cfg.retentionBytes; i++ {
			total -= segs[i].Size
			bound = max(bound, segs[i+1].Base)
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
		k, err := g.retainAt(rc, cfg, applied, cs, keep)
		n.Store(int64(k))
		return err
	})
	return int(n.Load()), g.log.StartOffset(), err
}

// retainAt is one retention check on the engine goroutine, at the applied index (file
// comment); keep is the highest index the leader's live followers all have.
func (g *replGroup) retainAt(rc RaftCompactor, cfg *topicConfig, applied uint64, cs *raftpb.ConfState, keep uint64) (int, error) {
	l := g.log
	segs := l.Segments()
	hw := g.hw.Load() // the offset after the applied entry (no Apply runs meanwhile)
	if len(segs) < 2 || hw < 0 {
		return 0, nil
	}
	bound, err := g.b.retentionBound(l, segs, cfg, g.logStart.Load())
	if err != nil {
		return 0, err
	}
	limit := min(bound, hw)
	if keep < applied {
		_, kn, ok := g.st.Offsets(keep)
		if !ok {
			return 0, nil // a live follower needs entries at or below the log's start
		}
		limit = min(limit, kn)
	}
	j := 0
	for j+1 < len(segs) && segs[j+1].Base <= limit {
		j++
	}
	if j == 0 {
		return 0, nil
	}
	start := segs[j].Base // the new log start: entry S+1 begins there
	var point uint64      // S, the retention point
	if next, ok := rc.IndexForOffset(start); ok && next > 0 {
		point = next - 1
	} else if start == hw {
		point = applied // an empty active segment at the high watermark: every entry goes
	} else {
		return 0, fmt.Errorf("no raft entry at offset %d", start)
	}
	snap, err := rc.Snapshot()
	if err != nil {
		return 0, err
	}
	if snap.GetMetadata().GetIndex() < point {
		var at *raftpb.ConfState
		if point == applied {
			at = cs
		}
		g.mu.Lock()
		data := encodeSnapData(g.logStart.Load(), encodeProducerSnapshot(hw, g.prods.producers, g.prods.abortedFrom(start)))
		g.mu.Unlock()
		if _, err := rc.CreateSnapshot(point, at, data); err != nil && !errors.Is(err, raft.ErrSnapOutOfDate) {
			return 0, fmt.Errorf("raft snapshot at %d: %w", point, err)
		}
	}
	if first, _ := rc.FirstIndex(); point >= first {
		if err := rc.Compact(point); err != nil && !errors.Is(err, raft.ErrCompacted) {
			return 0, fmt.Errorf("compact raft log to %d: %w", point, err)
		}
	}
	// The snapshot and compaction must be durable before the entries go: a replica that
	// restarted on a log without those entries but with an older snapshot could not restart
	// raft (it would apply from the older snapshot's index on).
	if err := l.Commit(); err != nil {
		return 0, err
	}
	return l.RetainBelow(start)
}

// retentionDue reports whether retention wants at least p's oldest segment gone.
func (b *Broker) retentionDue(p *partition, g *replGroup, cfg *topicConfig) (bool, error) {
	segs := g.log.Segments()
	if len(segs) < 2 {
		return false, nil
	}
	bound, err := b.retentionBound(g.log, segs, cfg, g.logStart.Load())
	return err == nil && segs[1].Base <= min(bound, g.hw.Load()), err
}

// A replicated partition's raft snapshot data (the application part, after raftstore's
// offset): version u8 (1) | log start offset i64 (set by DeleteRecords through raft, -1:
// none) | the producer state (encodeProducerSnapshot: every producer with its open
// transaction's first offset, and the aborted transactions whose markers lie at or after
// the new log start, as of its "up to" offset), big-endian.
const snapDataVersion = 1

func encodeSnapData(logStart int64, prods []byte) []byte {
	b := binary.BigEndian.AppendUint64([]byte{snapDataVersion}, uint64(logStart))
	return append(b, prods...)
}

// decodeSnapData decodes a partition snapshot's application data (empty: a snapshot
// without any, nothing known): the DeleteRecords log start, and the producer state with the
// offset it is up to (the entries below it are in it).
func decodeSnapData(data []byte) (logStart, upTo int64, prods map[int64]*producerEntry, aborted []abortedTxn, err error) {
	if len(data) == 0 {
		return -1, 0, map[int64]*producerEntry{}, nil, nil
	}
	if len(data) < 9 || data[0] != snapDataVersion {
		return 0, 0, nil, nil, errors.New("broker: raft snapshot data: bad header")
	}
	logStart = int64(binary.BigEndian.Uint64(data[1:]))
	if logStart < -1 {
		return 0, 0, nil, nil, fmt.Errorf("broker: raft snapshot data: bad log start %d", logStart)
	}
	upTo, prods, aborted, err = decodeProducerSnapshot(data[9:])
	if err != nil {
		return 0, 0, nil, nil, err
	}
	return logStart, upTo, prods, aborted, nil
}
