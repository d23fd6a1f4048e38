package gateway_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// tp names a partition in a raw fetch: by name below v13, by id from v13.
type tp struct {
	topic  string
	id     [16]byte
	part   int32
	offset int64
}

// sessionFetch builds a Fetch request that answers at once (no min bytes).
func sessionFetch(v int16, session, epoch int32, parts []tp, forget []tp) *kmsg.FetchRequest {
	fe := kmsg.NewPtrFetchRequest()
	fe.SetVersion(v)
	fe.MaxBytes = 1 << 20
	fe.SessionID, fe.SessionEpoch = session, epoch
	for _, p := range parts {
		if n := len(fe.Topics); n == 0 || fe.Topics[n-1].Topic != p.topic || fe.Topics[n-1].TopicID != p.id {
			ft := kmsg.NewFetchRequestTopic()
			ft.Topic, ft.TopicID = p.topic, p.id
			fe.Topics = append(fe.Topics, ft)
		}
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.FetchOffset, fp.PartitionMaxBytes = p.part, p.offset, 1<<20
		t := &fe.Topics[len(fe.Topics)-1]
		t.Partitions = append(t.Partitions, fp)
	}
	for _, p := range forget {
		if n := len(fe.ForgottenTopics); n == 0 || fe.ForgottenTopics[n-1].Topic != p.topic || fe.ForgottenTopics[n-1].TopicID != p.id {
			ft := kmsg.NewFetchRequestForgottenTopic()
			ft.Topic, ft.TopicID = p.topic, p.id
			fe.ForgottenTopics = append(fe.ForgottenTopics, ft)
		}
		f := &fe.ForgottenTopics[len(fe.ForgottenTopics)-1]
		f.Partitions = append(f.Partitions, p.part)
	}
	return fe
}

// answered lists the partitions of a fetch answer as "topic/partition:error:hw:records"
// (the topic by name, or by id from v13), in answer order.
func answered(resp *kmsg.FetchResponse) []string {
	var out []string
	for _, t := range resp.Topics {
		name := t.Topic
		if resp.Version >= 13 {
			name = fmt.Sprintf("%x", t.TopicID[:2])
		}
		for _, p := range t.Partitions {
			out = append(out, fmt.Sprintf("%s/%d:%d:%d:%d", name, p.Partition, p.ErrorCode, p.HighWatermark, len(p.RecordBatches)))
		}
	}
	return out
}

// fetchOn sends req on c and returns the answer.
func fetchOn(t *testing.T, c *rawConn, req *kmsg.FetchRequest) *kmsg.FetchResponse {
	t.Helper()
	return c.roundTrip(req, 9).(*kmsg.FetchResponse)
}

func produceOne(t *testing.T, c *rawConn, topic string, part int32) {
	t.Helper()
	r := c.roundTrip(produceReq(9, topic, part, batch(1)), 5).(*kmsg.ProduceResponse)
	if code := r.Topics[0].Partitions[0].ErrorCode; code != 0 {
		t.Fatalf("produce %s/%d: error %d", topic, part, code)
	}
}

