package gateway

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// modelPart is a partition of the reference model: (topic name, partition).
type modelPart struct {
	topic string
	part  int32
}

// FuzzFetchSessionCache drives the session cache with arbitrary sequences of full fetches,
// incremental fetches (right and wrong epochs, additions, forgotten partitions, answers
// with and without records), closes and clock steps, and checks after every step that each
// session's partition order equals a plain-slice model of Kafka's rules (new partitions
// last, forgotten ones gone, partitions answered with records moved last) and that the
// cache's accounting (slots, partition count, indexes, free lists) is consistent.
func FuzzFetchSessionCache(f *testing.F) {
	f.Add([]byte{0, 5, 1, 0, 3, 0x41, 1, 0, 0x12, 2, 0, 3, 200, 0, 9})
	f.Add([]byte{0, 3, 0, 4, 0, 5, 3, 130, 0, 2, 1, 1, 0x33, 1, 2, 0x08, 4, 1})
	f.Add([]byte{0, 12, 0, 11, 1, 0, 0xff, 1, 0, 0xf0, 3, 250, 0, 1, 1, 0, 0x0f})
	f.Fuzz(func(t *testing.T, data []byte) {
		now := time.Unix(1_800_000_000, 0)
		c := newFetchSessionCache(FetchSessionConfig{Slots: 3, MaxPartitions: 12})
		next := int32(0)
		c.newID = func() int32 { next++; return next }
		model := map[int32][]modelPart{} // session id -> order
		epochs := map[int32]int32{}
		var ids []int32 // every id handed out, live or not
		pos := 0
		byte1 := func() byte {
			if pos >= len(data) {
				return 0
			}
			pos++
			return data[pos-1]
		}
		partOf := func(b byte) modelPart { return modelPart{fmt.Sprintf("t%d", b>>2&3), int32(b & 3)} }
		for step := 0; pos < len(data) && step < 200; step++ {
			switch byte1() % 4 {
			case 0: // full fetch opening a session of n partitions
				n := int(byte1() % 14)
				s := newFetchSession(false, n)
				var order []modelPart
				for range n {
					p := partOf(byte1())
					ti := s.topicIndex(p.topic, [16]byte{}, true)
					s.topics[ti].name = p.topic
					s.upsert(ti, p.part, 0, 1, 0, 0)
					if !slices.Contains(order, p) {
						order = append(order, p)
					}
				}
				if id := c.create(s, false, now); id != 0 {
					model[id], epochs[id] = order, 1
					ids = append(ids, id)
				}
			case 1: // incremental fetch
				if len(ids) == 0 {
					continue
				}
				id := ids[int(byte1())%len(ids)]
				flags := byte1()
				epoch := epochs[id]
				if flags&1 != 0 {
					epoch++ // wrong epoch
				}
				req := kmsg.NewPtrFetchRequest()
				req.SetVersion(12)
				req.SessionID, req.SessionEpoch = id, epoch
				var add, forget []modelPart
				for range flags >> 1 & 3 {
					add = append(add, partOf(byte1()))
				}
				for range flags >> 3 & 3 {
					forget = append(forget, partOf(byte1()))
				}
				for _, p := range add {
					rt := kmsg.NewFetchRequestTopic()
					rt.Topic = p.topic
					rp := kmsg.NewFetchRequestTopicPartition()
					rp.Partition = p.part
					rt.Partitions = append(rt.Partitions, rp)
					req.Topics = append(req.Topics, rt)
				}
				for _, p := range forget {
					ft := kmsg.NewFetchRequestForgottenTopic()
					ft.Topic, ft.Partitions = p.topic, []int32{p.part}
					req.ForgottenTopics = append(req.ForgottenTopics, ft)
				}
				fetch, code, empty := c.begin(req, now)
				_, live := model[id]
				switch {
				case !live:
					if code == 0 {
						t.Fatalf("step %d: session %d is gone but begin answered code 0", step, id)
					}
					continue
				case epoch != epochs[id]:
					if code == 0 {
						t.Fatalf("step %d: wrong epoch %d (want %d) accepted", step, epoch, epochs[id])
					}
					continue
				}
				order := model[id]
				for _, p := range add {
					if !slices.Contains(order, p) {
						order = append(order, p)
					}
				}
				for _, p := range forget {
					order = slices.DeleteFunc(order, func(q modelPart) bool { return q == p })
				}
				if len(order) == 0 {
					if !empty {
						t.Fatalf("step %d: session %d emptied but not removed (code %d)", step, id, code)
					}
					delete(model, id)
					continue
				}
				if code != 0 {
					// Growing past the partition bound evicts the session.
					total := len(order)
					for sid, o := range model {
						if sid != id {
							total += len(o)
						}
					}
					if code != 70 || total <= c.maxParts {
						t.Fatalf("step %d: session %d answered code %d (would hold %d of %d)", step, id, code, total, c.maxParts)
					}
					delete(model, id)
					continue
				}
				epochs[id]++
				// Answer: partitions whose bit is set in one byte got records.
				got := make([]modelPart, len(fetch.items))
				res := make([]brokerop.FetchPartitionResp, len(fetch.items))
				rec := byte1()
				var moved []modelPart
				for i, it := range fetch.items {
					got[i] = modelPart{fetch.topics[it.topic].name, it.partition}
					if rec>>(i%8)&1 != 0 {
						res[i].Records = []byte{1}
						moved = append(moved, got[i])
					}
				}
				if !slices.Equal(got, order) {
					t.Fatalf("step %d: session %d fetches %v, model %v", step, id, got, order)
				}
				if _, ok := fetch.finish(res); !ok {
					t.Fatalf("step %d: finish refused a fetch with the current epoch", step)
				}
				order = slices.DeleteFunc(order, func(q modelPart) bool { return slices.Contains(moved, q) })
				model[id] = append(order, moved...)
			case 2: // a full fetch closing a session
				if len(ids) == 0 {
					continue
				}
				id := ids[int(byte1())%len(ids)]
				c.close(id)
				delete(model, id)
			case 3: // time passes
				now = now.Add(time.Duration(byte1()) * time.Second)
			}
			// Sessions evicted by create leave the cache: follow it.
			c.mu.Lock()
			for id := range model {
				if _, ok := c.sessions[id]; !ok {
					delete(model, id)
				}
			}
			checkCache(t, c, model)
			c.mu.Unlock()
		}
	})
}

