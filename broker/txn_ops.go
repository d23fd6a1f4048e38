package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/txn"
	"github.com/twmb/franz-go/pkg/kerr"
)

// The transaction coordinator's ops (brokerop.ProducerService). The coordinator (package
// broker/txn) keeps its log under Dir/txn, takes producer ids from the broker's counter and
// writes markers into the broker's partitions (WriteTxnMarkers); committed transactional
// offsets go to the OffsetSink set with SetTxnOffsetSink (the group coordinator).

// TxnOffsetCommitter is what the group coordinator offers the transaction coordinator:
// applying offsets of a committed transaction to a group, durably, without member checks.
type TxnOffsetCommitter interface {
	CommitTxnOffsets(ctx context.Context, group string, topics []brokerop.OffsetCommitTopic) error
}

// TxnMemberChecker is implemented by a TxnOffsetCommitter that fences transactional offset
// commits by group membership (KIP-447; group.Coordinator, the controller): the Kafka error
// code refusing the membership (generation -1, member "" and instance "" for none), or 0.
type TxnMemberChecker interface {
	CheckTxnMember(ctx context.Context, group string, generation int32, memberID, instanceID string) (int16, error)
}

// SetTxnOffsetSink sets where offsets committed in transactions go (cmd/internal/cli wires
// the group coordinator). Until it is set, committing a transaction with offsets waits. If g
// is a TxnMemberChecker, TxnOffsetCommit is fenced with it.
func (b *Broker) SetTxnOffsetSink(g TxnOffsetCommitter) {
	if ch, ok := g.(TxnMemberChecker); ok {
		b.txnMembers.Store(&ch)
	}
	if b.txn != nil {
		b.txn.SetOffsetSink(offsetSink{g})
	}
}

// NewTxnOffsetSink adapts a TxnOffsetCommitter to the transaction coordinator's OffsetSink
// (broker/controller gives it to the coordinator it runs on the metadata quorum).
func NewTxnOffsetSink(g TxnOffsetCommitter) txn.OffsetSink { return offsetSink{g} }

type offsetSink struct{ g TxnOffsetCommitter }

func (s offsetSink) CommitTxnOffsets(ctx context.Context, offs []txn.Offset) error {
	for len(offs) > 0 {
		group := offs[0].Group
		n := 1
		for n < len(offs) && offs[n].Group == group {
			n++
		}
		var topics []brokerop.OffsetCommitTopic
		for _, o := range offs[:n] {
			if len(topics) == 0 || topics[len(topics)-1].Topic != o.Topic {
				topics = append(topics, brokerop.OffsetCommitTopic{Topic: o.Topic})
			}
			t := &topics[len(topics)-1]
			t.Partitions = append(t.Partitions, brokerop.OffsetCommitPartition{Partition: o.Partition, Offset: o.Offset, LeaderEpoch: o.LeaderEpoch, Metadata: o.Metadata})
		}
		if err := s.g.CommitTxnOffsets(ctx, group, topics); err != nil {
			return err
		}
		offs = offs[n:]
	}
	return nil
}

// openTxn opens the transaction coordinator on its journal: a member of the broker's commit
// journal under Dir/txn/journal (txn.WALJournal), so that its records and the partitions'
// appends share one durable order and one group commit (a txn.log of the earlier layout is
// moved into it at the first open).
//
// After an unclean stop (no clean-stop file, see closeTxn) the coordinator aborts every
// transaction that was Ongoing (txn.CoordinatorConfig.AbortOngoing): transactional produces
// of transaction.version 2 are answered before their fsync (txnAckedUnsynced), so such a
// transaction may have lost acknowledged records. The file is removed, durably, before
// anything is served, so a later crash is never taken for a clean stop.
func (b *Broker) openTxn() error {
	dir := filepath.Join(b.cfg.Dir, "txn")
	clean, err := b.takeCleanStop(dir)
	if err != nil {
		return err
	}
	j, recs, err := txn.OpenWALJournal(b.store, filepath.Join(dir, "journal"), b.fs, dir, b.log)
	if err != nil {
		return err
	}
	c, err := txn.New(txn.CoordinatorConfig{
		Logger: b.log, Now: b.cfg.Now,
		NewPID: b.allocProducerID, Markers: b, CheckInterval: b.cfg.TxnCheckInterval,
		AbortOngoing: !clean,
	}, j, recs)
	if err != nil {
		j.Close()
		return err
	}
	b.txn = c
	return nil
}

// cleanStopName is the file under Dir/txn that says the broker's last stop was clean: Close
// writes it (made durable) once every log and the commit journal closed without error, and
// Open removes it (durably) before it serves anything.
const cleanStopName = "clean-stop"