func TestFetchSessionIncremental(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	createTopic(t, c, "a", 3)
	createTopic(t, c, "b", 2)
	all := []tp{{topic: "a", part: 0}, {topic: "a", part: 1}, {topic: "a", part: 2}, {topic: "b", part: 0}, {topic: "b", part: 1}}

	// A full fetch (epoch 0) opens a session and answers every partition.
	full := fetchOn(t, c, sessionFetch(12, 0, 0, all, nil))
	if full.ErrorCode != 0 || full.SessionID == 0 {
		t.Fatalf("full fetch: error %d, session %d; want a session", full.ErrorCode, full.SessionID)
	}
	id := full.SessionID
	if got := answered(full); len(got) != 5 {
		t.Fatalf("full fetch answered %v, want all 5 partitions", got)
	}

	// Nothing changed: the incremental answer is empty.
	inc := fetchOn(t, c, sessionFetch(12, id, 1, nil, nil))
	if inc.ErrorCode != 0 || inc.SessionID != id || len(inc.Topics) != 0 {
		t.Fatalf("unchanged incremental: error %d session %d topics %v", inc.ErrorCode, inc.SessionID, answered(inc))
	}

	// New data in a/1 and b/0: only those are answered, although the request names none.
	produceOne(t, c, "a", 1)
	produceOne(t, c, "b", 0)
	inc = fetchOn(t, c, sessionFetch(12, id, 2, nil, nil))
	if got, want := answered(inc), []string{"a/1:0:1:", "b/0:0:1:"}; !prefixesMatch(got, want) {
		t.Fatalf("after produce: answered %v, want %v with records", got, want)
	}
	for _, tt := range inc.Topics {
		for _, p := range tt.Partitions {
			if len(p.RecordBatches) == 0 {
				t.Fatalf("partition %s/%d answered without records", tt.Topic, p.Partition)
			}
		}
	}

	// The client moves a/1 and b/0 past the record: the answer is empty again. Another
	// connection carries the session on (the cache is the gateway's, not the connection's).
	c2 := dial(t, ts.addr)
	inc = fetchOn(t, c2, sessionFetch(12, id, 3, []tp{{topic: "a", part: 1, offset: 1}, {topic: "b", part: 0, offset: 1}}, nil))
	if inc.ErrorCode != 0 || len(inc.Topics) != 0 {
		t.Fatalf("after moving on, from a second connection: error %d, answered %v", inc.ErrorCode, answered(inc))
	}

	// Forget b (both partitions): new data there is no longer answered; a/2's still is.
	inc = fetchOn(t, c, sessionFetch(12, id, 4, nil, []tp{{topic: "b", part: 0}, {topic: "b", part: 1}}))
	if inc.ErrorCode != 0 || len(inc.Topics) != 0 {
		t.Fatalf("forget: error %d answered %v", inc.ErrorCode, answered(inc))
	}
	produceOne(t, c, "b", 1)
	produceOne(t, c, "a", 2)
	inc = fetchOn(t, c, sessionFetch(12, id, 5, nil, nil))
	if got := answered(inc); len(got) != 1 || got[0][:4] != "a/2:" {
		t.Fatalf("after forgetting b: answered %v, want only a/2", got)
	}

	// Adding a partition in an incremental request answers it (first sight) and keeps it.
	inc = fetchOn(t, c, sessionFetch(12, id, 6, []tp{{topic: "a", part: 2, offset: 1}, {topic: "b", part: 1}}, nil))
	if got := answered(inc); len(got) != 1 || got[0] != fmt.Sprintf("b/1:0:1:%d", len(batch(1))) {
		t.Fatalf("re-adding b/1: answered %v", got)
	}
	st := ts.srv.FetchSessionStats()
	if st.Sessions != 1 || st.Partitions != 4 || st.FullFetches != 1 || st.IncrementalFetches != 6 || st.Created != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// prefixesMatch reports whether each got[i] starts with want[i].
func prefixesMatch(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if len(got[i]) < len(want[i]) || got[i][:len(want[i])] != want[i] {
			return false
		}
	}
	return true
}

