package broker

import (
	"context"
	"encoding/binary"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/share"
	"github.com/meshkafka/meshkafka/broker/share/coord"
)

// The share-group coordinator's ops (brokerop.ShareService, KIP-932). The coordinator
// (package broker/share, its state log under Dir/share) runs here, where the partitions
// are: ShareFetch reads the partitions through the broker's ShareReader (this broker's own
// logs, or in a cluster each partition's leader) and hands out acquisition locks on the
// records it read. With a metadata quorum every share op is routed to the leader's broker
// (broker/controller/share.go), as transaction ops are.

// defaultShareMaxRecords is ShareFetch's record budget when the request names none (v0;
// Kafka's max.poll.records default).
const defaultShareMaxRecords = 500

func (b *Broker) openShare() error {
	c, err := coord.Open(coord.Config{Dir: filepath.Join(b.cfg.Dir, "share"), FS: b.fs, Logger: b.log, Now: b.cfg.Now, Machine: b.cfg.Share})
	if err != nil {
		return err
	}
	b.share = c
	return nil
}

// SetShareCoordinator makes the broker serve the share ops with co instead of its own
// coordinator (in a cluster, the controller's coordinator whose journal is the metadata
// quorum, set while this broker leads it). nil: this broker is no share coordinator, the ops
// fail with coord.ErrClosed (the controller routes share ops to the leader, and a leader
// starts its coordinator before serving them). The broker's own coordinator is not used
// again after the first call.
func (b *Broker) SetShareCoordinator(co *coord.Coordinator) {
	b.shareExt.Store(&extShare{co: co})
}

// extShare is what SetShareCoordinator installed.
type extShare struct{ co *coord.Coordinator }

// noShareCoordinator answers every call coord.ErrClosed.
var noShareCoordinator = func() *coord.Coordinator {
	c := coord.New(coord.Config{}, closedShareJournal{}, nil)
	_ = c.Close()
	return c
}()

type closedShareJournal struct{}

func (closedShareJournal) Append(...*share.Record) error             { return coord.ErrClosed }
func (closedShareJournal) MaybeCompact(func() []*share.Record) error { return nil }
func (closedShareJournal) Close() error                              { return nil }

// ShareConfig is the share-group configuration the broker was opened with (for a share
// coordinator started elsewhere, the controller's).
func (b *Broker) ShareConfig() share.Config { return b.cfg.Share }

// shareCo is the share coordinator the ops use now.
func (b *Broker) shareCo() *coord.Coordinator {
	if e := b.shareExt.Load(); e != nil {
		if e.co == nil {
			return noShareCoordinator
		}
		return e.co
	}
	return b.share
}

// ShareReader is where the share ops read the partitions share groups consume: their
// offsets (ListOffsets) and records (Fetch), each answered in request order as the broker's
// own ops answer. By default the broker itself (its own partitions); in a cluster the
// controller installs one that asks each partition's leader (SetShareReader), so a share
// group consumes every partition of its topics, not only those this broker leads.
type ShareReader interface {
	ListOffsets(ctx context.Context, req *brokerop.ListOffsetsReq) (*brokerop.ListOffsetsResp, error)
	Fetch(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, error)
}

// SetShareReader makes the share ops read partitions through r (nil: this broker's own).
func (b *Broker) SetShareReader(r ShareReader) {
	if r == nil {
		b.shareRead.Store(nil)
		return
	}
	b.shareRead.Store(&r)
}

// shareReader is where the share ops read partitions now.
func (b *Broker) shareReader() ShareReader {
	if r := b.shareRead.Load(); r != nil {
		return *r
	}
	return b
}

// shareTopics is the Machine's view of this broker's topics.
func (b *Broker) shareTopics(name string) (int32, bool) {
	t := (*b.topics.Load())[name]
	if t == nil {
		return 0, false
	}
	return int32(len(*t.parts.Load())), true
}

func shareTPs(in []brokerop.ShareTP) []share.TP {
	out := make([]share.TP, len(in))
	for i, tp := range in {
		out[i] = share.TP{Topic: tp.Topic, Partition: tp.Partition}
	}
	return out
}

func opTPs(in []share.TP) []brokerop.ShareTP {
	out := make([]brokerop.ShareTP, len(in))
	for i, tp := range in {
		out[i] = brokerop.ShareTP{Topic: tp.Topic, Partition: tp.Partition}
	}
	return out
}