// checkCache verifies c against model. Caller holds c.mu.
func checkCache(t *testing.T, c *fetchSessionCache, model map[int32][]modelPart) {
	t.Helper()
	if len(c.sessions) > c.slots {
		t.Fatalf("%d sessions in %d slots", len(c.sessions), c.slots)
	}
	if len(c.sessions) != len(model) {
		t.Fatalf("%d sessions, model has %d", len(c.sessions), len(model))
	}
	total := 0
	for id, s := range c.sessions {
		s.mu.Lock()
		var order []modelPart
		prev := int32(-1)
		topicCount := map[int32]int32{}
		for slot := s.head; slot >= 0; slot = s.parts[slot].next {
			p := &s.parts[slot]
			if p.prev != prev {
				t.Fatalf("session %d: slot %d prev %d, want %d", id, slot, p.prev, prev)
			}
			if s.index[partKey(p.topic, p.partition)] != slot {
				t.Fatalf("session %d: index does not lead to slot %d", id, slot)
			}
			order = append(order, modelPart{s.topics[p.topic].name, p.partition})
			topicCount[p.topic]++
			prev = slot
		}
		if s.tail != prev || len(order) != s.n || len(s.index) != s.n {
			t.Fatalf("session %d: tail %d (last %d), %d in order, n %d, index %d", id, s.tail, prev, len(order), s.n, len(s.index))
		}
		for i, tt := range s.topics {
			if tt.n != topicCount[int32(i)] {
				t.Fatalf("session %d: topic %d counts %d partitions, holds %d", id, i, tt.n, topicCount[int32(i)])
			}
			if tt.n > 0 && s.byName[tt.name] != int32(i) {
				t.Fatalf("session %d: topic %q not indexed at %d", id, tt.name, i)
			}
		}
		if len(s.byName) != len(s.topics)-len(s.freeTopics) {
			t.Fatalf("session %d: %d named topics, %d entries, %d free", id, len(s.byName), len(s.topics), len(s.freeTopics))
		}
		for slot := s.free; slot >= 0; slot = s.parts[slot].next {
			if s.parts[slot] != (sessionPart{next: s.parts[slot].next}) {
				t.Fatalf("session %d: free slot %d not cleared", id, slot)
			}
		}
		if !slices.Equal(order, model[id]) {
			t.Fatalf("session %d: order %v, model %v", id, order, model[id])
		}
		if s.cachedSize != s.n {
			t.Fatalf("session %d: cached size %d, holds %d", id, s.cachedSize, s.n)
		}
		total += s.n
		s.mu.Unlock()
	}
	if total != c.parts || c.parts > c.maxParts {
		t.Fatalf("cache counts %d partitions, sessions hold %d (bound %d)", c.parts, total, c.maxParts)
	}
}

