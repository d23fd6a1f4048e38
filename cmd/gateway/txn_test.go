package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// consumeValues reads topic from the start with an isolation level until want records came
// (or 15 s passed) and returns their values in offset order per partition.
func consumeValues(t *testing.T, addr, topic string, committed bool, want int) []string {
	t.Helper()
	return kafkaclients.ReadValues(t, addr, topic, committed, want, 15*time.Second)
}

// kgoClient is a kgo client of the gateway at addr with opts; the caller closes it.
func kgoClient(t *testing.T, addr string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addr)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	return cl
}

// produceN produces n one-byte records (values 0, 1, …) with cl, one at a time.
func produceN(t *testing.T, ctx context.Context, cl *kgo.Client, n int) {
	t.Helper()
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
}

// pollN polls cl until it has read n records, failing t if ctx ends first.
func pollN(t *testing.T, ctx context.Context, cl *kgo.Client, n int) {
	t.Helper()
	for read := 0; read < n; {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records", read, n)
		}
		read += fs.NumRecords()
	}
}

func txnClient(t *testing.T, addr, id string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl := kgoClient(t, addr, append([]kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"),
		kgo.TransactionTimeout(30 * time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner())}, opts...)...)
	t.Cleanup(cl.Close)
	return cl
}

func produceTxn(t *testing.T, cl *kgo.Client, commit bool, values ...string) error {
	t.Helper()
	return kafkaclients.ProduceTxn(context.Background(), cl, commit, values...)
}