// takeCleanStop reports whether dir holds the clean-stop file and removes it, durably.
func (b *Broker) takeCleanStop(dir string) (bool, error) {
	names, err := b.fs.ReadDir(dir)
	if err != nil || !slices.Contains(names, cleanStopName) {
		return false, nil // no file (or no directory yet: a first open): not clean
	}
	if err := b.fs.Remove(filepath.Join(dir, cleanStopName)); err != nil {
		return false, fmt.Errorf("txn: remove %s: %w", cleanStopName, err)
	}
	if err := b.fs.SyncDir(dir); err != nil {
		return false, fmt.Errorf("txn: remove %s: %w", cleanStopName, err)
	}
	return true, nil
}

// writeCleanStop records a clean stop (see cleanStopName): called by Close once everything
// is durable.
func (b *Broker) writeCleanStop() error {
	dir := filepath.Join(b.cfg.Dir, "txn")
	if err := b.fs.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := b.fs.OpenFile(filepath.Join(dir, cleanStopName), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	err = f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = b.fs.SyncDir(dir)
	}
	return err
}

// SetTxnCoordinator makes the broker serve the transaction ops with co instead of its own
// coordinator (in a cluster, the controller's coordinator whose journal is the metadata
// quorum, set while this broker leads it). nil: this broker is no coordinator, the ops
// answer COORDINATOR_NOT_AVAILABLE. The broker's own coordinator is never used again after
// the first call; it still verifies nothing unless SetTxnVerifier says so.
func (b *Broker) SetTxnCoordinator(co *txn.Coordinator) {
	b.txnExt.Store(&extCoordinator{co: co})
}

// extCoordinator is what SetTxnCoordinator installed.
type extCoordinator struct{ co *txn.Coordinator }

// noCoordinator answers every op COORDINATOR_NOT_AVAILABLE (a closed coordinator).
var noCoordinator = func() *txn.Coordinator {
	c, _ := txn.New(txn.CoordinatorConfig{CheckInterval: -1, NewPID: func() (int64, error) { return -1, errors.New("no coordinator") },
		Markers: noMarkers{}}, closedJournal{}, nil)
	_ = c.Close()
	return c
}()

type noMarkers struct{}

func (noMarkers) WriteTxnMarkers(context.Context, int64, int16, bool, []txn.TP) error {
	return errors.New("no coordinator")
}

type closedJournal struct{}

func (closedJournal) Append(...*txn.Txn) error      { return errors.New("no coordinator") }
func (closedJournal) MaybeCompact([]*txn.Txn) error { return nil }
func (closedJournal) Close() error                  { return nil }

// coord is the coordinator serving the transaction ops here.
func (b *Broker) coord() *txn.Coordinator {
	if x := b.txnExt.Load(); x != nil {
		if x.co == nil {
			return noCoordinator
		}
		return x.co
	}
	return b.txn
}

// TxnCheck runs the transaction coordinator's periodic pass now: it finishes decided
// transactions and aborts timed-out ones (tests drive it on a fake clock).
func (b *Broker) TxnCheck(ctx context.Context) { b.txn.Check(ctx) }

// InitTxnProducerID serves InitProducerID for a transactional id.
func (b *Broker) InitTxnProducerID(ctx context.Context, req *brokerop.InitTxnProducerIDReq) (*brokerop.InitProducerIDResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if req.TransactionalID == "" || (req.ProducerID < 0) != (req.ProducerEpoch < 0) {
		return &brokerop.InitProducerIDResp{ErrorCode: kerr.InvalidRequest.Code, ProducerID: -1, ProducerEpoch: -1}, nil
	}
	pid, epoch, code := b.coord().InitProducerID(ctx, req.TransactionalID, req.TimeoutMs, req.ProducerID, req.ProducerEpoch)
	return &brokerop.InitProducerIDResp{ErrorCode: code, ProducerID: pid, ProducerEpoch: epoch}, nil
}

// AddPartitionsToTxn adds partitions to a transaction; unknown partitions are
// UNKNOWN_TOPIC_OR_PARTITION and then nothing is added.
func (b *Broker) AddPartitionsToTxn(ctx context.Context, req *brokerop.AddPartitionsToTxnReq) (*brokerop.TxnResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	parts := make([]txn.TP, 0, len(req.Partitions))
	for _, p := range req.Partitions {
		if b.lookup(p.Topic, p.Partition) == nil {
			return &brokerop.TxnResp{ErrorCode: kerr.UnknownTopicOrPartition.Code}, nil
		}
		parts = append(parts, txn.TP{Topic: p.Topic, Partition: p.Partition})
	}
	return &brokerop.TxnResp{ErrorCode: b.coord().AddPartitions(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, parts)}, nil
}