func TestFetchSessionErrors(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	createTopic(t, c, "e", 2)
	parts := []tp{{topic: "e", part: 0}, {topic: "e", part: 1}}

	check := func(name string, resp *kmsg.FetchResponse, code int16) {
		t.Helper()
		if resp.ErrorCode != code || resp.SessionID != 0 || len(resp.Topics) != 0 {
			t.Fatalf("%s: error %d session %d topics %v; want error %d, session 0, no topics", name, resp.ErrorCode, resp.SessionID, answered(resp), code)
		}
	}
	check("unknown session", fetchOn(t, c, sessionFetch(12, 12345, 1, parts, nil)), kafkawire.ErrFetchSessionIDNotFound)
	check("session id 0 with an incremental epoch", fetchOn(t, c, sessionFetch(12, 0, 3, parts, nil)), kafkawire.ErrFetchSessionIDNotFound)

	id := fetchOn(t, c, sessionFetch(12, 0, 0, parts, nil)).SessionID
	if id <= 0 {
		t.Fatalf("no session opened (id %d)", id)
	}
	check("epoch 2 before 1", fetchOn(t, c, sessionFetch(12, id, 2, nil, nil)), kafkawire.ErrInvalidFetchSessionEpoch)
	if r := fetchOn(t, c, sessionFetch(12, id, 1, nil, nil)); r.ErrorCode != 0 {
		t.Fatalf("epoch 1 after a wrong epoch: error %d (a wrong epoch must not move the session)", r.ErrorCode)
	}
	check("epoch 1 again (a duplicate)", fetchOn(t, c, sessionFetch(12, id, 1, nil, nil)), kafkawire.ErrInvalidFetchSessionEpoch)
	check("v13 on a v12 session", fetchOn(t, c, sessionFetch(13, id, 2, nil, nil)), kafkawire.ErrFetchSessionTopicIDError)

	// Epoch -1 closes the session and answers without one.
	fin := fetchOn(t, c, sessionFetch(12, id, -1, parts, nil))
	if fin.ErrorCode != 0 || fin.SessionID != 0 || len(answered(fin)) != 2 {
		t.Fatalf("final fetch: error %d session %d answered %v", fin.ErrorCode, fin.SessionID, answered(fin))
	}
	check("closed session", fetchOn(t, c, sessionFetch(12, id, 2, nil, nil)), kafkawire.ErrFetchSessionIDNotFound)

	// A full fetch naming a live session replaces it.
	id = fetchOn(t, c, sessionFetch(12, 0, 0, parts, nil)).SessionID
	id2 := fetchOn(t, c, sessionFetch(12, id, 0, parts, nil)).SessionID
	if id2 <= 0 || id2 == id {
		t.Fatalf("re-opened session id %d (old %d)", id2, id)
	}
	check("replaced session", fetchOn(t, c, sessionFetch(12, id, 1, nil, nil)), kafkawire.ErrFetchSessionIDNotFound)

	// Forgetting every partition removes the session: answered without one.
	r := fetchOn(t, c, sessionFetch(12, id2, 1, nil, parts))
	if r.ErrorCode != 0 || r.SessionID != 0 {
		t.Fatalf("emptying the session: error %d session %d", r.ErrorCode, r.SessionID)
	}
	check("emptied session", fetchOn(t, c, sessionFetch(12, id2, 2, nil, nil)), kafkawire.ErrFetchSessionIDNotFound)

	// A partition with an error is answered on every incremental fetch.
	id = fetchOn(t, c, sessionFetch(12, 0, 0, []tp{{topic: "e", part: 0}, {topic: "nope", part: 0}}, nil)).SessionID
	for epoch := int32(1); epoch <= 3; epoch++ {
		got := answered(fetchOn(t, c, sessionFetch(12, id, epoch, nil, nil)))
		if want := []string{fmt.Sprintf("nope/0:%d:-1:0", kafkawire.ErrUnknownTopicOrPartition)}; !slices.Equal(got, want) {
			t.Fatalf("epoch %d: answered %v, want %v", epoch, got, want)
		}
	}
	st := ts.srv.FetchSessionStats()
	if st.SessionErrors != 8 || st.Sessions != 1 {
		t.Fatalf("stats %+v, want 8 session errors and 1 session", st)
	}
}

func TestFetchSessionEviction(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	ts := start(t, gateway.Config{FetchSessions: gateway.FetchSessionConfig{Slots: 2, Clock: clk}})
	c := dial(t, ts.addr)
	createTopic(t, c, "v", 4)
	p := func(n int) []tp {
		var out []tp
		for i := range n {
			out = append(out, tp{topic: "v", part: int32(i)})
		}
		return out
	}
	open := func(n int) int32 {
		t.Helper()
		r := fetchOn(t, c, sessionFetch(12, 0, 0, p(n), nil))
		if r.ErrorCode != 0 || len(answered(r)) != n {
			t.Fatalf("full fetch of %d: error %d answered %v", n, r.ErrorCode, answered(r))
		}
		return r.SessionID
	}
	// use fetches in session id at epoch; the answer must be want.
	use := func(what string, id, epoch int32, want int16) {
		t.Helper()
		if code := fetchOn(t, c, sessionFetch(12, id, epoch, nil, nil)).ErrorCode; code != want {
			t.Fatalf("%s: error %d, want %d", what, code, want)
		}
	}

	s1, s2 := open(1), open(1)
	if s1 <= 0 || s2 <= 0 {
		t.Fatalf("sessions %d %d, want two", s1, s2)
	}
	// Full cache, both sessions younger than 2 minutes: no eviction, no session.
	if id := open(4); id != 0 {
		t.Fatalf("third session %d opened in a full cache of young sessions", id)
	}
	clk.Advance(time.Minute)
	use("s1", s1, 1, 0)
	// s2, unused for more than 2 minutes, is stale: the next session evicts it (though
	// no larger than s2); s1, used a minute later, stays.
	clk.Advance(90 * time.Second)
	s3 := open(1)
	if s3 <= 0 {
		t.Fatal("no session although s2 is stale")
	}
	use("evicted s2", s2, 1, kafkawire.ErrFetchSessionIDNotFound)
	use("s1 after the eviction of s2", s1, 2, 0)
	// Now s1 (created 2.5 minutes ago, touched just now) is evictable, s3 (new) is not.
	// A session of s1's size is not worth more than s1: nothing happens.
	if id := open(1); id != 0 {
		t.Fatalf("a session of equal size evicted s1 (got id %d)", id)
	}
	use("s1", s1, 3, 0)
	// A larger one is: s1 goes.
	s4 := open(3)
	if s4 <= 0 {
		t.Fatal("a larger session did not evict the older, smaller s1")
	}
	use("evicted s1", s1, 4, kafkawire.ErrFetchSessionIDNotFound)
	use("s3 (young) after an eviction", s3, 1, 0)
	if st := ts.srv.FetchSessionStats(); st.Evicted != 2 || st.Sessions != 2 || st.Partitions != 4 {
		t.Fatalf("stats %+v, want 2 evictions, 2 sessions of 1+3 partitions", st)
	}
}

