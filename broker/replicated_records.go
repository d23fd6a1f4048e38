package broker

// DeleteRecords on replicated partitions: the leader proposes the new log start offset as a
// raft application entry (raftstore.AppEntry); every replica applies it (replGroup.applyApp),
// so the start is the same on every replica and survives failover. It is kept in the
// partition's raft snapshots (replicated_retention.go), and retention deletes the segments
// below it (within what raft no longer needs).

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/meshkafka/meshkafka/broker/replica"
	"github.com/meshkafka/meshkafka/broker/replica/raftstore"
	"github.com/twmb/franz-go/pkg/kerr"
)

// Application entry payloads: version u8 (1) | kind u8 | body.
const (
	appVersion  = 1
	appLogStart = 1 // body: the new log start offset, i64 big-endian
)

// encodeLogStartEntry is the raft entry data that moves the log start to off.
func encodeLogStartEntry(off int64) []byte {
	return raftstore.AppEntry(binary.BigEndian.AppendUint64([]byte{appVersion, appLogStart}, uint64(off)))
}

// decodeAppPayload decodes an application entry's payload: a log start offset (ok true) or
// an error for anything else.
func decodeAppPayload(b []byte) (logStart int64, err error) {
	if len(b) != 10 || b[0] != appVersion || b[1] != appLogStart {
		return 0, fmt.Errorf("broker: unknown raft application entry (%d bytes)", len(b))
	}
	off := int64(binary.BigEndian.Uint64(b[2:]))
	if off < 0 {
		return 0, fmt.Errorf("broker: raft application entry: negative log start %d", off)
	}
	return off, nil
}

// applyApp applies an application entry at index (on the engine goroutine, g.mu held). An
// entry this version does not know is skipped with an error logged: it occupies its offset
// like any control batch.
func (g *replGroup) applyApp(index uint64, payload []byte) {
	off, err := decodeAppPayload(payload)
	if err != nil {
		g.b.log.Error("broker: raft application entry", "topic", g.p.t.name, "partition", g.p.index, "index", index, "err", err)
		return
	}
	if off > g.logStart.Load() {
		g.logStart.Store(off)
	}
}

// logStartOffset is the partition's log start offset: the log's (retention moves it) or,
// above it, the one DeleteRecords set.
func (g *replGroup) logStartOffset() int64 {
	return max(g.log.StartOffset(), g.logStart.Load())
}

// deleteRecordsReplicated is DeleteRecords for a replicated partition this broker leads:
// off (-1: the high watermark) must lie within [log start, high watermark]; the new start is
// committed through raft and applied here before the answer (REQUEST_TIMED_OUT after
// timeoutMs, if > 0: the outcome is then unknown, a retry is harmless). Segments below it go
// at once (within what raft allows) or with the next retention check.
func (b *Broker) deleteRecordsReplicated(ctx context.Context, p *partition, off int64, timeoutMs int32) (int16, int64) {
	if timeoutMs > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeoutMs)*time.Millisecond)
		defer cancel()
	}
	g, _, code := p.serving(-1)
	if code != 0 {
		return code, -1
	}
	hw, start := g.highWatermark(), g.logStartOffset()
	if off == -1 {
		off = hw
	}
	if off < 0 || off > hw {
		return kerr.OffsetOutOfRange.Code, -1
	}
	if off <= start {
		return 0, start
	}
	prop, err := g.eng.Propose(ctx, g.id, encodeLogStartEntry(off))
	if err == nil {
		select {
		case err = <-prop.Committed:
		case <-ctx.Done():
			err = ctx.Err()
		case <-b.closing:
			err = ErrClosed
		}
	}
	switch {
	case errors.Is(err, replica.ErrNotLeader), errors.Is(err, replica.ErrUnknownGroup), errors.Is(err, ErrClosed):
		return kerr.NotLeaderForPartition.Code, -1
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code, -1
	case err != nil:
		return b.storageError(p, "delete records", err), -1
	}
	g.waitApplied(ctx, prop.Index)
	if _, _, err := b.retainReplicated(ctx, p, g, p.t.cfg.Load()); err != nil && !p.deleted.Load() {
		// The start moved; the disk space comes back with the next retention check.
		b.log.Warn("broker: delete records: segments not reclaimed", "topic", p.t.name, "partition", p.index, "err", err)
	}
	return 0, g.logStartOffset()
}