// TestFetchSessionDuplicateRequest: a request applied while an earlier one on the same
// session is still fetching makes the earlier one's answer INVALID_FETCH_SESSION_EPOCH
// (Kafka's duplicate-request check), and leaves the session to the later one.
func TestFetchSessionDuplicateRequest(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	c := newFetchSessionCache(FetchSessionConfig{Clock: clock.NewFake(now)})
	s := newFetchSession(false, 1)
	ti := s.topicIndex("t", [16]byte{}, true)
	s.topics[ti].name = "t"
	s.upsert(ti, 0, 0, 1, 0, 0)
	id := c.create(s, false, now)
	req := func(epoch int32) *kmsg.FetchRequest {
		r := kmsg.NewPtrFetchRequest()
		r.SetVersion(12)
		r.SessionID, r.SessionEpoch = id, epoch
		return r
	}
	first, code, _ := c.begin(req(1), now)
	if code != 0 {
		t.Fatalf("epoch 1: code %d", code)
	}
	second, code, _ := c.begin(req(2), now)
	if code != 0 {
		t.Fatalf("epoch 2 while epoch 1 is in flight: code %d", code)
	}
	res := []brokerop.FetchPartitionResp{{HighWatermark: 5}}
	if _, ok := first.finish(res); ok {
		t.Fatal("the overtaken fetch finished normally")
	}
	include, ok := second.finish(res)
	if !ok || !include[0] {
		t.Fatalf("second fetch: ok %v include %v; want the changed high watermark answered", ok, include)
	}
	if inc, _ := mustBegin(t, c, req(3)).finish(res); inc[0] {
		t.Fatal("unchanged high watermark answered again")
	}
	// An error is answered every time and resets the cached high watermark.
	if inc, _ := mustBegin(t, c, req(4)).finish([]brokerop.FetchPartitionResp{{ErrorCode: 6, HighWatermark: 5}}); !inc[0] {
		t.Fatal("error not answered")
	}
	if inc, _ := mustBegin(t, c, req(5)).finish(res); !inc[0] {
		t.Fatal("partition not answered after its error cleared")
	}
}

func mustBegin(t *testing.T, c *fetchSessionCache, req *kmsg.FetchRequest) *sessionFetch {
	t.Helper()
	f, code, empty := c.begin(req, c.clock.Now())
	if code != 0 || empty {
		t.Fatalf("begin epoch %d: code %d empty %v", req.SessionEpoch, code, empty)
	}
	return f
}

func TestNextSessionEpoch(t *testing.T) {
	for _, c := range []struct{ in, want int32 }{{-1, 0}, {0, 1}, {1, 2}, {1<<31 - 1, 1}} {
		if got := nextSessionEpoch(c.in); got != c.want {
			t.Errorf("nextSessionEpoch(%d) = %d, want %d", c.in, got, c.want)
		}
	}
}