// AddOffsetsToTxn adds a group to a transaction.
func (b *Broker) AddOffsetsToTxn(ctx context.Context, req *brokerop.AddOffsetsToTxnReq) (*brokerop.TxnResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if req.Group == "" {
		return &brokerop.TxnResp{ErrorCode: kerr.InvalidGroupID.Code}, nil
	}
	return &brokerop.TxnResp{ErrorCode: b.coord().AddOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group)}, nil
}

// TxnOffsetCommit records offsets that reach the group when the transaction commits.
func (b *Broker) TxnOffsetCommit(ctx context.Context, req *brokerop.TxnOffsetCommitReq) (*brokerop.TxnResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if ch := b.txnMembers.Load(); ch != nil && (req.Generation >= 0 || req.MemberID != "" || req.InstanceID != "") {
		code, err := (*ch).CheckTxnMember(ctx, req.Group, req.Generation, req.MemberID, req.InstanceID)
		if err != nil {
			return &brokerop.TxnResp{ErrorCode: kerr.CoordinatorNotAvailable.Code}, nil
		}
		if code != 0 {
			return &brokerop.TxnResp{ErrorCode: code}, nil
		}
	}
	var offs []txn.Offset
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			offs = append(offs, txn.Offset{Group: req.Group, Topic: t.Topic, Partition: p.Partition, Offset: p.Offset, LeaderEpoch: p.LeaderEpoch, Metadata: p.Metadata})
		}
	}
	if req.AddGroup && b.TransactionVersion() >= 2 {
		return &brokerop.TxnResp{ErrorCode: b.coord().AddAndCommitOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offs)}, nil
	}
	return &brokerop.TxnResp{ErrorCode: b.coord().CommitOffsets(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group, offs)}, nil
}

// EndTxn commits or aborts a transaction; it answers once the markers are durable.
func (b *Broker) EndTxn(ctx context.Context, req *brokerop.EndTxnReq) (*brokerop.TxnResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	if req.Bump && b.TransactionVersion() >= 2 {
		pid, epoch, code := b.coord().EndV2(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit)
		return &brokerop.TxnResp{ErrorCode: code, ProducerID: pid, ProducerEpoch: epoch}, nil
	}
	return &brokerop.TxnResp{ErrorCode: b.coord().End(ctx, req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Commit), ProducerID: -1, ProducerEpoch: -1}, nil
}

// TransactionVersion is the transaction.version this broker serves (KIP-890 part 2 is
// version 2): 2 with its own coordinator, the single-broker path, where a transactional
// produce adds its partition (ProduceReq.TxnAdd), TxnOffsetCommit its group
// (TxnOffsetCommitReq.AddGroup) and EndTxn bumps the epoch (EndTxnReq.Bump); 1 when the
// coordinator runs elsewhere (a cluster: the metadata quorum's, see broker/txn's doc) or
// replicated partitions verify transactional batches through it. The gateway advertises
// it as ApiVersions' finalized feature transaction.version.
func (b *Broker) TransactionVersion() int16 {
	if b.txn == nil || b.txnExt.Load() != nil || b.txnVerify.Load() != nil {
		return 1
	}
	return 2
}

// ListTransactions lists the coordinator's transactions.
func (b *Broker) ListTransactions(_ context.Context, req *brokerop.ListTransactionsReq) (*brokerop.ListTransactionsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.ListTransactionsResp{}
	for _, t := range b.coord().List(req.States, req.ProducerIDs, req.MinDurationMs, req.Group) {
		l := brokerop.TxnListing{TransactionalID: t.ID, ProducerID: t.ProducerID, State: t.State.String()}
		for _, o := range t.Offsets {
			if req.Group != "" && o.Group == req.Group {
				l.PendingOffsets = append(l.PendingOffsets, brokerop.TxnPartition{Topic: o.Topic, Partition: o.Partition})
			}
		}
		resp.Transactions = append(resp.Transactions, l)
	}
	return resp, nil
}

// DescribeTransactions describes transactional ids.
func (b *Broker) DescribeTransactions(_ context.Context, req *brokerop.DescribeTransactionsReq) (*brokerop.DescribeTransactionsResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.DescribeTransactionsResp{}
	for _, id := range req.TransactionalIDs {
		d := brokerop.TxnDescription{TransactionalID: id, StartMs: -1, ProducerID: -1, ProducerEpoch: -1}
		t, ok := b.coord().Describe(id)
		if !ok {
			d.ErrorCode = kerr.TransactionalIDNotFound.Code
		} else {
			d.State, d.TimeoutMs, d.ProducerID, d.ProducerEpoch = t.State.String(), t.TimeoutMs, t.ProducerID, t.Epoch
			if t.State == txn.Ongoing {
				d.StartMs = t.StartMs
			}
			for _, p := range t.Partitions {
				d.Partitions = append(d.Partitions, brokerop.TxnPartition{Topic: p.Topic, Partition: p.Partition})
			}
		}
		resp.Transactions = append(resp.Transactions, d)
	}
	return resp, nil
}