func ackBatches(in []brokerop.ShareAckBatch) []share.AckBatch {
	out := make([]share.AckBatch, len(in))
	for i, a := range in {
		out[i] = share.AckBatch{First: a.First, Last: a.Last, Types: a.Types}
	}
	return out
}

// AddShareGroups adds this broker's share groups that pass req's filters to resp, keeping
// it sorted by name: ListGroups v5 lists them as Kafka does, type "share", protocol type
// "share", state Empty or Stable (kadm's ListShareGroups asks for them by type).
func (b *Broker) AddShareGroups(req *brokerop.ListGroupsReq, resp *brokerop.ListGroupsResp) error {
	var gs [][2]string
	if err := b.shareCo().Do(func(m *share.Machine, _ time.Time) { gs = m.Groups() }); err != nil {
		return err
	}
	match := func(filter []string, v string) bool {
		return len(filter) == 0 || slices.ContainsFunc(filter, func(f string) bool { return strings.EqualFold(f, v) })
	}
	added := false
	for _, g := range gs {
		lg := brokerop.ListedGroup{Group: g[0], ProtocolType: "share", State: g[1], Type: "share"}
		if match(req.StatesFilter, lg.State) && match(req.TypesFilter, lg.Type) {
			resp.Groups = append(resp.Groups, lg)
			added = true
		}
	}
	if added {
		slices.SortStableFunc(resp.Groups, func(a, b brokerop.ListedGroup) int { return strings.Compare(a.Group, b.Group) })
	}
	return nil
}

// ShareGroupHeartbeat serves ShareGroupHeartbeat.
func (b *Broker) ShareGroupHeartbeat(_ context.Context, req *brokerop.ShareGroupHeartbeatReq) (*brokerop.ShareGroupHeartbeatResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	hreq := share.HeartbeatReq{Group: req.Group, MemberID: req.MemberID, ClientID: req.ClientID, ClientHost: req.ClientHost, Rack: req.Rack, MemberEpoch: req.MemberEpoch}
	if req.HasTopics {
		hreq.Topics = append([]string{}, req.Topics...)
	}
	var r share.HeartbeatResp
	if err := b.shareCo().Do(func(m *share.Machine, now time.Time) { r = m.Heartbeat(now, hreq, b.shareTopics) }); err != nil {
		return &brokerop.ShareGroupHeartbeatResp{ErrorCode: kerr.CoordinatorNotAvailable.Code}, nil
	}
	return &brokerop.ShareGroupHeartbeatResp{ErrorCode: r.ErrorCode, ErrorMessage: r.ErrorMessage, MemberID: r.MemberID, MemberEpoch: r.MemberEpoch,
		HeartbeatIntervalMs: int32(r.HeartbeatInterval / time.Millisecond), HasAssignment: r.HasAssignment, Assignment: opTPs(r.Assignment)}, nil
}

// ShareGroupDescribe serves ShareGroupDescribe.
func (b *Broker) ShareGroupDescribe(_ context.Context, req *brokerop.ShareGroupDescribeReq) (*brokerop.ShareGroupDescribeResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.ShareGroupDescribeResp{}
	err := b.shareCo().Do(func(m *share.Machine, _ time.Time) {
		for _, g := range req.Groups {
			d := brokerop.ShareGroupDescription{Group: g}
			desc, ok := m.Describe(g)
			if !ok {
				d.ErrorCode = kerr.GroupIDNotFound.Code
				resp.Groups = append(resp.Groups, d)
				continue
			}
			d.State, d.Epoch, d.AssignmentEpoch = desc.State, desc.Epoch, desc.AssignmentEpoch
			for _, mem := range desc.Members {
				d.Members = append(d.Members, brokerop.ShareMemberDescription{MemberID: mem.ID, Rack: mem.Rack, Epoch: mem.Epoch, ClientID: mem.ClientID,
					ClientHost: mem.ClientHost, Topics: mem.Topics, Assigned: opTPs(mem.Assigned)})
			}
			resp.Groups = append(resp.Groups, d)
		}
	})
	if err != nil {
		return nil, err
	}
	return resp, nil
}