func TestFetchSessionPartitionBound(t *testing.T) {
	ts := start(t, gateway.Config{FetchSessions: gateway.FetchSessionConfig{MaxPartitions: 3}})
	c := dial(t, ts.addr)
	createTopic(t, c, "w", 4)
	if r := fetchOn(t, c, sessionFetch(12, 0, 0, []tp{{topic: "w"}, {topic: "w", part: 1}, {topic: "w", part: 2}, {topic: "w", part: 3}}, nil)); r.SessionID != 0 || len(answered(r)) != 4 {
		t.Fatalf("a 4-partition full fetch under a 3-partition bound: session %d answered %v", r.SessionID, answered(r))
	}
	id := fetchOn(t, c, sessionFetch(12, 0, 0, []tp{{topic: "w"}, {topic: "w", part: 1}}, nil)).SessionID
	if id <= 0 {
		t.Fatal("no session for 2 partitions under a bound of 3")
	}
	// Growing to 3 fits, to 4 does not: the session goes, as if evicted.
	if r := fetchOn(t, c, sessionFetch(12, id, 1, []tp{{topic: "w", part: 2}}, nil)); r.ErrorCode != 0 {
		t.Fatalf("growing to 3: error %d", r.ErrorCode)
	}
	if r := fetchOn(t, c, sessionFetch(12, id, 2, []tp{{topic: "w", part: 3}}, nil)); r.ErrorCode != kafkawire.ErrFetchSessionIDNotFound {
		t.Fatalf("growing to 4: error %d, want FETCH_SESSION_ID_NOT_FOUND", r.ErrorCode)
	}
	if st := ts.srv.FetchSessionStats(); st.Sessions != 0 || st.Partitions != 0 {
		t.Fatalf("stats %+v, want an empty cache", st)
	}
}

func TestFetchSessionsOff(t *testing.T) {
	ts := start(t, gateway.Config{FetchSessions: gateway.FetchSessionConfig{Slots: -1}})
	c := dial(t, ts.addr)
	createTopic(t, c, "o", 1)
	if r := fetchOn(t, c, sessionFetch(12, 0, 0, []tp{{topic: "o"}}, nil)); r.SessionID != 0 || len(answered(r)) != 1 {
		t.Fatalf("sessions off: session %d answered %v", r.SessionID, answered(r))
	}
	if r := fetchOn(t, c, sessionFetch(12, 7, 1, nil, nil)); r.ErrorCode != kafkawire.ErrFetchSessionIDNotFound {
		t.Fatalf("sessions off, incremental: error %d", r.ErrorCode)
	}
}

