package broker

import (
	"context"
	"encoding/binary"
	"hash/crc32"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/twmb/franz-go/pkg/kerr"
)

func txnEnv(t *testing.T) *env {
	return newEnv(t, func(c *Config) { c.TxnCheckInterval = -1 })
}

// txnTopicEnv is txnEnv with topic t of parts partitions created.
func txnTopicEnv(t *testing.T, parts int32) *env {
	t.Helper()
	e := txnEnv(t)
	e.create("t", parts, nil)
	return e
}

// txnBatch is a transactional idempotent batch.
func txnBatch(pid int64, epoch int16, seq int32, values ...string) []byte {
	b := idemBatch(pid, epoch, seq, values...)
	binary.BigEndian.PutUint16(b[offAttributes:], binary.BigEndian.Uint16(b[offAttributes:])|attrTransactional)
	binary.BigEndian.PutUint32(b[offCRC:], crc32.Checksum(b[offAttributes:], castagnoli))
	return b
}

// txnEnvWithBatch makes a txnEnv with topic t of one partition and a transaction id
// (timeoutMs) open on it holding one batch of v: the env and the transaction's producer.
func txnEnvWithBatch(t *testing.T, id string, timeoutMs int32, v string) (*env, int64, int16) {
	t.Helper()
	e := txnTopicEnv(t, 1)
	pid, ep := e.initTxn(id, timeoutMs)
	e.addParts(id, pid, ep, "t", 0)
	e.mustProduce(-1, "t", 0, txnBatch(pid, ep, 0, v))
	return e, pid, ep
}

func (e *env) initTxn(id string, timeoutMs int32) (int64, int16) {
	e.t.Helper()
	resp, err := e.b.InitTxnProducerID(context.Background(), &brokerop.InitTxnProducerIDReq{TransactionalID: id, TimeoutMs: timeoutMs, ProducerID: -1, ProducerEpoch: -1})
	if err != nil || resp.ErrorCode != 0 {
		e.t.Fatalf("InitTxnProducerID %s: %v code %v", id, err, resp)
	}
	return resp.ProducerID, resp.ProducerEpoch
}