// shareBounds reads the log start offset and the end share groups read to of partitions:
// the high watermark, or with iso 1 (read_committed) the last stable offset. An error code
// per partition: UNKNOWN_TOPIC_OR_PARTITION when it is not here.
func (b *Broker) shareBounds(ctx context.Context, tps []share.TP, iso int8) ([]share.Bounds, []int16, error) {
	lreq := &brokerop.ListOffsetsReq{IsolationLevel: iso}
	for _, tp := range tps {
		lreq.Partitions = append(lreq.Partitions,
			brokerop.ListOffsetsPartition{Topic: tp.Topic, Partition: tp.Partition, Timestamp: -2},
			brokerop.ListOffsetsPartition{Topic: tp.Topic, Partition: tp.Partition, Timestamp: -1})
	}
	bounds, codes := make([]share.Bounds, len(tps)), make([]int16, len(tps))
	if len(tps) == 0 {
		return bounds, codes, nil
	}
	lresp, err := b.shareReader().ListOffsets(ctx, lreq)
	if err != nil {
		return nil, nil, err
	}
	for i := range tps {
		lo, hi := lresp.Partitions[2*i], lresp.Partitions[2*i+1]
		if lo.ErrorCode != 0 {
			codes[i] = lo.ErrorCode
			continue
		}
		if hi.ErrorCode != 0 {
			codes[i] = hi.ErrorCode
			continue
		}
		bounds[i] = share.Bounds{LogStart: lo.Offset, HighWatermark: hi.Offset}
	}
	return bounds, codes, nil
}

// batchSpans lists the whole v2 record batches at the start of b as offset spans, the
// last one cut at end (exclusive; a batch from end on is left out), and where each batch
// ends in b.
func batchSpans(b []byte, end int64) (spans []share.Span, ends []int) {
	for off := 0; off+27 <= len(b); {
		n := int(int32(binary.BigEndian.Uint32(b[off+8:])))
		if n <= 0 || off+12+n > len(b) {
			break
		}
		base := int64(binary.BigEndian.Uint64(b[off:]))
		last := base + int64(int32(binary.BigEndian.Uint32(b[off+23:])))
		off += 12 + n
		if base >= end || last < base {
			break
		}
		spans, ends = append(spans, share.Span{First: base, Last: min(last, end-1)}), append(ends, off)
	}
	return spans, ends
}

// cutAfter is the length of the prefix of a read that ends with the batch holding offset.
func cutAfter(spans []share.Span, ends []int, offset int64) int {
	for i, sp := range spans {
		if sp.Last >= offset {
			return ends[i]
		}
	}
	if len(ends) == 0 {
		return 0
	}
	return ends[len(ends)-1]
}

// ShareFetch serves ShareFetch: the session update, the piggy-backed acknowledgements, then
// for each partition of the session a read of this broker's log from the share partition's
// first available offset and the acquisition of what was read. With nothing acquired and
// MaxWaitMs > 0 it waits (once) for new records past the in-flight windows, for records of
// the group freed meanwhile or for the next lock expiry of its partitions, and tries again.
func (b *Broker) ShareFetch(ctx context.Context, req *brokerop.ShareFetchReq) (*brokerop.ShareFetchResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.ShareFetchResp{}
	hasAcks := false
	for _, p := range req.Partitions {
		hasAcks = hasAcks || len(p.Acks) > 0
	}
	adds := make([]share.TP, len(req.Partitions))
	for i, p := range req.Partitions {
		adds[i] = share.TP{Topic: p.Topic, Partition: p.Partition}
	}
	var parts []share.TP
	ackCodes := map[share.TP]int16{}
	err := b.shareCo().Do(func(m *share.Machine, now time.Time) {
		resp.LockMs = int32(m.LockDuration(req.Group) / time.Millisecond)
		code, tps := m.Session(now, req.Group, req.MemberID, req.SessionEpoch, adds, shareTPs(req.Forgotten), hasAcks)
		if code != 0 {
			resp.ErrorCode = code
			return
		}
		for _, p := range req.Partitions {
			if len(p.Acks) > 0 {
				tp := share.TP{Topic: p.Topic, Partition: p.Partition}
				ackCodes[tp] = m.Acknowledge(now, req.Group, req.MemberID, share.PartAcks{TP: tp, Batches: ackBatches(p.Acks)}, req.Renew)
			}
		}
		if req.SessionEpoch == -1 {
			m.CloseSession(now, req.Group, req.MemberID)
			return
		}
		if !m.HasGroup(req.Group) {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return
		}
		parts = tps
	})
	if err != nil {
		return &brokerop.ShareFetchResp{ErrorCode: kerr.CoordinatorNotAvailable.Code}, nil
	}
	if resp.ErrorCode != 0 {
		return resp, nil
	}
	answer := map[share.TP]*brokerop.ShareFetchPartitionResp{}
	get := func(tp share.TP) *brokerop.ShareFetchPartitionResp {
		if a := answer[tp]; a != nil {
			return a
		}
		a := &brokerop.ShareFetchPartitionResp{Topic: tp.Topic, Partition: tp.Partition}
		answer[tp] = a
		return a
	}
	for tp, code := range ackCodes {
		get(tp).AckErrorCode = code
	}
	if len(parts) > 0 && req.SessionEpoch != -1 {
		if err := b.shareAcquire(ctx, req, parts, get); err != nil {
			return nil, err
		}
	}
	// The answer: the partitions with something to say, in the session's order, plus
	// every partition of a new session.
	seen := map[share.TP]bool{}
	for _, tp := range parts {
		seen[tp] = true
		if a := answer[tp]; a != nil {
			resp.Partitions = append(resp.Partitions, *a)
		} else if req.SessionEpoch == 0 {
			resp.Partitions = append(resp.Partitions, brokerop.ShareFetchPartitionResp{Topic: tp.Topic, Partition: tp.Partition})
		}
	}
	for _, tp := range adds {
		if a := answer[tp]; a != nil && !seen[tp] {
			seen[tp] = true
			resp.Partitions = append(resp.Partitions, *a)
		}
	}
	return resp, nil
}

