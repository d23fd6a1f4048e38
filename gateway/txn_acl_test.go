package gateway_test

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/broker/group"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest/serve"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/kafkawire"
	"github.com/meshkafka/meshkafka/wal"
)

// txnBackend is a real broker (with its transaction coordinator), a group coordinator that
// receives the offsets committed in transactions, and the broker's credentials and ACLs: the
// backend cmd/gateway builds.
type txnBackend struct {
	*broker.Broker
	*group.Coordinator
	broker.Security
	brokerop.NoQuorum // a cluster of one with no metadata quorum: the quorum ops are not served
}

// startTxnServer serves the txnBackend with the users admin, alice and bob (password
// "<user>-pw"): on SASL_PLAINTEXT with authorization on (super user admin) when authz, else
// on PLAINTEXT with authorization off.
func startTxnServer(t *testing.T, authz bool) string {
	t.Helper()
	dir := t.TempDir()
	b, err := broker.Open(broker.Config{Dir: dir, DefaultPartitions: 1, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	gc, err := group.Open(group.Config{Dir: filepath.Join(dir, "groups"),
		Machine: group.MachineConfig{InitialRebalanceDelay: time.Millisecond, MinSessionTimeout: time.Second}})
	if err != nil {
		b.Close()
		t.Fatal(err)
	}
	b.SetTxnOffsetSink(gc)
	sec, err := broker.OpenFileSecurity(wal.OSFS(), dir)
	if err != nil {
		t.Fatal(err)
	}
	creds, acls := sec.Credentials, sec.ACLs
	for _, u := range []string{"admin", "alice", "bob"} {
		addScramUser(t, creds, u, u+"-pw")
	}
	cfg := gateway.Config{Backend: txnBackend{Broker: b, Coordinator: gc, Security: broker.Security{Credentials: creds, ACLs: acls}}, AdvertisedHost: "127.0.0.1",
		Logger: slog.New(slog.DiscardHandler)}
	proto := gateway.Plaintext
	if authz {
		cfg.Authorizer = gateway.AuthorizerConfig{Enabled: true, SuperUsers: []string{"User:admin"}}
		proto = gateway.SASLPlaintext
	}
	t.Cleanup(func() { gc.Close(); b.Close() }) // after the gateway's Stop
	return serve.StartProtocol(t, cfg, proto).Addr
}

// txnRecordBatch is a one-record RecordBatch v2 (length and CRC-32C filled in) of producer
// pid/epoch, transactional or not.
func txnRecordBatch(pid int64, epoch int16, seq int32, transactional bool, value string) []byte {
	raw := kafkawire.AppendRecordBatch(nil, []kafkawire.BatchRecord{{Timestamp: time.Now().UnixMilli(), Value: []byte(value)}})
	if transactional {
		binary.BigEndian.PutUint16(raw[21:], 0x10) // attributes
	}
	binary.BigEndian.PutUint64(raw[43:], uint64(pid))
	binary.BigEndian.PutUint16(raw[51:], uint16(epoch))
	binary.BigEndian.PutUint32(raw[53:], uint32(seq))
	binary.BigEndian.PutUint32(raw[17:], crc32.Checksum(raw[21:], crc32.MakeTable(crc32.Castagnoli)))
	return raw
}

func txnProduceReq(txnID *string, topic string, records []byte) *kmsg.ProduceRequest {
	req := kmsg.NewPtrProduceRequest()
	req.TransactionID, req.Acks, req.TimeoutMillis = txnID, -1, 10000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = records
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

func addPartsReq(id string, pid int64, epoch int16, topics ...string) *kmsg.AddPartitionsToTxnRequest {
	req := kmsg.NewPtrAddPartitionsToTxnRequest()
	req.TransactionalID, req.ProducerID, req.ProducerEpoch = id, pid, epoch
	for _, tp := range topics {
		rt := kmsg.NewAddPartitionsToTxnRequestTopic()
		rt.Topic, rt.Partitions = tp, []int32{0}
		req.Topics = append(req.Topics, rt)
	}
	return req
}

func txnCommitReq(id, group string, pid int64, epoch int16, offset int64, topics ...string) *kmsg.TxnOffsetCommitRequest {
	req := kmsg.NewPtrTxnOffsetCommitRequest()
	req.TransactionalID, req.Group, req.ProducerID, req.ProducerEpoch = id, group, pid, epoch
	req.Generation = -1
	for _, tp := range topics {
		rt := kmsg.NewTxnOffsetCommitRequestTopic()
		rt.Topic = tp
		p := kmsg.NewTxnOffsetCommitRequestTopicPartition()
		p.Offset, p.LeaderEpoch = offset, -1
		rt.Partitions = append(rt.Partitions, p)
		req.Topics = append(req.Topics, rt)
	}
	return req
}

// topicCodes flattens a per-topic, per-partition answer to topic → codes.
func topicCodes[T any](topics []T, each func(T) (string, []int16)) map[string][]int16 {
	out := map[string][]int16{}
	for _, t := range topics {
		name, codes := each(t)
		out[name] = append(out[name], codes...)
	}
	return out
}

func addPartsCodes(r *kmsg.AddPartitionsToTxnResponse) map[string][]int16 {
	return topicCodes(r.Topics, func(t kmsg.AddPartitionsToTxnResponseTopic) (string, []int16) {
		var cs []int16
		for _, p := range t.Partitions {
			cs = append(cs, p.ErrorCode)
		}
		return t.Topic, cs
	})
}

func txnCommitCodes(r *kmsg.TxnOffsetCommitResponse) map[string][]int16 {
	return topicCodes(r.Topics, func(t kmsg.TxnOffsetCommitResponseTopic) (string, []int16) {
		var cs []int16
		for _, p := range t.Partitions {
			cs = append(cs, p.ErrorCode)
		}
		return t.Topic, cs
	})
}

// direct sends req to the gateway itself (kgo's RequestWith routes group and transaction
// requests through FindCoordinator first).
func direct[R kmsg.Response](ctx context.Context, cl *kgo.Client, req kmsg.Request) (R, error) {
	r, err := cl.SeedBrokers()[0].RetriableRequest(ctx, req)
	if err != nil {
		var zero R
		return zero, err
	}
	return r.(R), nil
}

func codesEqual(got, want map[string][]int16) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			return false
		}
	}
	return true
}