// BenchmarkFetchSessionMemory reports the memory one cached partition costs (a session of
// 10,000 partitions over 10 topics).
func BenchmarkFetchSessionMemory(b *testing.B) {
	const n = 10_000
	var ms0, ms1 runtime.MemStats
	for b.Loop() {
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		s := newFetchSession(false, n)
		for i := range n {
			name := fmt.Sprintf("topic-%d", i%10)
			ti := s.topicIndex(name, [16]byte{}, true)
			s.topics[ti].name = name
			s.upsert(ti, int32(i/10), 0, 1<<20, 0, 0)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		runtime.KeepAlive(s)
		b.ReportMetric(float64(ms1.HeapAlloc-ms0.HeapAlloc)/n, "bytes/cached-partition")
	}
}

// BenchmarkFetch10kPartitions: one poll of a consumer of 10,000 partitions (10 topics) with
// nothing new, through the gateway's decode, handler and encode (the in-memory backend
// answers at once): a full fetch as without sessions, and an incremental fetch of a session
// holding the same partitions. Reports the request and answer bytes of each.
// answerOf is the FetchResponse of a fetch handler's answer, which may carry pooled buffers.
func answerOf(r kmsg.Response) *kmsg.FetchResponse {
	if fa, ok := r.(fetchAnswer); ok {
		return fa.FetchResponse
	}
	return r.(*kmsg.FetchResponse)
}

func BenchmarkFetch10kPartitions(b *testing.B) {
	const topics, per = 10, 1000
	mem := gatewaytest.NewMem(per)
	s, err := NewServer(Config{Backend: mem})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for i := range topics {
		if _, err := mem.CreateTopics(ctx, &brokerop.CreateTopicsReq{Topics: []brokerop.CreateTopic{{Name: fmt.Sprintf("topic-%d", i), NumPartitions: per}}}); err != nil {
			b.Fatal(err)
		}
	}
	full := kmsg.NewPtrFetchRequest()
	full.SetVersion(12)
	full.MaxBytes = 50 << 20
	for i := range topics {
		t := kmsg.NewFetchRequestTopic()
		t.Topic = fmt.Sprintf("topic-%d", i)
		for p := range int32(per) {
			fp := kmsg.NewFetchRequestTopicPartition()
			fp.Partition, fp.PartitionMaxBytes = p, 1<<20
			t.Partitions = append(t.Partitions, fp)
		}
		full.Topics = append(full.Topics, t)
	}
	frame := func(req kmsg.Request) []byte {
		return kmsg.NewRequestFormatter(kmsg.FormatterClientID("bench")).AppendRequest(nil, req, 1)[4:]
	}
	run := func(b *testing.B, req []byte) {
		var out []byte
		for b.Loop() {
			p, err := s.handle(req, plainConnState())
			if err != nil {
				b.Fatal(err)
			}
			out = kafkawire.AppendResponse(out[:0], 1, answerOf(p.resp))
		}
		b.ReportMetric(float64(len(req)), "request-bytes")
		b.ReportMetric(float64(len(out)), "answer-bytes")
	}
	b.Run("full", func(b *testing.B) {
		full.SessionEpoch = -1
		run(b, frame(full))
	})
	b.Run("incremental", func(b *testing.B) {
		full.SessionID, full.SessionEpoch = 0, 0
		p, err := s.handle(frame(full), plainConnState())
		if err != nil {
			b.Fatal(err)
		}
		id := answerOf(p.resp).SessionID
		if id == 0 {
			b.Fatal("no session")
		}
		inc := kmsg.NewPtrFetchRequest()
		inc.SetVersion(12)
		inc.MaxBytes, inc.SessionID = 50<<20, id
		var out []byte
		epoch := int32(1)
		for b.Loop() {
			inc.SessionEpoch = epoch
			epoch++
			req := frame(inc)
			p, err := s.handle(req, plainConnState())
			if err != nil || answerOf(p.resp).ErrorCode != 0 {
				b.Fatalf("incremental: %v %v", err, p.resp)
			}
			out = kafkawire.AppendResponse(out[:0], 1, answerOf(p.resp))
		}
		b.ReportMetric(float64(len(frame(inc))), "request-bytes")
		b.ReportMetric(float64(len(out)), "answer-bytes")
	})
}