// shareAcquire reads and acquires records of the session's partitions for the member.
func (b *Broker) shareAcquire(ctx context.Context, req *brokerop.ShareFetchReq, parts []share.TP, get func(share.TP) *brokerop.ShareFetchPartitionResp) error {
	maxRecords := int(req.MaxRecords)
	if maxRecords <= 0 {
		maxRecords = defaultShareMaxRecords
	}
	maxBytes := req.MaxBytes
	if maxBytes <= 0 {
		maxBytes = 50 << 20
	}
	partMax := map[share.TP]int32{}
	for _, p := range req.Partitions {
		if p.MaxBytes > 0 {
			partMax[share.TP{Topic: p.Topic, Partition: p.Partition}] = p.MaxBytes
		}
	}
	var iso int8
	if err := b.shareCo().Do(func(m *share.Machine, _ time.Time) {
		if m.ReadCommitted(req.Group) {
			iso = 1
		}
	}); err != nil {
		return err
	}
	for attempt := 0; attempt < 2; attempt++ {
		var freed <-chan struct{}
		if attempt == 0 && req.MaxWaitMs > 0 {
			freed = b.shareCo().Freed(req.Group) // before the look: nothing freed after it is missed
		}
		bounds, codes, err := b.shareBounds(ctx, parts, iso)
		if err != nil {
			return err
		}
		var offsets []int64
		var want []int
		var windowEnds []brokerop.FetchPartition
		var untilLock time.Duration // to the next acquisition lock expiry of these partitions (0: none)
		if err := b.shareCo().Do(func(m *share.Machine, now time.Time) {
			if freed != nil {
				if d := m.NextLockDeadline(req.Group, parts); !d.IsZero() {
					untilLock = max(d.Sub(now), 0) + time.Millisecond
				}
			}
			for i, tp := range parts {
				if codes[i] != 0 {
					continue
				}
				off, ok := m.FetchOffset(req.Group, tp, bounds[i])
				if ok {
					offsets, want = append(offsets, off), append(want, i)
				} else if off <= bounds[i].HighWatermark {
					windowEnds = append(windowEnds, brokerop.FetchPartition{Topic: tp.Topic, Partition: tp.Partition, Offset: off, MaxBytes: 1})
				}
			}
		}); err != nil {
			return err
		}
		for i, code := range codes {
			if code != 0 {
				get(parts[i]).ErrorCode = code
			}
		}
		acquired := 0
		if len(want) > 0 {
			freq := &brokerop.FetchReq{MaxBytes: maxBytes, IsolationLevel: iso}
			for k, i := range want {
				pm := partMax[parts[i]]
				if pm <= 0 {
					pm = 1 << 20
				}
				freq.Partitions = append(freq.Partitions, brokerop.FetchPartition{Topic: parts[i].Topic, Partition: parts[i].Partition, Offset: offsets[k], MaxBytes: pm})
			}
			fresp, err := b.shareReader().Fetch(ctx, freq)
			if err != nil {
				return err
			}
			if err := b.shareCo().Do(func(m *share.Machine, now time.Time) {
				budget := maxRecords
				for k, i := range want {
					fp := fresp.Partitions[k]
					tp := parts[i]
					if fp.ErrorCode != 0 {
						get(tp).ErrorCode = fp.ErrorCode
						continue
					}
					if budget <= 0 {
						continue
					}
					end := fp.HighWatermark
					if iso == 1 {
						end = fp.LastStableOffset // and aborted batches were left out of the read
					}
					spans, ends := batchSpans(fp.Records, end)
					runs := m.Acquire(now, req.Group, req.MemberID, tp, spans, budget)
					if len(runs) == 0 {
						continue
					}
					for _, r := range runs {
						budget -= int(r.Last - r.First + 1)
						acquired += int(r.Last - r.First + 1)
					}
					cut := cutAfter(spans, ends, runs[len(runs)-1].Last)
					a := get(tp)
					a.Records = append([]byte(nil), fp.Records[:cut]...)
					for _, r := range runs {
						a.Acquired = append(a.Acquired, brokerop.ShareAcquired{First: r.First, Last: r.Last, Count: r.Count})
					}
				}
			}); err != nil {
				return err
			}
		}
		if acquired > 0 || attempt == 1 || req.MaxWaitMs <= 0 || len(windowEnds)+len(want) == 0 {
			return nil
		}
		// Nothing to hand out: wait for records past the windows, for records of the group
		// freed meanwhile (released, a member gone) or for the next lock expiry here (the next
		// look's Tick frees its records), or the wait's end.
		wait := &brokerop.FetchReq{MaxWaitMs: req.MaxWaitMs, MinBytes: 1, MaxBytes: 1, IsolationLevel: iso, Partitions: windowEnds}
		for k, i := range want {
			wait.Partitions = append(wait.Partitions, brokerop.FetchPartition{Topic: parts[i].Topic, Partition: parts[i].Partition, Offset: offsets[k], MaxBytes: 1})
		}
		if err := b.shareWait(ctx, wait, freed, untilLock); err != nil {
			return err
		}
	}
	return nil
}