func TestFetchSessionTopicIDs(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	ids := map[string][16]byte{}
	for _, name := range []string{"x", "y"} {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		ct := kmsg.NewCreateTopicsRequestTopic()
		ct.Topic, ct.NumPartitions, ct.ReplicationFactor = name, 1, -1
		req.Topics = append(req.Topics, ct)
		ids[name] = c.roundTrip(req, 1).(*kmsg.CreateTopicsResponse).Topics[0].TopicID
	}
	x, y := tp{id: ids["x"]}, tp{id: ids["y"]}
	full := fetchOn(t, c, sessionFetch(16, 0, 0, []tp{x, y}, nil))
	if full.SessionID <= 0 || len(answered(full)) != 2 {
		t.Fatalf("v16 full fetch: session %d answered %v", full.SessionID, answered(full))
	}
	id := full.SessionID
	if r := fetchOn(t, c, sessionFetch(12, id, 1, nil, nil)); r.ErrorCode != kafkawire.ErrFetchSessionTopicIDError {
		t.Fatalf("v12 on a v16 session: error %d", r.ErrorCode)
	}
	produceOne(t, c, "x", 0)
	produceOne(t, c, "y", 0)
	r := fetchOn(t, c, sessionFetch(16, id, 1, nil, []tp{y})) // forget y by id
	if len(r.Topics) != 1 || r.Topics[0].TopicID != ids["x"] || len(r.Topics[0].Partitions[0].RecordBatches) == 0 {
		t.Fatalf("after forgetting y: answered %v, want x with its record", answered(r))
	}
	// x deleted (through this gateway): its partition answers UNKNOWN_TOPIC_ID.
	del := kmsg.NewPtrDeleteTopicsRequest()
	del.SetVersion(5)
	del.TopicNames = []string{"x"}
	if dr := c.roundTrip(del, 3).(*kmsg.DeleteTopicsResponse); dr.Topics[0].ErrorCode != 0 {
		t.Fatalf("delete: %d", dr.Topics[0].ErrorCode)
	}
	r = fetchOn(t, c, sessionFetch(16, id, 2, []tp{{id: ids["x"], offset: 1}}, nil))
	if len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != kafkawire.ErrUnknownTopicID {
		t.Fatalf("deleted topic in a session: answered %v, want UNKNOWN_TOPIC_ID", answered(r))
	}
	// Created again under the same name, and the gateway learns the new id (Metadata):
	// the session's partition of the old id is INCONSISTENT_TOPIC_ID.
	req := kmsg.NewPtrCreateTopicsRequest()
	req.SetVersion(7)
	ct := kmsg.NewCreateTopicsRequestTopic()
	ct.Topic, ct.NumPartitions, ct.ReplicationFactor = "x", 1, -1
	req.Topics = append(req.Topics, ct)
	c.roundTrip(req, 1)
	md := kmsg.NewPtrMetadataRequest()
	md.SetVersion(12)
	c.roundTrip(md, 4)
	r = fetchOn(t, c, sessionFetch(16, id, 3, nil, nil))
	if len(r.Topics) != 1 || r.Topics[0].Partitions[0].ErrorCode != kafkawire.ErrInconsistentTopicID {
		t.Fatalf("re-created topic in a session: answered %v, want INCONSISTENT_TOPIC_ID", answered(r))
	}
}