func (e *env) addParts(id string, pid int64, epoch int16, topic string, parts ...int32) int16 {
	e.t.Helper()
	req := &brokerop.AddPartitionsToTxnReq{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch}
	for _, p := range parts {
		req.Partitions = append(req.Partitions, brokerop.TxnPartition{Topic: topic, Partition: p})
	}
	resp, err := e.b.AddPartitionsToTxn(context.Background(), req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.ErrorCode
}

func (e *env) endTxn(id string, pid int64, epoch int16, commit bool) int16 {
	e.t.Helper()
	resp, err := e.b.EndTxn(context.Background(), &brokerop.EndTxnReq{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Commit: commit})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.ErrorCode
}

// endTxnV2 is EndTxn v5 under transaction.version 2: the producer id and epoch to continue
// with, and the error code.
func (e *env) endTxnV2(id string, pid int64, epoch int16, commit bool) (int64, int16, int16) {
	e.t.Helper()
	resp, err := e.b.EndTxn(context.Background(), &brokerop.EndTxnReq{TransactionalID: id, ProducerID: pid, ProducerEpoch: epoch, Commit: commit, Bump: true})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.ProducerID, resp.ProducerEpoch, resp.ErrorCode
}

// produceTxn produces records into one partition with acks=-1, with tv2 as a Produce v12
// under transaction.version 2 (the partition added to the transaction by the produce).
func (e *env) produceTxn(tv2 bool, topic string, part int32, records []byte) brokerop.ProducePartitionResp {
	e.t.Helper()
	resp, err := e.b.Produce(context.Background(), &brokerop.ProduceReq{Acks: -1, TxnAdd: tv2, Partitions: []brokerop.ProducePartition{
		{Topic: topic, Partition: part, Records: records}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.Partitions[0]
}

// txnHistory writes into partition 0 of topic: a transaction of producer "a" committed (c1,
// c2), one aborted (x1, x2) around a plain batch of another, non-transactional producer
// (afterAbort runs once it is aborted), and an open transaction of "b" ("open", at offset
// open), which holds the LSO back; then it checks that a batch of "a", which has no ongoing
// transaction, is refused (it would open one no marker ends: INVALID_TXN_STATE, KIP-890).
func (e *env) txnHistory(topic string, afterAbort func(pid int64, ep int16)) (pb int64, eb int16, open int64) {
	e.t.Helper()
	pa, ea := e.initTxn("a", 600000)
	if c := e.addParts("a", pa, ea, topic, 0); c != 0 {
		e.t.Fatalf("add partitions: %d", c)
	}
	e.mustProduce(-1, topic, 0, txnBatch(pa, ea, 0, "c1", "c2"))
	if c := e.endTxn("a", pa, ea, true); c != 0 {
		e.t.Fatalf("commit: %d", c)
	}
	e.addParts("a", pa, ea, topic, 0)
	e.mustProduce(-1, topic, 0, txnBatch(pa, ea, 2, "x1"))
	e.mustProduce(-1, topic, 0, idemBatch(pa+1000, 0, 0, "plain"))
	e.mustProduce(-1, topic, 0, txnBatch(pa, ea, 3, "x2"))
	if c := e.endTxn("a", pa, ea, false); c != 0 {
		e.t.Fatalf("abort: %d", c)
	}
	afterAbort(pa, ea)
	pb, eb = e.initTxn("b", 600000)
	e.addParts("b", pb, eb, topic, 0)
	open = e.mustProduce(-1, topic, 0, txnBatch(pb, eb, 0, "open"))
	e.wantCode(e.produce(-1, topic, 0, txnBatch(pa, ea, 4, "late")), kerr.InvalidTxnState)
	return pb, eb, open
}

// wantIsolation checks partition 0 of topic after txnHistory: read_committed sees c1, c2 and
// plain up to the LSO (open), read_uncommitted everything, and ListOffsets read_committed
// answers the LSO. It returns the read_committed answer.
func (e *env) wantIsolation(topic string, open int64) (got []string, lso, hw int64) {
	e.t.Helper()
	got, lso, hw = e.readIso(topic, 0, 1)
	if want := []string{"c1", "c2", "plain"}; !slices.Equal(got, want) || lso != open {
		e.t.Fatalf("read_committed: %q lso %d (hw %d), want %q lso %d", got, lso, hw, want, open)
	}
	if all, _, _ := e.readIso(topic, 0, 0); !slices.Equal(all, []string{"c1", "c2", "x1", "plain", "x2", "open"}) {
		e.t.Fatalf("read_uncommitted: %q", all)
	}
	if got := e.listLatest(topic, 0, 1); got != open {
		e.t.Fatalf("ListOffsets read_committed: %d, want %d", got, open)
	}
	return got, lso, hw
}

// readIso reads a partition with an isolation level: the values of data records (control
// batches skipped) and the answer's last stable offset.
func (e *env) readIso(topic string, part int32, iso int8) (values []string, lso, hw int64) {
	e.t.Helper()
	from := int64(0)
	for {
		resp, err := e.b.Fetch(context.Background(), &brokerop.FetchReq{MaxBytes: 1 << 30, IsolationLevel: iso,
			Partitions: []brokerop.FetchPartition{{Topic: topic, Partition: part, Offset: from, MaxBytes: 1 << 20}}})
		if err != nil {
			e.t.Fatal(err)
		}
		r := resp.Partitions[0]
		if r.ErrorCode != 0 {
			e.t.Fatalf("fetch: code %d", r.ErrorCode)
		}
		lso, hw = r.LastStableOffset, r.HighWatermark
		if len(r.Records) == 0 {
			return values, lso, hw
		}
		forEachBatch(r.Records, func(batch []byte) {
			h := readBatchHead(batch)
			last := h.baseOffset + int64(h.delta)
			if h.attrs&attrControl == 0 {
				offs, vs := decodeBatches(e.t, batch)
				for i := range offs {
					if offs[i] >= from {
						values = append(values, vs[i])
					}
				}
			}
			from = max(from, last+1)
		})
	}
}

func (e *env) listLatest(topic string, part int32, iso int8) int64 {
	e.t.Helper()
	resp, err := e.b.ListOffsets(context.Background(), &brokerop.ListOffsetsReq{IsolationLevel: iso,
		Partitions: []brokerop.ListOffsetsPartition{{Topic: topic, Partition: part, Timestamp: -1}}})
	if err != nil || resp.Partitions[0].ErrorCode != 0 {
		e.t.Fatalf("list offsets: %v %+v", err, resp)
	}
	return resp.Partitions[0].Offset
}

// Commit, abort, an open transaction: read_committed sees committed data below the LSO only,
// read_uncommitted everything; ListOffsets follows the isolation level.
func TestTxnCommitAbortIsolation(t *testing.T) {
	e := txnTopicEnv(t, 1)
	pid2, ep2, open := e.txnHistory("t", func(pid int64, ep int16) {
		// A retried EndTxn of the same outcome succeeds; the other outcome is INVALID_TXN_STATE.
		if c := e.endTxn("a", pid, ep, false); c != 0 {
			t.Fatalf("abort retry: %d", c)
		}
		if c := e.endTxn("a", pid, ep, true); c != kerr.InvalidTxnState.Code {
			t.Fatalf("commit after abort: %d", c)
		}
	})
	got, lso, hw := e.wantIsolation("t", open)
	if _, lsoU, _ := e.readIso("t", 0, 0); lsoU != hw {
		t.Fatalf("read_uncommitted: lso %d, want the high watermark %d", lsoU, hw)
	}
	if got := e.listLatest("t", 0, 0); got != hw {
		t.Fatalf("ListOffsets read_uncommitted: %d, want %d", got, hw)
	}

	// Survives a crash: the state is rebuilt from the log. b, open at the unclean stop, is
	// aborted (its producer fenced) before anything is served: see openTxn.
	e.crash(nil)
	if got2, lso2, _ := e.readIso("t", 0, 1); !slices.Equal(got2, got) || lso2 != lso {
		t.Fatalf("after crash read_committed: %q lso %d, want %q lso %d", got2, lso2, got, lso)
	}
	if c := e.endTxn("b", pid2, ep2, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("commit b after crash: %d, want PRODUCER_FENCED", c)
	}
	e.b.TxnCheck(context.Background()) // the abort markers
	got, lso, hw = e.readIso("t", 0, 1)
	if want := []string{"c1", "c2", "plain"}; !slices.Equal(got, want) || lso != hw {
		t.Fatalf("after b's abort: %q lso %d hw %d, want %q", got, lso, hw, want)
	}
	// And after a clean restart (snapshot version 2 holds the state).
	e.restart()
	if got2, lso2, _ := e.readIso("t", 0, 1); !slices.Equal(got2, got) || lso2 != lso {
		t.Fatalf("after restart: %q lso %d, want %q lso %d", got2, lso2, got, lso)
	}
}

// A second InitProducerID for the same transactional id fences the first producer: its
// ongoing transaction is aborted with a bumped epoch, its requests get PRODUCER_FENCED and
// its batches INVALID_PRODUCER_EPOCH.
func TestTxnFencing(t *testing.T) {
	e := txnTopicEnv(t, 2)
	pid, ep := e.initTxn("z", 60000)
	e.addParts("z", pid, ep, "t", 0, 1)
	e.mustProduce(-1, "t", 0, txnBatch(pid, ep, 0, "zombie0"))
	e.mustProduce(-1, "t", 1, txnBatch(pid, ep, 0, "zombie1"))

	pid2, ep2 := e.initTxn("z", 60000)
	if pid2 != pid || ep2 <= ep {
		t.Fatalf("second init: producer %d epoch %d, want %d and an epoch above %d", pid2, ep2, pid, ep)
	}
	if c := e.endTxn("z", pid, ep, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("zombie commit: code %d, want PRODUCER_FENCED", c)
	}
	if c := e.addParts("z", pid, ep, "t", 0); c != kerr.ProducerFenced.Code {
		t.Fatalf("zombie add partitions: code %d", c)
	}
	e.wantCode(e.produce(-1, "t", 0, txnBatch(pid, ep, 1, "zombie-late")), kerr.InvalidProducerEpoch)
	// KIP-360: an InitProducerID naming an old epoch is fenced.
	resp, _ := e.b.InitTxnProducerID(context.Background(), &brokerop.InitTxnProducerIDReq{TransactionalID: "z", TimeoutMs: 1000, ProducerID: pid, ProducerEpoch: ep})
	if resp.ErrorCode != kerr.ProducerFenced.Code {
		t.Fatalf("init with an old epoch: %+v", resp)
	}
	e.addParts("z", pid2, ep2, "t", 0)
	e.mustProduce(-1, "t", 0, txnBatch(pid2, ep2, 0, "new"))
	if c := e.endTxn("z", pid2, ep2, true); c != 0 {
		t.Fatalf("new producer commit: %d", c)
	}
	for p, want := range [][]string{{"new"}, nil} {
		if got, lso, hw := e.readIso("t", int32(p), 1); !slices.Equal(got, want) || lso != hw {
			t.Fatalf("partition %d read_committed: %q (lso %d hw %d), want %q", p, got, lso, hw, want)
		}
	}
}

// transaction.timeout.ms aborts a stuck transaction (fake clock), fencing its producer; a
// transaction decided before a crash is completed by the restarted coordinator.
func TestTxnTimeoutAndRecovery(t *testing.T) {
	e, pid, ep := txnEnvWithBatch(t, "slow", 10000, "stuck")
	e.clock.Advance(9 * time.Second)
	e.b.TxnCheck(context.Background())
	if _, lso, hw := e.readIso("t", 0, 1); lso == hw {
		t.Fatal("aborted before the timeout")
	}
	e.clock.Advance(2 * time.Second)
	e.b.TxnCheck(context.Background())
	got, lso, hw := e.readIso("t", 0, 1)
	if len(got) != 0 || lso != hw {
		t.Fatalf("after timeout: %q lso %d hw %d", got, lso, hw)
	}
	if c := e.endTxn("slow", pid, ep, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("commit after timeout: code %d, want PRODUCER_FENCED", c)
	}

	// An ongoing transaction survives a clean restart and is still committed by its
	// producer.
	pid2, ep2 := e.initTxn("w", 60000)
	e.addParts("w", pid2, ep2, "t", 0)
	e.mustProduce(-1, "t", 0, txnBatch(pid2, ep2, 0, "w1"))
	e.restart()
	d, _ := e.b.DescribeTransactions(context.Background(), &brokerop.DescribeTransactionsReq{TransactionalIDs: []string{"w", "nope"}})
	if d.Transactions[0].State != "Ongoing" || len(d.Transactions[0].Partitions) != 1 || d.Transactions[1].ErrorCode != kerr.TransactionalIDNotFound.Code {
		t.Fatalf("describe after restart: %+v", d)
	}
	if c := e.endTxn("w", pid2, ep2, true); c != 0 {
		t.Fatalf("commit after restart: %d", c)
	}
	if got, lso, hw := e.readIso("t", 0, 1); !slices.Equal(got, []string{"w1"}) || lso != hw {
		t.Fatalf("after restart and commit: %q lso %d hw %d", got, lso, hw)
	}
	// After a crash (an unclean stop) one is aborted before anything is served, its producer
	// fenced: it may have lost records answered before their fsync (openTxn).
	e.addParts("w", pid2, ep2, "t", 0)
	e.mustProduce(-1, "t", 0, txnBatch(pid2, ep2, 1, "w2"))
	e.crash(nil)
	d, _ = e.b.DescribeTransactions(context.Background(), &brokerop.DescribeTransactionsReq{TransactionalIDs: []string{"w"}})
	if tx := d.Transactions[0]; tx.State != "PrepareAbort" || tx.ProducerEpoch != ep2+1 {
		t.Fatalf("describe after crash: %+v", d)
	}
	if c := e.endTxn("w", pid2, ep2, true); c != kerr.ProducerFenced.Code {
		t.Fatalf("commit after crash: %d, want PRODUCER_FENCED", c)
	}
	e.b.TxnCheck(context.Background())
	if got, lso, hw := e.readIso("t", 0, 1); !slices.Equal(got, []string{"w1"}) || lso != hw {
		t.Fatalf("after crash and abort: %q lso %d hw %d", got, lso, hw)
	}
	l0, _ := e.b.ListTransactions(context.Background(), &brokerop.ListTransactionsReq{States: []string{"CompleteAbort"}, MinDurationMs: -1})
	if len(l0.Transactions) != 2 { // slow (timed out) and w
		t.Fatalf("list aborted: %+v", l0)
	}
	pid2, ep2 = e.initTxn("w", 60000)
	e.addParts("w", pid2, ep2, "t", 0)
	e.mustProduce(-1, "t", 0, txnBatch(pid2, ep2, 0, "w3"))
	if c := e.endTxn("w", pid2, ep2, true); c != 0 {
		t.Fatalf("commit after re-init: %d", c)
	}
	l, _ := e.b.ListTransactions(context.Background(), &brokerop.ListTransactionsReq{States: []string{"CompleteCommit"}, MinDurationMs: -1})
	if len(l.Transactions) != 1 || l.Transactions[0].TransactionalID != "w" {
		t.Fatalf("list: %+v", l)
	}
	dp, _ := e.b.DescribeProducers(context.Background(), &brokerop.DescribeProducersReq{Partitions: []brokerop.TxnPartition{{Topic: "t", Partition: 0}}})
	if n := len(dp.Partitions[0].Producers); n != 2 {
		t.Fatalf("describe producers: %+v", dp)
	}
}

func TestMarkerBatch(t *testing.T) {
	for _, commit := range []bool{false, true} {
		b := markerBatch(7, 3, commit, 1234)
		if _, err := ValidateBatches(b, -1); err == nil {
			t.Fatal("a client may not produce a marker")
		}
		got, ok := controlType(b)
		h := readBatchHead(b)
		if !ok || got != commit || h.producerID != 7 || h.epoch != 3 || h.attrs != attrTransactional|attrControl {
			t.Fatalf("marker %v: parsed %v %v %+v", commit, got, ok, h)
		}
		if want, got := binary.BigEndian.Uint32(b[offCRC:]), crc32.Checksum(b[offAttributes:], castagnoli); want != got {
			t.Fatal("bad crc")
		}
	}
}

// FuzzControlType: parsing a control record never panics.
func FuzzControlType(f *testing.F) {
	f.Add(markerBatch(1, 0, true, 0))
	f.Add(markerBatch(1, 0, false, 0))
	f.Fuzz(func(t *testing.T, b []byte) {
		controlType(b)
	})
}

// fakeGroups is a TxnOffsetCommitter and TxnMemberChecker whose group "g" has generation 5
// with member "m" (instance "i").
type fakeGroups struct{ committed []brokerop.OffsetCommitTopic }

func (f *fakeGroups) CommitTxnOffsets(_ context.Context, _ string, topics []brokerop.OffsetCommitTopic) error {
	f.committed = append(f.committed, topics...)
	return nil
}

func (f *fakeGroups) CheckTxnMember(_ context.Context, group string, gen int32, member, instance string) (int16, error) {
	switch {
	case instance != "" && instance == "i" && member != "m":
		return kerr.FencedInstanceID.Code, nil
	case member != "" && member != "m":
		return kerr.UnknownMemberID.Code, nil
	case gen >= 0 && gen != 5:
		return kerr.IllegalGeneration.Code, nil
	}
	return 0, nil
}

// KIP-447: TxnOffsetCommit names the consumer's membership, which the group fences; a
// refused commit leaves no pending offset. Without a membership (v0–2) no check is made.
func TestTxnOffsetCommitMemberFencing(t *testing.T) {
	e := txnTopicEnv(t, 1)
	g := &fakeGroups{}
	e.b.SetTxnOffsetSink(g)
	pid, ep := e.initTxn("x", 60000)
	if r, err := e.b.AddOffsetsToTxn(context.Background(), &brokerop.AddOffsetsToTxnReq{TransactionalID: "x", ProducerID: pid, ProducerEpoch: ep, Group: "g"}); err != nil || r.ErrorCode != 0 {
		t.Fatalf("add offsets: %+v %v", r, err)
	}
	commit := func(gen int32, member, instance string, off int64) int16 {
		t.Helper()
		r, err := e.b.TxnOffsetCommit(context.Background(), &brokerop.TxnOffsetCommitReq{TransactionalID: "x", Group: "g", ProducerID: pid, ProducerEpoch: ep,
			Generation: gen, MemberID: member, InstanceID: instance,
			Topics: []brokerop.OffsetCommitTopic{{Topic: "t", Partitions: []brokerop.OffsetCommitPartition{{Partition: 0, Offset: off, LeaderEpoch: -1}}}}})
		if err != nil {
			t.Fatal(err)
		}
		return r.ErrorCode
	}
	for _, tc := range []struct {
		gen              int32
		member, instance string
		want             *kerr.Error
	}{
		{4, "m", "", kerr.IllegalGeneration},
		{5, "zombie", "", kerr.UnknownMemberID},
		{5, "old", "i", kerr.FencedInstanceID},
	} {
		if c := commit(tc.gen, tc.member, tc.instance, 99); c != tc.want.Code {
			t.Fatalf("generation %d member %q instance %q: code %d, want %s", tc.gen, tc.member, tc.instance, c, tc.want.Message)
		}
	}
	if c := commit(5, "m", "i", 7); c != 0 {
		t.Fatalf("current member: %d", c)
	}
	if c := commit(-1, "", "", 8); c != 0 { // v0–2: no membership
		t.Fatalf("no membership: %d", c)
	}
	if c := e.endTxn("x", pid, ep, true); c != 0 {
		t.Fatalf("commit: %d", c)
	}
	if len(g.committed) != 1 || g.committed[0].Partitions[0].Offset != 8 {
		t.Fatalf("group got %+v, want only offset 8 (the refused 99 never pending)", g.committed)
	}
}

// transaction.version 2 (KIP-890 part 2) at the broker: a transactional produce with TxnAdd
// (Produce v12+) adds its partition to the transaction; without it (a version 1 client) the
// partition must have been added by AddPartitionsToTxn, else INVALID_TXN_STATE. Each EndTxn
// with Bump answers the next epoch; a batch of the ended epoch is fenced in the partitions; a
// retried EndTxn answers the same pair; an empty abort only bumps the epoch.
func TestTxnV2ImplicitAddAndEpochBump(t *testing.T) {
	e := txnTopicEnv(t, 1)
	pid, ep := e.initTxn("v2", 60000)

	if r := e.produceTxn(false, "t", 0, txnBatch(pid, ep, 0, "v1-unadded")); r.ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("version 1 produce into a partition not added: code %d, want INVALID_TXN_STATE", r.ErrorCode)
	}
	if r := e.produceTxn(true, "t", 0, txnBatch(pid, ep, 0, "c1")); r.ErrorCode != 0 {
		t.Fatalf("version 2 produce: code %d %s", r.ErrorCode, r.ErrorMessage)
	}
	d, _ := e.b.DescribeTransactions(context.Background(), &brokerop.DescribeTransactionsReq{TransactionalIDs: []string{"v2"}})
	if tx := d.Transactions[0]; tx.State != "Ongoing" || len(tx.Partitions) != 1 {
		t.Fatalf("after the implicit add: %+v", tx)
	}
	npid, nep, c := e.endTxnV2("v2", pid, ep, true)
	if c != 0 || npid != pid || nep != ep+1 {
		t.Fatalf("commit: code %d, producer %d/%d, want %d/%d", c, npid, nep, pid, ep+1)
	}
	// A retry of the answered EndTxn gets the same pair; another outcome at the old epoch is fenced.
	if p2, e2, c := e.endTxnV2("v2", pid, ep, true); c != 0 || p2 != npid || e2 != nep {
		t.Fatalf("retried commit: code %d, producer %d/%d", c, p2, e2)
	}
	if _, _, c := e.endTxnV2("v2", pid, ep, false); c != kerr.ProducerFenced.Code {
		t.Fatalf("abort at the ended epoch: code %d, want PRODUCER_FENCED", c)
	}
	// A zombie batch of the ended epoch neither joins nor opens a transaction.
	if r := e.produceTxn(true, "t", 0, txnBatch(pid, ep, 1, "zombie")); r.ErrorCode != kerr.InvalidProducerEpoch.Code {
		t.Fatalf("zombie produce: code %d, want INVALID_PRODUCER_EPOCH", r.ErrorCode)
	}
	ep = nep
	if r := e.produceTxn(true, "t", 0, txnBatch(pid, ep, 0, "a1")); r.ErrorCode != 0 {
		t.Fatalf("produce at the bumped epoch: code %d %s", r.ErrorCode, r.ErrorMessage)
	}
	if _, nep, c = e.endTxnV2("v2", pid, ep, false); c != 0 || nep != ep+1 {
		t.Fatalf("abort: code %d epoch %d", c, nep)
	}
	ep = nep
	// Empty: an abort bumps the epoch, a commit is INVALID_TXN_STATE.
	if _, _, c := e.endTxnV2("v2", pid, ep, true); c != kerr.InvalidTxnState.Code {
		t.Fatalf("empty commit: code %d, want INVALID_TXN_STATE", c)
	}
	if _, nep, c = e.endTxnV2("v2", pid, ep, false); c != 0 || nep != ep+1 {
		t.Fatalf("empty abort: code %d epoch %d", c, nep)
	}
	ep = nep
	if r := e.produceTxn(true, "t", 0, txnBatch(pid, ep, 0, "c2")); r.ErrorCode != 0 {
		t.Fatalf("produce: code %d %s", r.ErrorCode, r.ErrorMessage)
	}
	if _, _, c = e.endTxnV2("v2", pid, ep, true); c != 0 {
		t.Fatalf("commit: code %d", c)
	}
	if got, lso, hw := e.readIso("t", 0, 1); !slices.Equal(got, []string{"c1", "c2"}) || lso != hw {
		t.Fatalf("read_committed: %q (lso %d hw %d)", got, lso, hw)
	}
	if got, _, _ := e.readIso("t", 0, 0); !slices.Equal(got, []string{"c1", "a1", "c2"}) {
		t.Fatalf("read_uncommitted: %q", got)
	}
	// A restarted producer (InitProducerID) still fences as before.
	if p2, e2 := e.initTxn("v2", 60000); p2 != pid || e2 <= ep {
		t.Fatalf("InitProducerID after version 2 ends: %d/%d", p2, e2)
	}
}