// A kgo transactional producer against the gateway with its embedded broker (up-single):
// committed and aborted transactions, read_committed and read_uncommitted consumers, a
// zombie fenced by a second producer of the same transactional id, a restart with a
// transaction open, and the admin views.
func TestTxnKgoEndToEnd(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startRun(t, dir)
	adm := kgoClient(t, addr)
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 2, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}

	p := txnClient(t, addr, "etl-1")
	if err := produceTxn(t, p, true, "c1", "c2", "c3"); err != nil {
		t.Fatal(err)
	}
	if err := produceTxn(t, p, false, "a1", "a2"); err != nil {
		t.Fatal(err)
	}
	if err := produceTxn(t, p, true, "c4"); err != nil {
		t.Fatal(err)
	}

	// A zombie: its transaction is open when a new producer of the same id starts.
	zombie := txnClient(t, addr, "etl-2")
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(context.Background(), &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := txnClient(t, addr, "etl-2")
	if err := produceTxn(t, fresh, true, "fresh"); err != nil {
		t.Fatal(err)
	}
	err := zombie.EndTransaction(context.Background(), kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie commit: %v, want a fencing error", err)
	}

	committed := []string{"c1", "c2", "c3", "c4", "fresh"}
	got := consumeValues(t, addr, "tx", true, len(committed))
	if slices.Sort(got); !slices.Equal(got, committed) {
		t.Fatalf("read_committed: %q, want %q", got, committed)
	}
	all := []string{"a1", "a2", "c1", "c2", "c3", "c4", "fresh", "zombie"}
	got = consumeValues(t, addr, "tx", false, len(all))
	if slices.Sort(got); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted: %q, want %q", got, all)
	}

	// An open transaction across a restart: held back from read_committed, then committed.
	open := txnClient(t, addr, "etl-3")
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := open.ProduceSync(context.Background(), &kgo.Record{Value: []byte("pending")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	open.Close()
	adm.Close()
	stop()
	addr, stop = startRun(t, dir)
	defer stop()
	adm = kgoClient(t, addr)
	defer adm.Close()
	ka := kadm.NewClient(adm)
	lt, err := ka.ListTransactions(context.Background(), nil, []string{"Ongoing"})
	if err != nil || len(lt.Sorted()) != 1 || lt.Sorted()[0].TxnID != "etl-3" {
		t.Fatalf("ListTransactions after restart: %v %+v", err, lt)
	}
	dt, err := ka.DescribeTransactions(context.Background(), "etl-3")
	if err != nil || dt["etl-3"].State != "Ongoing" {
		t.Fatalf("DescribeTransactions: %v %+v", err, dt)
	}
	got = consumeValues(t, addr, "tx", true, len(committed))
	if slices.Sort(got); !slices.Equal(got, committed) {
		t.Fatalf("read_committed with a transaction open: %q, want %q", got, committed)
	}
	// The restarted producer of etl-3 fences and aborts the open transaction.
	again := txnClient(t, addr, "etl-3")
	if err := produceTxn(t, again, true, "after"); err != nil {
		t.Fatal(err)
	}
	committed = []string{"after", "c1", "c2", "c3", "c4", "fresh"}
	got = consumeValues(t, addr, "tx", true, len(committed))
	if slices.Sort(got); !slices.Equal(got, committed) {
		t.Fatalf("read_committed after the restart: %q, want %q", got, committed)
	}
	dp, err := ka.DescribeProducers(context.Background(), kadm.TopicsSet{"tx": {0: {}, 1: {}}})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	dp.EachProducer(func(kadm.DescribedProducer) { n++ })
	if n == 0 {
		t.Fatalf("DescribeProducers: none")
	}
}

// kgo's GroupTransactSession: consume → transform → produce in transactions; the output
// read with read_committed has every input record exactly once and the group's committed
// offsets (committed inside the transactions) reach the end of the input.
func TestTxnGroupTransactSession(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startRun(t, dir)
	defer stop()
	groupTransactSession(t, addr)
}

// Over the mesh (go tool task up: the gateway and one broker as separate nodes): a
// committed and an aborted transaction, and a GroupTransactSession pipeline.
func TestTxnOverMesh(t *testing.T) {
	dir := t.TempDir()
	sk, err := key.LoadOrCreate(filepath.Join(dir, "identity.key"))
	if err != nil {
		t.Fatal(err)
	}
	mb := startMeshBroker(t, sk.Public())
	seed := mb.ep.Addr()
	mb.joinControl(t, seed)
	e := map[string]string{"RAFKA_MESH_ID": "gw-test", "RAFKA_GOSSIP_INTERVAL_MS": "100", "RAFKA_STALENESS_MS": "1000"}
	addr := startGateway(t, []string{"-listen", "127.0.0.1:0", "-data", dir, "-brokers", seed.String(), "-mesh-bind", "127.0.0.1:0"}, e, 10*time.Second)
	adm := kgoClient(t, addr)
	defer adm.Close()
	if _, err := kadm.NewClient(adm).CreateTopic(context.Background(), 2, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	p := txnClient(t, addr, "mesh-1")
	if err := produceTxn(t, p, true, "c1", "c2"); err != nil {
		t.Fatal(err)
	}
	if err := produceTxn(t, p, false, "a1"); err != nil {
		t.Fatal(err)
	}
	if got := consumeValues(t, addr, "tx", true, 2); !slices.Equal(sorted(got), []string{"c1", "c2"}) {
		t.Fatalf("read_committed over the mesh: %q", got)
	}
	if got := consumeValues(t, addr, "tx", false, 3); !slices.Equal(sorted(got), []string{"a1", "c1", "c2"}) {
		t.Fatalf("read_uncommitted over the mesh: %q", got)
	}
	groupTransactSession(t, addr)
}

func sorted(s []string) []string { slices.Sort(s); return s }

func groupTransactSession(t *testing.T, addr string) {
	t.Helper()
	adm := kgoClient(t, addr)
	defer adm.Close()
	ka := kadm.NewClient(adm)
	if _, err := ka.CreateTopic(context.Background(), 2, 1, nil, "in"); err != nil {
		t.Fatal(err)
	}
	if _, err := ka.CreateTopic(context.Background(), 2, 1, nil, "out"); err != nil {
		t.Fatal(err)
	}
	const n = 200
	var in []*kgo.Record
	for i := range n {
		in = append(in, &kgo.Record{Topic: "in", Value: fmt.Appendf(nil, "%03d", i)})
	}
	if err := adm.ProduceSync(context.Background(), in...).FirstErr(); err != nil {
		t.Fatal(err)
	}

	sess, err := kgo.NewGroupTransactSession(kgo.SeedBrokers(addr), kgo.TransactionalID("gts"), kgo.DefaultProduceTopic("out"),
		kgo.ConsumerGroup("gts-group"), kgo.ConsumeTopics("in"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := 0
	for done < n && ctx.Err() == nil {
		fs := sess.PollFetches(ctx)
		if err := sess.Begin(); err != nil {
			t.Fatal(err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			done++
			sess.Produce(ctx, &kgo.Record{Value: append([]byte("out-"), r.Value...)}, nil)
		})
		if _, err := sess.End(ctx, kgo.TryCommit); err != nil {
			t.Fatal(err)
		}
	}
	got := consumeValues(t, addr, "out", true, n)
	if len(got) != n {
		t.Fatalf("out: %d records, want %d", len(got), n)
	}
	slices.Sort(got)
	for i, v := range got {
		if want := fmt.Sprintf("out-%03d", i); v != want {
			t.Fatalf("out[%d] = %q, want %q", i, v, want)
		}
	}
	offs, err := ka.FetchOffsets(context.Background(), "gts-group")
	if err != nil {
		t.Fatal(err)
	}
	sum := int64(0)
	offs.Each(func(o kadm.OffsetResponse) { sum += o.At })
	if sum != n {
		t.Fatalf("committed offsets sum to %d, want %d", sum, n)
	}
}

// Offsets committed in a transaction become the group's offsets only on commit; meanwhile an
// OffsetFetch that requires stable offsets gets UNSTABLE_OFFSET_COMMIT (KIP-447) for them,
// and one that does not gets the offsets from before the transaction. An aborted
// transaction's offsets never arrive.
func TestTxnOffsetsVisibleOnCommit(t *testing.T) {
	dir := t.TempDir()
	addr, stop := startRun(t, dir)
	defer stop()
	cl := kgoClient(t, addr)
	defer cl.Close()
	ctx := context.Background()
	if _, err := kadm.NewClient(cl).CreateTopic(ctx, 1, 1, nil, "src"); err != nil {
		t.Fatal(err)
	}
	init := kmsg.NewPtrInitProducerIDRequest()
	init.TransactionalID, init.TransactionTimeoutMillis = kmsg.StringPtr("offs"), 60000
	ir, err := init.RequestWith(ctx, cl)
	if err != nil || ir.ErrorCode != 0 {
		t.Fatalf("init: %v %+v", err, ir)
	}
	fetch := func(stable bool) (int64, int16) {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Group, req.RequireStable = "g", stable
		rt := kmsg.NewOffsetFetchRequestTopic()
		rt.Topic, rt.Partitions = "src", []int32{0}
		req.Topics = []kmsg.OffsetFetchRequestTopic{rt}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Groups) == 1 { // v8+
			p := resp.Groups[0].Topics[0].Partitions[0]
			return p.Offset, p.ErrorCode
		}
		p := resp.Topics[0].Partitions[0]
		return p.Offset, p.ErrorCode
	}
	for i, commit := range []bool{false, true} {
		ao := kmsg.NewPtrAddOffsetsToTxnRequest()
		ao.TransactionalID, ao.ProducerID, ao.ProducerEpoch, ao.Group = "offs", ir.ProducerID, ir.ProducerEpoch, "g"
		if r, err := ao.RequestWith(ctx, cl); err != nil || r.ErrorCode != 0 {
			t.Fatalf("add offsets: %v %+v", err, r)
		}
		tc := kmsg.NewPtrTxnOffsetCommitRequest()
		tc.TransactionalID, tc.Group, tc.ProducerID, tc.ProducerEpoch, tc.Generation = "offs", "g", ir.ProducerID, ir.ProducerEpoch, -1
		tp := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		tp.Partition, tp.Offset = 0, int64(10*(i+1))
		tt := kmsg.NewTxnOffsetCommitRequestTopic()
		tt.Topic, tt.Partitions = "src", []kmsg.TxnOffsetCommitRequestTopicPartition{tp}
		tc.Topics = []kmsg.TxnOffsetCommitRequestTopic{tt}
		if r, err := tc.RequestWith(ctx, cl); err != nil || r.Topics[0].Partitions[0].ErrorCode != 0 {
			t.Fatalf("txn offset commit: %v %+v", err, r)
		}
		if off, code := fetch(false); off != -1 || code != 0 {
			t.Fatalf("offset visible before the end (%v): %d code %d", commit, off, code)
		}
		if _, code := fetch(true); code != kerr.UnstableOffsetCommit.Code {
			t.Fatalf("require_stable during the transaction: code %d", code)
		}
		end := kmsg.NewPtrEndTxnRequest()
		end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "offs", ir.ProducerID, ir.ProducerEpoch, commit
		r, err := end.RequestWith(ctx, cl)
		if err != nil || r.ErrorCode != 0 || r.ProducerEpoch != ir.ProducerEpoch+1 {
			t.Fatalf("end: %v %+v", err, r)
		}
		// EndTxn v5 (transaction.version 2) bumped the epoch: the next transaction uses it.
		ir.ProducerID, ir.ProducerEpoch = r.ProducerID, r.ProducerEpoch
	}
	if off, code := fetch(true); off != 20 || code != 0 {
		t.Fatalf("after the abort and the commit: offset %d code %d, want 20", off, code)
	}
}
