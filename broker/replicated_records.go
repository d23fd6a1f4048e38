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

// Application entry payloads: version u8 (1) | kind u8 | body (big-endian).
const (
	appVersion   = 1
	appLogStart  = 1 // body: the new log start offset, i64
	appTxnMarker = 2 // body: producer id i64 | producer epoch i16 | commit u8 (0/1) | timestamp i64 (replicated_txn.go)
)

// appEntry is one decoded application entry.
type appEntry struct {
	kind     byte
	logStart int64 // appLogStart
	marker   txnMarker
}

// txnMarker is a transaction marker carried by an application entry.
type txnMarker struct {
	pid    int64
	epoch  int16
	commit bool
	ts     int64
}

// encodeLogStartEntry is the raft entry data that moves the log start to off.
func encodeLogStartEntry(off int64) []byte {
	return raftstore.AppEntry(binary.BigEndian.AppendUint64([]byte{appVersion, appLogStart}, uint64(off)))
}

// encodeMarkerEntry is the raft entry data of a transaction marker.
func encodeMarkerEntry(m txnMarker) []byte {
	b := binary.BigEndian.AppendUint64([]byte{appVersion, appTxnMarker}, uint64(m.pid))
	b = binary.BigEndian.AppendUint16(b, uint16(m.epoch))
	c := byte(0)
	if m.commit {
		c = 1
	}
	b = append(b, c)
	return raftstore.AppEntry(binary.BigEndian.AppendUint64(b, uint64(m.ts)))
}

// decodeAppPayload decodes an application entry's payload; anything this version does not
// write exactly is an error.
func decodeAppPayload(b []byte) (appEntry, error) {
	if len(b) < 2 || b[0] != appVersion {
		return appEntry{}, fmt.Errorf("broker: unknown raft application entry (%d bytes)", len(b))
	}
	switch b[1] {
	case appLogStart:
		if len(b) != 10 {
			break
		}
		off := int64(binary.BigEndian.Uint64(b[2:]))
		if off < 0 {
			return appEntry{}, fmt.Errorf("broker: raft application entry: negative log start %d", off)
		}
		return appEntry{kind: appLogStart, logStart: off}, nil
	case appTxnMarker:
		if len(b) != 21 || b[12] > 1 {
			break
		}
		m := txnMarker{pid: int64(binary.BigEndian.Uint64(b[2:])), epoch: int16(binary.BigEndian.Uint16(b[10:])),
			commit: b[12] == 1, ts: int64(binary.BigEndian.Uint64(b[13:]))}
		if m.pid < 0 || m.epoch < 0 {
			return appEntry{}, fmt.Errorf("broker: raft application entry: marker of producer %d epoch %d", m.pid, m.epoch)
		}
		return appEntry{kind: appTxnMarker, marker: m}, nil
	}
	return appEntry{}, fmt.Errorf("broker: unknown raft application entry (kind %d, %d bytes)", b[1], len(b))
}

// applyApp applies an application entry at index, whose offset is base (on the engine
// goroutine, g.mu held). An entry this version does not know is skipped with an error
// logged: it occupies its offset like any control batch.
func (g *replGroup) applyApp(index uint64, base int64, payload []byte, nowMs int64) {
	e, err := decodeAppPayload(payload)
	if err != nil {
		g.b.log.Error("broker: raft application entry", "topic", g.p.t.name, "partition", g.p.index, "index", index, "err", err)
		return
	}
	switch e.kind {
	case appLogStart:
		if e.logStart > g.logStart.Load() {
			g.logStart.Store(e.logStart)
		}
	case appTxnMarker:
		if base >= g.prodsUpTo { // below: the restored snapshot's state has it
			g.prods.applyMarker(e.marker.pid, e.marker.epoch, e.marker.commit, base, nowMs)
		}
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
	err = b.awaitCommitted(ctx, prop, err)
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