// shareWait is ShareFetch's long poll: the Fetch wait for appends, ended early when freed
// is closed or after untilLock (> 0). Records freed by an acknowledgement or a lock expiry
// are not appends: at the end of the input nothing else would wake the wait before its
// MaxWaitMs, and a lock expiry is only seen by a later call's Tick.
func (b *Broker) shareWait(ctx context.Context, wait *brokerop.FetchReq, freed <-chan struct{}, untilLock time.Duration) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if untilLock > 0 {
		var cancelLock context.CancelFunc
		wctx, cancelLock = context.WithTimeout(wctx, untilLock)
		defer cancelLock()
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-freed:
			cancel()
		case <-done:
		}
	}()
	_, err := b.shareReader().Fetch(wctx, wait)
	return err
}

// ShareAcknowledge serves ShareAcknowledge (SessionEpoch 0 is INVALID_SHARE_SESSION_EPOCH:
// a session is opened by ShareFetch; -1 applies the acknowledgements and closes it).
func (b *Broker) ShareAcknowledge(_ context.Context, req *brokerop.ShareAcknowledgeReq) (*brokerop.ShareAcknowledgeResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.ShareAcknowledgeResp{}
	if req.SessionEpoch == 0 {
		resp.ErrorCode = kerr.InvalidShareSessionEpoch.Code
		return resp, nil
	}
	err := b.shareCo().Do(func(m *share.Machine, now time.Time) {
		resp.LockMs = int32(m.LockDuration(req.Group) / time.Millisecond)
		if code, _ := m.Session(now, req.Group, req.MemberID, req.SessionEpoch, nil, nil, true); code != 0 {
			resp.ErrorCode = code
			return
		}
		for _, p := range req.Partitions {
			tp := share.TP{Topic: p.Topic, Partition: p.Partition}
			code := m.Acknowledge(now, req.Group, req.MemberID, share.PartAcks{TP: tp, Batches: ackBatches(p.Acks)}, req.Renew)
			resp.Partitions = append(resp.Partitions, brokerop.ShareAckPartitionResp{Topic: p.Topic, Partition: p.Partition, ErrorCode: code})
		}
		if req.SessionEpoch == -1 {
			m.CloseSession(now, req.Group, req.MemberID)
		}
	})
	if err != nil {
		return &brokerop.ShareAcknowledgeResp{ErrorCode: kerr.CoordinatorNotAvailable.Code}, nil
	}
	return resp, nil
}