// TestFetchSessionKgo consumes many partitions with kgo (which uses fetch sessions) and
// checks that the gateway served incremental fetches whose requests named few partitions
// and were much smaller on the wire than the full fetch that opened the session.
func TestFetchSessionKgo(t *testing.T) {
	const parts, rounds = 64, 8
	ts := start(t, gateway.Config{Backend: gatewaytest.NewMem(parts)})
	sizes := &fetchSizes{}
	createTopic(t, dial(t, ts.addr), "many", parts)
	prod := kafkaclients.KgoClient(t, ts.addr, kgo.DefaultProduceTopic("many"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var cons *kgo.Client
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	produce := func(part int32, n int) {
		for i := range n {
			if err := prod.ProduceSync(ctx, &kgo.Record{Partition: part, Value: []byte(fmt.Sprint(part, "-", i))}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
	}
	consume := func(n int) { kafkaclients.PollN(ctx, t, cons, n) }
	for p := range int32(parts) {
		produce(p, 1)
	}
	cons = kafkaclients.KgoClient(t, ts.addr, kgo.ConsumeTopics("many"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond), kgo.WithHooks(sizes))
	consume(parts)
	before := ts.srv.FetchSessionStats()
	sizes.reset()
	for i := range rounds {
		produce(int32(i*7%parts), 3)
		consume(3)
	}
	st := ts.srv.FetchSessionStats()
	if st.Created == 0 || st.Sessions != 1 || st.Partitions != parts {
		t.Fatalf("want one session holding all %d partitions: %+v", parts, st)
	}
	inc := st.IncrementalFetches - before.IncrementalFetches
	if inc < rounds || st.FullFetches != before.FullFetches {
		t.Fatalf("%d incremental and %d full fetches while consuming %d rounds, want >= %d incremental and no full one (stats %+v)",
			inc, st.FullFetches-before.FullFetches, rounds, rounds, st)
	}
	// While consuming the rounds, the client named few of the session's partitions per
	// request (only those whose position moved), and the answers held few of those fetched.
	named := st.IncrementalRequestPartitions - before.IncrementalRequestPartitions
	fetched := st.IncrementalSessionPartitions - before.IncrementalSessionPartitions
	answered := st.IncrementalAnswerPartitions - before.IncrementalAnswerPartitions
	if named*3 > fetched || answered*3 > fetched {
		t.Fatalf("incremental fetches named %d and answered %d of %d fetched partitions", named, answered, fetched)
	}
	// On the wire: the typical fetch request of the rounds is a fraction of a full fetch
	// request of the 64 partitions.
	full := kmsg.NewPtrFetchRequest()
	full.SetVersion(16)
	ft := kmsg.NewFetchRequestTopic()
	for p := range int32(parts) {
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition = p
		ft.Partitions = append(ft.Partitions, fp)
	}
	full.Topics = append(full.Topics, ft)
	fullBytes := len(encode(full, 1))
	median := sizes.median()
	t.Logf("fetch request bytes while consuming rounds: median %d; a full fetch of %d partitions: %d; stats %+v", median, parts, fullBytes, st)
	if median*5 > fullBytes {
		t.Fatalf("median fetch request %d bytes, a full one %d: requests did not shrink", median, fullBytes)
	}
}

// fetchSizes records the bytes of each fetch request a kgo client writes.
type fetchSizes struct {
	mu    sync.Mutex
	sizes []int
}

func (f *fetchSizes) OnBrokerWrite(_ kgo.BrokerMetadata, key int16, n int, _, _ time.Duration, err error) {
	if key != kafkawire.KeyFetch || err != nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sizes = append(f.sizes, n)
}

func (f *fetchSizes) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sizes = nil
}

func (f *fetchSizes) median() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sizes) == 0 {
		return 1 << 30
	}
	s := slices.Sorted(slices.Values(f.sizes))
	return s[len(s)/2]
}

// TestFetchSessionRotatesPartitions: when the answer's byte budget admits one partition's
// data, a session hands it to each partition in turn (a partition answered with records
// moves to the end of the session's order), where a sessionless fetch always serves the
// first partition of its request.
func TestFetchSessionRotatesPartitions(t *testing.T) {
	ts := start(t, gateway.Config{})
	c := dial(t, ts.addr)
	createTopic(t, c, "r", 3)
	parts := []tp{{topic: "r", part: 0}, {topic: "r", part: 1}, {topic: "r", part: 2}}
	for p := range int32(3) {
		produceOne(t, c, "r", p)
	}
	withData := func(resp *kmsg.FetchResponse) []int32 {
		var out []int32
		for _, tt := range resp.Topics {
			for _, p := range tt.Partitions {
				if len(p.RecordBatches) > 0 {
					out = append(out, p.Partition)
				}
			}
		}
		return out
	}
	small := func(req *kmsg.FetchRequest) *kmsg.FetchRequest { req.MaxBytes = 1; return req }
	for range 3 {
		if got := withData(fetchOn(t, c, small(sessionFetch(12, 0, -1, parts, nil)))); !slices.Equal(got, []int32{0}) {
			t.Fatalf("sessionless fetch served %v, want [0]", got)
		}
	}
	open := fetchOn(t, c, small(sessionFetch(12, 0, 0, parts, nil)))
	if got := withData(open); !slices.Equal(got, []int32{0}) || open.SessionID == 0 {
		t.Fatalf("opening fetch served %v (session %d)", got, open.SessionID)
	}
	for epoch, want := range []int32{0, 1, 2, 0, 1} {
		// The client never advances (it re-reads the same record), so only the budget
		// decides who is served.
		got := withData(fetchOn(t, c, small(sessionFetch(12, open.SessionID, int32(epoch+1), nil, nil))))
		if !slices.Equal(got, []int32{want}) {
			t.Fatalf("incremental fetch %d served %v, want [%d]", epoch+1, got, want)
		}
	}
}