// DescribeProducers lists each partition's active producers from its producer state.
func (b *Broker) DescribeProducers(_ context.Context, req *brokerop.DescribeProducersReq) (*brokerop.DescribeProducersResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	resp := &brokerop.DescribeProducersResp{}
	for _, tp := range req.Partitions {
		r := brokerop.DescribeProducersPartition{Topic: tp.Topic, Partition: tp.Partition}
		p := b.lookup(tp.Topic, tp.Partition)
		if p == nil || p.deleted.Load() {
			r.ErrorCode = kerr.UnknownTopicOrPartition.Code
			resp.Partitions = append(resp.Partitions, r)
			continue
		}
		if g := p.group.Load(); g != nil { // replicated: the applied state
			g.mu.Lock()
			r.Producers = describeProducers(g.prods.producers)
			g.mu.Unlock()
			slices.SortFunc(r.Producers, func(a, c brokerop.ProducerInfo) int { return cmp.Compare(a.ProducerID, c.ProducerID) })
			resp.Partitions = append(resp.Partitions, r)
			continue
		}
		if p.replicated() {
			r.ErrorCode = kerr.NotLeaderForPartition.Code
			resp.Partitions = append(resp.Partitions, r)
			continue
		}
		l, err := b.useLog(p, false)
		if err == nil && l != nil {
			s := p.producerState()
			s.mu.Lock()
			if err = s.loadLocked(b, p, l); err == nil {
				r.Producers = describeProducers(s.producers)
			}
			s.mu.Unlock()
		}
		p.logMu.RUnlock()
		if err != nil {
			r.ErrorCode = b.storageError(p, "describe producers", err)
		}
		slices.SortFunc(r.Producers, func(a, c brokerop.ProducerInfo) int { return cmp.Compare(a.ProducerID, c.ProducerID) })
		resp.Partitions = append(resp.Partitions, r)
	}
	return resp, nil
}

// describeProducers renders producer state entries for DescribeProducers.
func describeProducers(prods map[int64]*producerEntry) []brokerop.ProducerInfo {
	var out []brokerop.ProducerInfo
	for id, e := range prods {
		pi := brokerop.ProducerInfo{ProducerID: id, ProducerEpoch: int32(e.epoch), LastSequence: -1, LastTimestamp: e.lastTs, CoordinatorEpoch: -1, TxnStartOffset: e.txnFirst}
		if n := len(e.batches); n > 0 {
			pi.LastSequence = e.batches[n-1].lastSeq
		}
		out = append(out, pi)
	}
	return out
}

// WriteMarkers serves the coordinator's WriteTxnMarkers (brokerop.OpWriteMarkers) on the
// broker that leads or owns the partitions: NOT_LEADER_OR_FOLLOWER when one is not led here.
func (b *Broker) WriteMarkers(ctx context.Context, req *brokerop.WriteMarkersReq) (*brokerop.TxnResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	parts := make([]txn.TP, len(req.Partitions))
	for i, p := range req.Partitions {
		parts[i] = txn.TP{Topic: p.Topic, Partition: p.Partition}
	}
	err := b.WriteTxnMarkers(ctx, req.ProducerID, req.ProducerEpoch, req.Commit, parts)
	switch {
	case err == nil:
		return &brokerop.TxnResp{}, nil
	case errors.Is(err, ErrNotPartitionLeader):
		return &brokerop.TxnResp{ErrorCode: kerr.NotLeaderForPartition.Code}, nil
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &brokerop.TxnResp{ErrorCode: kerr.RequestTimedOut.Code}, nil
	}
	return nil, err
}

// VerifyTxn answers whether a transactional batch may be appended, from the coordinator
// serving here (brokerop.OpVerifyTxn).
func (b *Broker) VerifyTxn(_ context.Context, req *brokerop.VerifyTxnReq) (*brokerop.TxnResp, error) {
	if b.closed.Load() {
		return nil, ErrClosed
	}
	return &brokerop.TxnResp{ErrorCode: b.coord().Verify(req.ProducerID, req.ProducerEpoch, txn.TP{Topic: req.Topic, Partition: req.Partition})}, nil
}