// DescribeShareGroupOffsets serves DescribeShareGroupOffsets: each partition's start offset
// (-1 without state) and its lag (high watermark minus start offset, a bound on the records
// not yet delivered and acknowledged).
func (b *Broker) DescribeShareGroupOffsets(ctx context.Context, req *brokerop.DescribeShareGroupOffsetsReq) (*brokerop.DescribeShareGroupOffsetsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.DescribeShareGroupOffsetsResp{}
	for _, g := range req.Groups {
		gr := brokerop.ShareOffsetsGroupResp{Group: g.Group}
		var tps []share.TP
		var starts []int64
		var has []bool
		known := true
		if err := b.shareCo().Do(func(m *share.Machine, _ time.Time) {
			if !m.HasGroup(g.Group) {
				known = false
				return
			}
			tps = shareTPs(g.Partitions)
			if g.All {
				tps = m.Partitions(g.Group)
			}
			for _, tp := range tps {
				s, ok := m.StartOffset(g.Group, tp)
				starts, has = append(starts, s), append(has, ok)
			}
		}); err != nil {
			return nil, err
		}
		if !known {
			gr.ErrorCode = kerr.GroupIDNotFound.Code
			resp.Groups = append(resp.Groups, gr)
			continue
		}
		bounds, codes, err := b.shareBounds(ctx, tps, 0)
		if err != nil {
			return nil, err
		}
		for i, tp := range tps {
			o := brokerop.ShareOffsetResp{Topic: tp.Topic, Partition: tp.Partition, StartOffset: -1, LeaderEpoch: -1, Lag: -1}
			switch {
			case codes[i] != 0:
				o.ErrorCode = codes[i]
			case has[i]:
				o.StartOffset, o.LeaderEpoch = starts[i], 0
				o.Lag = max(bounds[i].HighWatermark-max(starts[i], bounds[i].LogStart), 0)
			}
			gr.Partitions = append(gr.Partitions, o)
		}
		resp.Groups = append(resp.Groups, gr)
	}
	return resp, nil
}

// AlterShareGroupOffsets serves AlterShareGroupOffsets: only while the group has no members
// (NON_EMPTY_GROUP); each partition must exist here (UNKNOWN_TOPIC_OR_PARTITION).
func (b *Broker) AlterShareGroupOffsets(ctx context.Context, req *brokerop.AlterShareGroupOffsetsReq) (*brokerop.AlterShareGroupOffsetsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.AlterShareGroupOffsetsResp{}
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp, nil
	}
	err := b.shareCo().Do(func(m *share.Machine, _ time.Time) {
		if d, ok := m.Describe(req.Group); ok && len(d.Members) > 0 {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return
		}
		for _, p := range req.Partitions {
			r := brokerop.ShareOffsetResult{Topic: p.Topic, Partition: p.Partition}
			switch {
			case b.lookup(p.Topic, p.Partition) == nil:
				r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			case p.StartOffset < 0:
				r.ErrorCode = kerr.InvalidRequest.Code
			default:
				r.ErrorCode = m.AlterOffset(req.Group, share.TP{Topic: p.Topic, Partition: p.Partition}, p.StartOffset)
			}
			resp.Partitions = append(resp.Partitions, r)
		}
	})
	if err != nil {
		return &brokerop.AlterShareGroupOffsetsResp{ErrorCode: kerr.CoordinatorNotAvailable.Code}, nil
	}
	return resp, nil
}

// DeleteShareGroupOffsets serves DeleteShareGroupOffsets.
func (b *Broker) DeleteShareGroupOffsets(_ context.Context, req *brokerop.DeleteShareGroupOffsetsReq) (*brokerop.DeleteShareGroupOffsetsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.DeleteShareGroupOffsetsResp{}
	err := b.shareCo().Do(func(m *share.Machine, _ time.Time) {
		if d, ok := m.Describe(req.Group); !ok {
			resp.ErrorCode = kerr.GroupIDNotFound.Code
			return
		} else if len(d.Members) > 0 {
			resp.ErrorCode = kerr.NonEmptyGroup.Code
			return
		}
		for _, t := range req.Topics {
			r := brokerop.ShareTopicResult{Topic: t}
			if _, ok := b.shareTopics(t); !ok {
				r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			} else {
				r.ErrorCode = m.DeleteOffsets(req.Group, t)
			}
			resp.Topics = append(resp.Topics, r)
		}
	})
	if err != nil {
		return &brokerop.DeleteShareGroupOffsetsResp{ErrorCode: kerr.CoordinatorNotAvailable.Code}, nil
	}
	return resp, nil
}
