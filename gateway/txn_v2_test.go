package gateway_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// requestCounter counts the requests a kgo client writes, by key.
type requestCounter struct{ n [128]atomic.Int64 }

func (c *requestCounter) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, _ int, _, _ time.Duration, err error) {
	if err == nil && int(key) < len(c.n) {
		c.n[key].Add(1)
	}
}

// readValues reads topic from the start with read_committed or read_uncommitted until
// want values came (or 10 s passed) and a few more polls brought nothing, sorted.
func readValues(t *testing.T, addr, topic string, committed bool, want int) []string {
	t.Helper()
	got := kafkaclients.ReadValues(t, addr, topic, committed, want, 10*time.Second)
	slices.Sort(got)
	return got
}

func txnEpoch(t *testing.T, adm *kadm.Client, id string) int16 {
	t.Helper()
	d, err := adm.DescribeTransactions(context.Background(), id)
	if err != nil || d[id].Err != nil {
		t.Fatalf("DescribeTransactions %s: %v %+v", id, err, d)
	}
	return d[id].ProducerEpoch
}

// Transactions version 2 (KIP-890 part 2) through the gateway with the embedded broker's
// coordinator: ApiVersions advertises the finalized feature transaction.version 2; kgo then
// produces without AddPartitionsToTxn and every EndTxn bumps the epoch; committed and
// aborted records are read right by read_committed and read_uncommitted; a zombie of an
// earlier epoch is fenced; a client capped at Produce v11 (transaction.version 1: kcat,
// librdkafka, kafkajs, confluent-kafka-python) still adds partitions first and works, and a
// raw Produce v11 into a partition not added is refused with INVALID_TXN_STATE where v12
// adds it.
func TestTxnV2Kgo(t *testing.T) {
	ctx := context.Background()
	addr := startTxnServer(t, false)
	admCl := kafkaclients.KgoClient(t, addr)
	adm := kadm.NewClient(admCl)
	if _, err := adm.CreateTopics(ctx, 2, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}

	av, err := direct[*kmsg.ApiVersionsResponse](ctx, admCl, kmsg.NewPtrApiVersionsRequest())
	if err != nil {
		t.Fatal(err)
	}
	if len(av.FinalizedFeatures) != 1 || av.FinalizedFeatures[0].Name != "transaction.version" || av.FinalizedFeatures[0].MaxVersionLevel != 2 || av.FinalizedFeaturesEpoch < 0 {
		t.Fatalf("ApiVersions features: %+v epoch %d", av.FinalizedFeatures, av.FinalizedFeaturesEpoch)
	}

	produce := func(cl *kgo.Client, commit bool, values ...string) error {
		return kafkaclients.ProduceTxn(ctx, cl, commit, values...)
	}
	txnOpts := func(id string, hooks ...kgo.Hook) []kgo.Opt {
		return []kgo.Opt{kgo.TransactionalID(id), kgo.DefaultProduceTopic("tx"), kgo.RecordPartitioner(kgo.ManualPartitioner()),
			kgo.TransactionTimeout(30 * time.Second), kgo.WithHooks(hooks)}
	}

	var v2 requestCounter
	p := kafkaclients.KgoClient(t, addr, txnOpts("v2", &v2)...)
	// kgo opts in at BeginTransaction if it has seen the feature by then: InitProducerID
	// first (otherwise it opts in at its first EndTxn and re-initialises).
	if _, _, err := p.ProducerID(ctx); err != nil {
		t.Fatal(err)
	}
	if err := produce(p, true, "c1", "c2"); err != nil {
		t.Fatal(err)
	}
	e0 := txnEpoch(t, adm, "v2")
	if err := produce(p, false, "a1", "a2"); err != nil {
		t.Fatal(err)
	}
	if err := produce(p, true, "c3"); err != nil {
		t.Fatal(err)
	}
	if e := txnEpoch(t, adm, "v2"); e != e0+2 {
		t.Fatalf("epoch after two more transactions: %d, want %d (bumped at each EndTxn)", e, e0+2)
	}
	if n := v2.n[kmsg.AddPartitionsToTxn].Load(); n != 0 {
		t.Fatalf("version 2 client sent %d AddPartitionsToTxn", n)
	}

	// A version 1 client (Produce capped at v11): AddPartitionsToTxn first, no epoch bumps.
	var v1 requestCounter
	old := kversion.Stable()
	old.SetMaxKeyVersion(int16(kmsg.Produce), 11)
	p1 := kafkaclients.KgoClient(t, addr, append(txnOpts("v1", &v1), kgo.MaxVersions(old))...)
	if err := produce(p1, true, "old1"); err != nil {
		t.Fatal(err)
	}
	e1 := txnEpoch(t, adm, "v1")
	if err := produce(p1, false, "olda"); err != nil {
		t.Fatal(err)
	}
	if e := txnEpoch(t, adm, "v1"); e != e1 || v1.n[kmsg.AddPartitionsToTxn].Load() == 0 {
		t.Fatalf("version 1 client: epoch %d after %d, %d AddPartitionsToTxn", e, e1, v1.n[kmsg.AddPartitionsToTxn].Load())
	}

	// A zombie: its transaction is open when a new producer of the same id starts.
	zombie := kafkaclients.KgoClient(t, addr, txnOpts("z")...)
	if err := zombie.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := zombie.ProduceSync(ctx, &kgo.Record{Value: []byte("zombie")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	fresh := kafkaclients.KgoClient(t, addr, txnOpts("z")...)
	if err := produce(fresh, true, "fresh"); err != nil {
		t.Fatal(err)
	}
	err = zombie.EndTransaction(ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("zombie commit: %v, want a fencing error", err)
	}

	// Raw requests: Produce v11 needs the partition added, v12 adds it; EndTxn v5 answers
	// the next epoch.
	ipr := kmsg.NewPtrInitProducerIDRequest()
	ipr.TransactionalID, ipr.TransactionTimeoutMillis = kmsg.StringPtr("raw"), 30000
	ip, err := direct[*kmsg.InitProducerIDResponse](ctx, admCl, ipr)
	if err != nil || ip.ErrorCode != 0 {
		t.Fatalf("InitProducerID: %v %+v", err, ip)
	}
	cl11 := kafkaclients.KgoClient(t, addr, kgo.MaxVersions(old))
	r11, err := direct[*kmsg.ProduceResponse](ctx, cl11, txnProduceReq(kmsg.StringPtr("raw"), "tx", txnRecordBatch(ip.ProducerID, ip.ProducerEpoch, 0, true, "raw11")))
	if err != nil || r11.Version != 11 || r11.Topics[0].Partitions[0].ErrorCode != kerr.InvalidTxnState.Code {
		t.Fatalf("Produce v11 into a partition not added: %v %+v", err, r11)
	}
	r12, err := direct[*kmsg.ProduceResponse](ctx, admCl, txnProduceReq(kmsg.StringPtr("raw"), "tx", txnRecordBatch(ip.ProducerID, ip.ProducerEpoch, 0, true, "raw12")))
	if err != nil || r12.Version < 12 || r12.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("Produce v12: %v %+v", err, r12)
	}
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "raw", ip.ProducerID, ip.ProducerEpoch, true
	er, err := direct[*kmsg.EndTxnResponse](ctx, admCl, end)
	if err != nil || er.Version != 5 || er.ErrorCode != 0 || er.ProducerID != ip.ProducerID || er.ProducerEpoch != ip.ProducerEpoch+1 {
		t.Fatalf("EndTxn v5: %v %+v", err, er)
	}

	committed := []string{"c1", "c2", "c3", "fresh", "old1", "raw12"}
	if got := readValues(t, addr, "tx", true, len(committed)); !slices.Equal(got, committed) {
		t.Fatalf("read_committed: %q, want %q", got, committed)
	}
	all := []string{"a1", "a2", "c1", "c2", "c3", "fresh", "old1", "olda", "raw12", "zombie"}
	if got := readValues(t, addr, "tx", false, len(all)); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted: %q, want %q", got, all)
	}
}