// TestTxnACLsKgo: with the authorizer on, the transaction APIs ask for Kafka's operations.
// alice may WRITE transactional id t-alice, WRITE and READ topic tx, READ group g, and only
// DESCRIBE transactional id t-desc; bob may DESCRIBE t-alice and nothing else; admin is a super
// user. alice's transactional producer works end to end (produce, offsets in the transaction,
// commit); every transaction API refuses her elsewhere with Kafka's code, and nothing refused
// reaches the transaction coordinator.
func TestTxnACLsKgo(t *testing.T) {
	ctx := context.Background()
	addr := startTxnServer(t, true)
	client := func(user string, opts ...kgo.Opt) *kgo.Client {
		return (&aclServer{addr: addr}).client(t, user, opts...)
	}
	adminCl := client("admin")
	admin := kadm.NewClient(adminCl)
	if _, err := admin.CreateTopics(ctx, 1, 1, nil, "tx", "other"); err != nil {
		t.Fatal(err)
	}
	lit := func(b *kadm.ACLBuilder) *kadm.ACLBuilder { return b.ResourcePatternType(kadm.ACLPatternLiteral) }
	mustACLs(t, admin, lit(kadm.NewACLs().Allow("User:alice").TransactionalIDs("t-alice").Operations(kadm.OpWrite)))
	mustACLs(t, admin, lit(kadm.NewACLs().Allow("User:alice").TransactionalIDs("t-desc").Operations(kadm.OpDescribe)))
	mustACLs(t, admin, lit(kadm.NewACLs().Allow("User:alice").Topics("tx").Operations(kadm.OpWrite, kadm.OpRead)))
	mustACLs(t, admin, lit(kadm.NewACLs().Allow("User:alice").Groups("g").Operations(kadm.OpRead)))
	mustACLs(t, admin, lit(kadm.NewACLs().Allow("User:bob").TransactionalIDs("t-alice").Operations(kadm.OpDescribe)))

	alice := client("alice")
	bob := client("bob", kgo.DisableIdempotentWrite())
	describe := func(cl *kgo.Client, id string) kmsg.DescribeTransactionsResponseTransactionState {
		t.Helper()
		req := kmsg.NewPtrDescribeTransactionsRequest()
		req.TransactionalIDs = []string{id}
		r, err := direct[*kmsg.DescribeTransactionsResponse](ctx, cl, req) // kgo would ask FindCoordinator first
		if err != nil || len(r.TransactionStates) != 1 {
			t.Fatalf("DescribeTransactions %s: %v %+v", id, err, r)
		}
		return r.TransactionStates[0]
	}

	// FindCoordinator (key type 1): DESCRIBE on the transactional id.
	for _, c := range []struct {
		id   string
		want int16
	}{{"t-alice", 0}, {"t-desc", 0}, {"t-other", kerr.TransactionalIDAuthorizationFailed.Code}} {
		fc := kmsg.NewPtrFindCoordinatorRequest()
		fc.CoordinatorType, fc.CoordinatorKey = 1, c.id
		if r, err := fc.RequestWith(ctx, alice); err != nil || r.ErrorCode != c.want {
			t.Fatalf("alice FindCoordinator %s: %v %+v, want code %d", c.id, err, r, c.want)
		}
	}

	// InitProducerID: WRITE on the transactional id; DESCRIBE is not enough.
	ipid := kmsg.NewPtrInitProducerIDRequest()
	ipid.TransactionalID, ipid.TransactionTimeoutMillis = kmsg.StringPtr("t-desc"), 60000
	if r, err := ipid.RequestWith(ctx, alice); err != nil || r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code || r.ProducerID != -1 {
		t.Fatalf("alice InitProducerID t-desc: %v %+v", err, r)
	}
	// kgo's transactional producer of t-desc fails with the same fatal error.
	descProducer := client("alice", kgo.TransactionalID("t-desc"), kgo.DefaultProduceTopic("tx"))
	err := descProducer.BeginTransaction() // kgo loads the producer id here or at the first record
	if err == nil {
		err = descProducer.ProduceSync(ctx, &kgo.Record{Value: []byte("no")}).FirstErr()
	}
	if !errors.Is(err, kerr.TransactionalIDAuthorizationFailed) {
		t.Fatalf("kgo producer of t-desc: %v, want TRANSACTIONAL_ID_AUTHORIZATION_FAILED", err)
	}

	// alice's producer of t-alice: InitProducerID, AddPartitionsToTxn, Produce go through kgo.
	p := client("alice", kgo.TransactionalID("t-alice"), kgo.DefaultProduceTopic("tx"), kgo.TransactionTimeout(60*time.Second))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("committed")}).FirstErr(); err != nil {
		t.Fatalf("alice produce in t-alice: %v", err)
	}
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// AddPartitionsToTxn: WRITE on the id, then WRITE on every topic; one refused topic fails
	// the request (the others are OPERATION_NOT_ATTEMPTED) and nothing is added.
	if r, err := addPartsReq("t-desc", pid, epoch, "tx").RequestWith(ctx, alice); err != nil ||
		!codesEqual(addPartsCodes(r), map[string][]int16{"tx": {kerr.TransactionalIDAuthorizationFailed.Code}}) {
		t.Fatalf("alice AddPartitionsToTxn t-desc: %v %+v", err, r)
	}
	if r, err := addPartsReq("t-alice", pid, epoch, "tx", "other").RequestWith(ctx, alice); err != nil ||
		!codesEqual(addPartsCodes(r), map[string][]int16{"tx": {kerr.OperationNotAttempted.Code}, "other": {kerr.TopicAuthorizationFailed.Code}}) {
		t.Fatalf("alice AddPartitionsToTxn tx+other: %v %+v", err, r)
	}
	if d := describe(adminCl, "t-alice"); d.ErrorCode != 0 || d.State != "Ongoing" || len(d.Topics) != 1 || d.Topics[0].Topic != "tx" {
		t.Fatalf("t-alice after the refused add: %+v, want only tx", d)
	}

	// AddOffsetsToTxn: WRITE on the id, then READ on the group.
	addOffsets := func(id, group string) int16 {
		t.Helper()
		req := kmsg.NewPtrAddOffsetsToTxnRequest()
		req.TransactionalID, req.ProducerID, req.ProducerEpoch, req.Group = id, pid, epoch, group
		r, err := req.RequestWith(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return r.ErrorCode
	}
	if code := addOffsets("t-desc", "g"); code != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("alice AddOffsetsToTxn t-desc: code %d", code)
	}
	if code := addOffsets("t-alice", "h"); code != kerr.GroupAuthorizationFailed.Code {
		t.Fatalf("alice AddOffsetsToTxn group h: code %d", code)
	}
	if code := addOffsets("t-alice", "g"); code != 0 {
		t.Fatalf("alice AddOffsetsToTxn group g: code %d", code)
	}

	// TxnOffsetCommit: WRITE on the id, READ on the group (either answers every partition),
	// READ on each topic (the refused topic alone fails; the other is committed).
	if r, err := txnCommitReq("t-desc", "g", pid, epoch, 1, "tx").RequestWith(ctx, alice); err != nil ||
		!codesEqual(txnCommitCodes(r), map[string][]int16{"tx": {kerr.TransactionalIDAuthorizationFailed.Code}}) {
		t.Fatalf("alice TxnOffsetCommit t-desc: %v %+v", err, r)
	}
	// (Straight to the gateway: kgo would first ask FindCoordinator for group h, refused too.)
	if r, err := direct[*kmsg.TxnOffsetCommitResponse](ctx, alice, txnCommitReq("t-alice", "h", pid, epoch, 1, "tx", "other")); err != nil ||
		!codesEqual(txnCommitCodes(r), map[string][]int16{"tx": {kerr.GroupAuthorizationFailed.Code}, "other": {kerr.GroupAuthorizationFailed.Code}}) {
		t.Fatalf("alice TxnOffsetCommit group h: %v %+v", err, r)
	}
	if r, err := txnCommitReq("t-alice", "g", pid, epoch, 1, "tx", "other").RequestWith(ctx, alice); err != nil ||
		!codesEqual(txnCommitCodes(r), map[string][]int16{"tx": {0}, "other": {kerr.TopicAuthorizationFailed.Code}}) {
		t.Fatalf("alice TxnOffsetCommit tx+other: %v %+v", err, r)
	}

	// Produce with transactional records: WRITE on the request's transactional id, which
	// must be there; records that are not transactional need only WRITE on the topic.
	for _, c := range []struct {
		name  string
		id    *string
		txn   bool
		want  int16
		value string
	}{
		{"transactional, t-desc", kmsg.StringPtr("t-desc"), true, kerr.TransactionalIDAuthorizationFailed.Code, "refused-1"},
		{"transactional, no id", nil, true, kerr.TransactionalIDAuthorizationFailed.Code, "refused-2"},
		{"plain, t-desc", kmsg.StringPtr("t-desc"), false, 0, "plain"},
	} {
		bpid, bepoch, bseq := pid, epoch, int32(100)
		if !c.txn { // a plain batch of no producer
			bpid, bepoch, bseq = -1, -1, -1
		}
		r, err := txnProduceReq(c.id, "tx", txnRecordBatch(bpid, bepoch, bseq, c.txn, c.value)).RequestWith(ctx, alice)
		if err != nil || r.Topics[0].Partitions[0].ErrorCode != c.want {
			t.Fatalf("alice Produce %s: %v %+v, want code %d", c.name, err, r, c.want)
		}
	}

	// DescribeTransactions: DESCRIBE on each id; bob may describe t-alice but not topic tx,
	// so its partitions are left out for him.
	if d := describe(alice, "t-other"); d.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("alice DescribeTransactions t-other: %+v", d)
	}
	if d := describe(alice, "t-alice"); d.ErrorCode != 0 || d.ProducerID != pid || len(d.Topics) != 1 {
		t.Fatalf("alice DescribeTransactions t-alice: %+v", d)
	}
	if d := describe(bob, "t-alice"); d.ErrorCode != 0 || d.ProducerID != pid || d.State != "Ongoing" || len(d.Topics) != 0 {
		t.Fatalf("bob DescribeTransactions t-alice: %+v, want no topics", d)
	}

	// ListTransactions: only the ids the principal may describe (admin's t-admin is hidden).
	ap := client("admin", kgo.TransactionalID("t-admin"), kgo.DefaultProduceTopic("other"))
	if err := ap.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := ap.ProduceSync(ctx, &kgo.Record{Value: []byte("admin")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	list := func(cl *kgo.Client) []string {
		t.Helper()
		r, err := kmsg.NewPtrListTransactionsRequest().RequestWith(ctx, cl)
		if err != nil || r.ErrorCode != 0 {
			t.Fatalf("ListTransactions: %v %+v", err, r)
		}
		var ids []string
		for _, s := range r.TransactionStates {
			ids = append(ids, s.TransactionalID)
		}
		slices.Sort(ids)
		return ids
	}
	if got := list(adminCl); !slices.Equal(got, []string{"t-admin", "t-alice"}) {
		t.Fatalf("admin ListTransactions: %v", got)
	}
	if got := list(alice); !slices.Equal(got, []string{"t-alice"}) {
		t.Fatalf("alice ListTransactions: %v", got)
	}
	if got := list(client("bob")); !slices.Equal(got, []string{"t-alice"}) {
		t.Fatalf("bob ListTransactions: %v", got)
	}

	// DescribeProducers: READ on each topic (bob has no READ anywhere).
	dp := func(cl *kgo.Client) map[string]int16 {
		t.Helper()
		req := kmsg.NewPtrDescribeProducersRequest()
		for _, tp := range []string{"tx", "other"} {
			rt := kmsg.NewDescribeProducersRequestTopic()
			rt.Topic, rt.Partitions = tp, []int32{0}
			req.Topics = append(req.Topics, rt)
		}
		r, err := direct[*kmsg.DescribeProducersResponse](ctx, cl, req) // kgo would ask Metadata for the leaders first
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int16{}
		for _, rt := range r.Topics {
			out[rt.Topic] = rt.Partitions[0].ErrorCode
			if rt.Topic == "tx" && rt.Partitions[0].ErrorCode == 0 && len(rt.Partitions[0].ActiveProducers) == 0 {
				t.Errorf("DescribeProducers tx: no producers")
			}
		}
		return out
	}
	if got := dp(alice); got["tx"] != 0 || got["other"] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("alice DescribeProducers: %v", got)
	}
	if got := dp(bob); got["tx"] != kerr.TopicAuthorizationFailed.Code || got["other"] != kerr.TopicAuthorizationFailed.Code {
		t.Fatalf("bob DescribeProducers: %v", got)
	}

	// EndTxn: WRITE on the id.
	end := kmsg.NewPtrEndTxnRequest()
	end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = "t-desc", pid, epoch, true
	if r, err := end.RequestWith(ctx, alice); err != nil || r.ErrorCode != kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("alice EndTxn t-desc: %v %+v", err, r)
	}
	// alice commits t-alice: the record and group g's offset (tx only) are committed.
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatalf("alice commit: %v", err)
	}
	if err := ap.EndTransaction(ctx, kgo.TryAbort); err != nil {
		t.Fatalf("admin abort: %v", err)
	}
	offs, err := admin.FetchOffsets(ctx, "g")
	if err != nil || offs.Error() != nil {
		t.Fatalf("FetchOffsets g: %v %v", err, offs.Error())
	}
	if o, ok := offs.Lookup("tx", 0); !ok || o.At != 1 {
		t.Fatalf("group g's offset of tx: %+v %v, want 1", o, ok)
	}
	if _, ok := offs.Lookup("other", 0); ok {
		t.Fatalf("group g has an offset of other, which alice may not read")
	}
	// Only alice's committed and plain records are in tx, never the refused ones: the log
	// holds those two and the commit marker.
	if ends, err := admin.ListEndOffsets(ctx, "tx"); err != nil || ends.Error() != nil {
		t.Fatalf("ListEndOffsets: %v %v", err, ends.Error())
	} else if o, _ := ends.Lookup("tx", 0); o.Offset != 3 {
		t.Fatalf("end offset of tx: %d, want 3 (committed, plain, the commit marker)", o.Offset)
	}
	consumer := client("admin", kgo.ConsumeTopics("tx"), kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var got []string
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(got) < 2 && cctx.Err() == nil {
		consumer.PollFetches(cctx).EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	if slices.Sort(got); !slices.Equal(got, []string{"committed", "plain"}) {
		t.Fatalf("read_committed tx: %q", got)
	}
}

// TestTxnACLsAddPartitionsV4: the broker-to-broker AddPartitionsToTxn v4 needs CLUSTER_ACTION;
// without it the top-level error is CLUSTER_AUTHORIZATION_FAILED and nothing is answered per
// transaction.
func TestTxnACLsAddPartitionsV4(t *testing.T) {
	ctx := context.Background()
	addr := startTxnServer(t, true)
	s := &aclServer{addr: addr}
	admin := kadm.NewClient(s.client(t, "admin"))
	mustACLs(t, admin, kadm.NewACLs().Allow("User:alice").TransactionalIDs("t").Topics("tx").
		Operations(kadm.OpWrite).ResourcePatternType(kadm.ACLPatternLiteral))
	mustACLs(t, admin, kadm.NewACLs().Allow("User:bob").Clusters().Operations(kadm.OpClusterAction).ResourcePatternType(kadm.ACLPatternLiteral))
	v4 := func(user string) *kmsg.AddPartitionsToTxnResponse {
		t.Helper()
		req := kmsg.NewPtrAddPartitionsToTxnRequest()
		req.SetVersion(4)
		tr := kmsg.NewAddPartitionsToTxnRequestTransaction()
		tr.TransactionalID, tr.ProducerID, tr.ProducerEpoch, tr.VerifyOnly = "t", 1, 0, true
		tt := kmsg.NewAddPartitionsToTxnRequestTransactionTopic()
		tt.Topic, tt.Partitions = "tx", []int32{0}
		tr.Topics = append(tr.Topics, tt)
		req.Transactions = append(req.Transactions, tr)
		// Straight to the gateway (kgo would look a coordinator up by the v0–3 field).
		r, err := direct[*kmsg.AddPartitionsToTxnResponse](ctx, s.client(t, user), req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := v4("alice"); r.ErrorCode != kerr.ClusterAuthorizationFailed.Code || len(r.Transactions) != 0 {
		t.Fatalf("alice v4: %+v", r)
	}
	if r := v4("bob"); r.ErrorCode != 0 || len(r.Transactions) != 1 {
		t.Fatalf("bob (CLUSTER_ACTION) v4: %+v", r)
	}
}

// TestTxnAuthorizerOff: without the authorizer the transaction APIs behave as before: a
// kgo transactional producer commits, every id is listed, and a transactional batch with no
// transactional id goes to the broker (which answers for it) instead of being refused.
func TestTxnAuthorizerOff(t *testing.T) {
	ctx := context.Background()
	addr := startTxnServer(t, false)
	adm := kafkaclients.KgoClient(t, addr)
	if _, err := kadm.NewClient(adm).CreateTopics(ctx, 1, 1, nil, "tx"); err != nil {
		t.Fatal(err)
	}
	p := kafkaclients.KgoClient(t, addr, kgo.TransactionalID("t-off"), kgo.DefaultProduceTopic("tx"))
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(ctx, &kgo.Record{Value: []byte("v")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := p.ProducerID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	r, err := txnProduceReq(nil, "tx", txnRecordBatch(pid, epoch, 1, true, "no-id")).RequestWith(ctx, adm)
	if err != nil || r.Topics[0].Partitions[0].ErrorCode == kerr.TransactionalIDAuthorizationFailed.Code {
		t.Fatalf("transactional batch without an id, authorizer off: %v %+v", err, r)
	}
	if err := p.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	lr, err := kmsg.NewPtrListTransactionsRequest().RequestWith(ctx, adm)
	if err != nil || len(lr.TransactionStates) != 1 || lr.TransactionStates[0].TransactionalID != "t-off" {
		t.Fatalf("ListTransactions: %v %+v", err, lr)
	}
}
