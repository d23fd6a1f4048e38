package checker

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"
)

// good builds a valid history: two producers, four sends each over two partitions of topic
// t, both partitions drained, one consumer reading partition 0 in full, a committer with two
// commits each read back, one topic and two producer ids.
func good() History {
	var h History
	var clock int64
	tick := func() int64 { clock++; return clock }
	next := map[int32]int64{}
	logs := map[int32][]Rec{}
	for seq := range int64(4) {
		for _, p := range []string{"p0", "p1"} {
			part := int32(seq % 2)
			v := fmt.Sprintf("%s-%d", p, seq)
			off := next[part]
			next[part]++
			logs[part] = append(logs[part], Rec{Offset: off, Value: v})
			h.Sends = append(h.Sends, Send{Producer: p, Seq: seq, Topic: "t", Value: v, OK: true, Partition: part, Offset: off, Invoke: tick(), Complete: tick()})
		}
	}
	for part, recs := range logs {
		h.Drains = append(h.Drains, Drain{TP: TP{"t", part}, LogStart: 0, HighWatermark: next[part], Records: recs})
	}
	for _, r := range logs[0] {
		h.Polls = append(h.Polls, Poll{Consumer: "c0", TP: TP{"t", 0}, Offset: r.Offset, Value: r.Value, At: tick()})
	}
	for _, off := range []int64{1, 3} {
		inv := tick()
		h.Commits = append(h.Commits, Commit{Group: "g", TP: TP{"t", 0}, Offset: off, OK: true, Invoke: inv, Complete: tick()})
		inv = tick()
		h.OffsetReads = append(h.OffsetReads, OffsetRead{Group: "g", TP: TP{"t", 0}, Offset: off, Invoke: inv, Complete: tick()})
	}
	h.Topics = []TopicCreate{{Name: "t", Partitions: 2, Configs: map[string]string{"retention.ms": "1000"}, OK: true, Invoke: tick(), Complete: tick()}}
	h.FinalTopics = map[string]TopicState{"t": {Partitions: 2, Configs: map[string]string{"retention.ms": "1000", "cleanup.policy": "delete"}}}
	h.ProducerIDs = []ProducerID{{Client: "a", ID: 1000, Invoke: tick(), Complete: tick()}, {Client: "b", ID: 1001, Invoke: tick(), Complete: tick()}}
	return h
}

func drain(h *History, part int32) *Drain {
	for i := range h.Drains {
		if h.Drains[i].Partition == part {
			return &h.Drains[i]
		}
	}
	panic("no drain")
}

func send(h *History, value string) *Send {
	for i := range h.Sends {
		if h.Sends[i].Value == value {
			return &h.Sends[i]
		}
	}
	panic("no send " + value)
}

func kinds(r Report) []Kind {
	set := map[Kind]bool{}
	for _, a := range r.Anomalies {
		set[a.Kind] = true
	}
	return slices.Sorted(maps.Keys(set))
}

func TestCheckValidHistory(t *testing.T) {
	r := Check(good())
	if !r.OK() {
		t.Fatalf("valid history flagged:\n%s", r.String())
	}
	if r.AckedSends != 8 || r.DrainedRecords != 8 || r.ReadRecords != 4 || r.AckedCommits != 2 || r.OffsetReads != 2 || r.AckedTopics != 1 || r.ProducerIDs != 2 {
		t.Fatalf("counts: %+v", r)
	}
}

// TestCheckFlagsEachAnomaly: each mutation of the valid history plants one anomaly; the
// checker must report exactly that kind (and nothing else).
func TestCheckFlagsEachAnomaly(t *testing.T) {
	// Partition 1 holds p0-1, p1-1, p0-3, p1-3 at offsets 0..3; partition 0 the even seqs.
	cases := []struct {
		name   string
		mutate func(h *History)
		want   []Kind
	}{
		{"lost write", func(h *History) {
			d := drain(h, 1)
			d.Records = d.Records[:3] // p1-3 at 3 acknowledged, gone
			d.HighWatermark = 3
		}, []Kind{Lost}},
		{"partition not drained", func(h *History) {
			h.Drains = slices.DeleteFunc(h.Drains, func(d Drain) bool { return d.Partition == 1 })
		}, []Kind{NotDrained}},
		{"duplicate", func(h *History) {
			d := drain(h, 1)
			d.Records = append(d.Records, Rec{Offset: 4, Value: "p1-3"})
			d.HighWatermark = 5
		}, []Kind{Duplicate}},
		{"value sent twice", func(h *History) {
			s := *send(h, "p1-3")
			s.Seq = 9
			s.OK = false
			h.Sends = append(h.Sends, s)
		}, []Kind{Duplicate}},
		{"wrong offset", func(h *History) { send(h, "p1-3").Offset = 7 }, []Kind{WrongOffset}},
		{"wrong partition", func(h *History) { send(h, "p1-3").Partition = 0; send(h, "p1-3").Offset = 9 }, []Kind{WrongOffset}},
		{"consumer read another value", func(h *History) { h.Polls[2].Value = "p1-1" }, []Kind{InconsistentRead}},
		{"consumer read a record later absent", func(h *History) {
			h.Polls = append(h.Polls, Poll{Consumer: "c0", TP: TP{"t", 0}, Offset: 4, Value: "p0-1", At: 1000})
		}, []Kind{InconsistentRead}},
		{"two consumers disagree", func(h *History) {
			h.Polls = append(h.Polls, Poll{Consumer: "c1", TP: TP{"t", 1}, Offset: 0, Value: "p0-1", At: 1000},
				Poll{Consumer: "c2", TP: TP{"t", 1}, Offset: 0, Value: "p1-1", At: 1001})
			h.Drains = slices.DeleteFunc(h.Drains, func(d Drain) bool { return d.Partition == 1 })
			for i := range h.Sends {
				h.Sends[i].OK = h.Sends[i].OK && h.Sends[i].Partition == 0
			}
		}, []Kind{InconsistentRead}},
		{"phantom", func(h *History) {
			d := drain(h, 1)
			d.Records = append(d.Records, Rec{Offset: 4, Value: "ghost"})
			d.HighWatermark = 5
		}, []Kind{Phantom}},
		{"value of another topic", func(h *History) {
			h.Sends = append(h.Sends, Send{Producer: "p9", Topic: "other", Value: "x", OK: false})
			d := drain(h, 1)
			d.Records = append(d.Records, Rec{Offset: 4, Value: "x"})
			d.HighWatermark = 5
		}, []Kind{Phantom}},
		{"nonmonotonic send", func(h *History) {
			d := drain(h, 1) // swap p0-1 (offset 0) and p0-3 (offset 2), acknowledgements too
			d.Records[0].Value, d.Records[2].Value = d.Records[2].Value, d.Records[0].Value
			send(h, "p0-1").Offset, send(h, "p0-3").Offset = 2, 0
		}, []Kind{NonmonotonicSend}},
		{"gap", func(h *History) {
			d := drain(h, 1)
			d.Records[3].Offset = 4
			d.HighWatermark = 5
			send(h, "p1-3").Offset = 4
		}, []Kind{Gap}},
		{"unread tail", func(h *History) { drain(h, 1).HighWatermark = 6 }, []Kind{Gap}},
		{"poll skip", func(h *History) { h.Polls = slices.Delete(h.Polls, 1, 2) }, []Kind{PollSkip}},
		{"nonmonotonic poll", func(h *History) {
			p := h.Polls[1]
			p.At = h.Polls[3].At + 1
			h.Polls = append(h.Polls, p)
		}, []Kind{NonmonotonicPoll}},
		{"commit backwards after an acknowledged commit", func(h *History) { h.OffsetReads[1].Offset = 1 }, []Kind{CommitBackwards}},
		{"commit backwards after an earlier answer", func(h *History) {
			h.Commits[1].OK = false // commit of 3 unacknowledged: answering 3 then 1 still goes back
			last := h.OffsetReads[1]
			last.Offset, last.Invoke, last.Complete = 1, last.Complete+1, last.Complete+2
			h.OffsetReads = append(h.OffsetReads, last)
		}, []Kind{CommitBackwards}},
		{"phantom commit", func(h *History) { h.OffsetReads[0].Offset = 2 }, []Kind{PhantomCommit}},
		{"topic missing", func(h *History) { delete(h.FinalTopics, "t") }, []Kind{TopicMissing}},
		{"topic lost partitions", func(h *History) { h.FinalTopics["t"] = TopicState{Partitions: 1, Configs: h.FinalTopics["t"].Configs} }, []Kind{TopicMissing}},
		{"topic config", func(h *History) { h.FinalTopics["t"].Configs["retention.ms"] = "2000" }, []Kind{TopicConfig}},
		{"producer id reused", func(h *History) { h.ProducerIDs[1].ID = 1000 }, []Kind{ProducerIDReused}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			tc.mutate(&h)
			r := Check(h)
			if got := kinds(r); !slices.Equal(got, tc.want) {
				t.Fatalf("kinds %v, want %v\n%s", got, tc.want, r.String())
			}
		})
	}
}

// TestCheckTolerates: what is not an anomaly.
func TestCheckTolerates(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(h *History)
	}{
		{"failed send stored", func(h *History) { send(h, "p1-3").OK = false }},
		{"failed send not stored", func(h *History) {
			d := drain(h, 1)
			d.Records = d.Records[:3]
			d.HighWatermark = 3
			send(h, "p1-3").OK = false
		}},
		{"seek back after a reset", func(h *History) {
			at := h.Polls[3].At
			h.Resets = append(h.Resets, Reset{Consumer: "c0", TP: TP{"t", 0}, At: at + 1})
			p := h.Polls[1]
			p.At = at + 2
			h.Polls = append(h.Polls, p)
		}},
		{"log start after truncation", func(h *History) {
			d := drain(h, 0)
			d.LogStart = 0
			d.Records = d.Records[:0:0]
			d.HighWatermark = 0
			for i := range h.Sends {
				h.Sends[i].OK = h.Sends[i].OK && h.Sends[i].Partition == 1
			}
			h.Polls = nil
		}},
		{"offset read concurrent with a commit", func(h *History) {
			// The read of 1 was sent before the commit of 3 completed: either answer is fine.
			h.OffsetReads[0].Complete = h.Commits[1].Complete + 1
		}},
		{"no topic listing", func(h *History) { h.FinalTopics = nil }},
		{"none committed yet", func(h *History) {
			h.OffsetReads = append([]OffsetRead{{Group: "g", TP: TP{"t", 0}, Offset: -1, Invoke: 0, Complete: 0}}, h.OffsetReads...)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := good()
			tc.mutate(&h)
			if r := Check(h); !r.OK() {
				t.Fatalf("flagged:\n%s", r.String())
			}
		})
	}
}

// TestRecorderOrder: logical times order operations across goroutines (a completion always
// precedes a later Begin), and the history round-trips through JSON.
func TestRecorderOrder(t *testing.T) {
	base := time.Unix(1000, 0)
	var mu sync.Mutex
	step := 0
	r := NewRecorder(func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		step++
		return base.Add(time.Duration(step) * time.Second)
	})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				inv := r.Begin()
				r.AddCommit(Commit{Group: "g", TP: TP{"t", int32(w)}, Offset: int64(i), OK: true, Invoke: inv})
				inv = r.Begin()
				r.AddOffsetRead(OffsetRead{Group: "g", TP: TP{"t", int32(w)}, Offset: int64(i), Invoke: inv})
			}
		})
	}
	wg.Wait()
	h := r.History()
	if rep := Check(h); !rep.OK() || rep.AckedCommits != 200 || rep.OffsetReads != 200 {
		t.Fatalf("%s", rep.String())
	}
	for _, c := range h.Commits {
		if c.Complete <= c.Invoke {
			t.Fatalf("commit completed at %d, invoked at %d", c.Complete, c.Invoke)
		}
	}
	var buf bytes.Buffer
	if err := h.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var back History
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back.Commits) != 200 {
		t.Fatalf("round trip: %v, %d commits", err, len(back.Commits))
	}
}

// TestFirstWriteAfter: the earliest successful metadata write after a time, skipping reads and
// failed writes.
func TestFirstWriteAfter(t *testing.T) {
	base := time.Unix(1000, 0)
	step := 0
	r := NewRecorder(func() time.Time { step++; return base.Add(time.Duration(step) * time.Second) })
	r.AddOffsetRead(OffsetRead{Group: "g"})                              // 1 s
	r.AddCommit(Commit{Group: "g", OK: true})                            // 2 s
	r.AddTopic(TopicCreate{Name: "x", OK: false, Err: "NOT_CONTROLLER"}) // 3 s
	r.AddCommit(Commit{Group: "g", OK: false})                           // 4 s
	r.AddProducerID(ProducerID{ID: 7})                                   // 5 s
	r.AddTopic(TopicCreate{Name: "y", OK: true})                         // 6 s
	for _, c := range []struct {
		after time.Duration
		at    time.Duration
		what  string
	}{{0, 2 * time.Second, "OffsetCommit"}, {2 * time.Second, 5 * time.Second, "InitProducerID"}, {5 * time.Second, 6 * time.Second, "CreateTopics"}} {
		at, what, ok := r.FirstWriteAfter(base.Add(c.after))
		if !ok || what != c.what || !at.Equal(base.Add(c.at)) {
			t.Errorf("FirstWriteAfter(+%v) = %v %q %v, want +%v %q", c.after, at.Sub(base), what, ok, c.at, c.what)
		}
	}
	if _, _, ok := r.FirstWriteAfter(base.Add(6 * time.Second)); ok {
		t.Error("FirstWriteAfter found a write after the last one")
	}
}

// withControl is good() with a control record (a raft no-op of a new leader term, say) at
// offset 2 of partition 1, the records after it moved up by one, and a consumer c1 reading
// partition 1 in full: it jumps from 1 to 3 over the control record.
func withControl() History {
	h := good()
	d := drain(&h, 1)
	recs := []Rec{d.Records[0], d.Records[1], {Offset: 2, Control: true}}
	for _, r := range d.Records[2:] {
		r.Offset++
		recs = append(recs, r)
		send(&h, r.Value).Offset = r.Offset
	}
	d.Records, d.HighWatermark = recs, 5
	at := int64(2000)
	for _, r := range recs {
		if !r.Control {
			at++
			h.Polls = append(h.Polls, Poll{Consumer: "c1", TP: TP{"t", 1}, Offset: r.Offset, Value: r.Value, At: at})
		}
	}
	return h
}

// TestCheckControlRecords: control records take an offset that no producer's value holds and
// that consumers skip; offsets stay contiguous counting them. With Options.OffsetGaps (drains
// that cannot see control records) offsets need only increase.
func TestCheckControlRecords(t *testing.T) {
	if r := Check(withControl()); !r.OK() {
		t.Fatalf("valid history with a control record flagged:\n%s", r.String())
	}
	cases := []struct {
		name   string
		opts   Options
		mutate func(h *History)
		want   []Kind // nil: no anomaly
	}{
		{"control record unseen by the drain", Options{}, func(h *History) {
			d := drain(h, 1)
			d.Records = slices.Delete(d.Records, 2, 3)
		}, []Kind{Gap}},
		{"control record unseen, gaps allowed", Options{OffsetGaps: true}, func(h *History) {
			d := drain(h, 1)
			d.Records = slices.Delete(d.Records, 2, 3)
		}, nil},
		{"gaps allowed, a consumer skips a record", Options{OffsetGaps: true}, func(h *History) {
			d := drain(h, 1)
			d.Records = slices.Delete(d.Records, 2, 3)
			h.Polls = slices.DeleteFunc(h.Polls, func(p Poll) bool { return p.Consumer == "c1" && p.Offset == 3 })
		}, []Kind{PollSkip}},
		{"gaps allowed, offsets out of order", Options{OffsetGaps: true}, func(h *History) {
			d := drain(h, 1)
			d.Records[3], d.Records[4] = d.Records[4], d.Records[3]
		}, []Kind{OffsetOrder}},
		{"offsets out of order", Options{}, func(h *History) {
			d := drain(h, 1) // 4 read before 3: 3 missing when 4 comes, then out of order
			d.Records[3], d.Records[4] = d.Records[4], d.Records[3]
		}, []Kind{Gap, OffsetOrder}},
		{"acknowledged at the control record's offset", Options{}, func(h *History) {
			send(h, "p0-3").Offset = 2
		}, []Kind{ControlValue}},
		{"consumer handed the control record as data", Options{}, func(h *History) {
			h.Polls = append(h.Polls, Poll{Consumer: "c2", TP: TP{"t", 1}, Offset: 2, Value: "p0-3", At: 3000})
		}, []Kind{ControlValue}},
		{"drains disagree: control or data", Options{}, func(h *History) {
			h.Drains = append(h.Drains, Drain{TP: TP{"t", 1}, LogStart: 2, HighWatermark: 3, Records: []Rec{{Offset: 2, Value: "p0-3"}}})
		}, []Kind{InconsistentRead}},
		{"consumer skips the control record and a value", Options{}, func(h *History) {
			h.Polls = slices.DeleteFunc(h.Polls, func(p Poll) bool { return p.Consumer == "c1" && p.Offset == 3 })
		}, []Kind{PollSkip}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := withControl()
			tc.mutate(&h)
			r := tc.opts.Check(h)
			if got := kinds(r); !slices.Equal(got, tc.want) {
				t.Fatalf("kinds %v, want %v\n%s", got, tc.want, r.String())
			}
		})
	}
}

// TestCheckAcknowledgedCommitsNeverGoBack: a group's acknowledged commit below one that was
// acknowledged before it was sent is a committed offset going backwards; overlapping commits
// may land in either order.
func TestCheckAcknowledgedCommitsNeverGoBack(t *testing.T) {
	h := good()
	last := h.Commits[1] // 3, acknowledged
	back := Commit{Group: "g", TP: last.TP, Offset: 2, OK: true, Invoke: last.Complete + 100, Complete: last.Complete + 101}
	h.Commits = append(h.Commits, back)
	if got := kinds(Check(h)); !slices.Equal(got, []Kind{CommitBackwards}) {
		t.Fatalf("kinds %v, want [%s]", got, CommitBackwards)
	}
	h.Commits[len(h.Commits)-1].Invoke = last.Complete - 1 // concurrent with the commit of 3
	if r := Check(h); !r.OK() {
		t.Fatalf("concurrent commits flagged:\n%s", r.String())
	}
	h.Commits[len(h.Commits)-1].Invoke = last.Complete + 100
	h.Commits[len(h.Commits)-1].OK = false // not acknowledged: indeterminate
	if r := Check(h); !r.OK() {
		t.Fatalf("unacknowledged commit flagged:\n%s", r.String())
	}
}

// TestFirstSendOKAfter: the earliest acknowledged send on one partition after a time.
func TestFirstSendOKAfter(t *testing.T) {
	base := time.Unix(1000, 0)
	step := 0
	r := NewRecorder(func() time.Time { step++; return base.Add(time.Duration(step) * time.Second) })
	r.AddSend(Send{Topic: "t", Partition: 0, OK: true, Value: "a"})  // 1 s
	r.AddSend(Send{Topic: "t", Partition: 1, OK: true, Value: "b"})  // 2 s
	r.AddSend(Send{Topic: "t", Partition: 0, OK: false, Value: "c"}) // 3 s
	r.AddSend(Send{Topic: "u", Partition: 0, OK: true, Value: "d"})  // 4 s
	r.AddSend(Send{Topic: "t", Partition: 0, OK: true, Value: "e"})  // 5 s
	for _, c := range []struct {
		after time.Duration
		tp    TP
		at    time.Duration
		ok    bool
	}{
		{0, TP{"t", 0}, 1 * time.Second, true},
		{1 * time.Second, TP{"t", 0}, 5 * time.Second, true},
		{1 * time.Second, TP{"t", 1}, 2 * time.Second, true},
		{2 * time.Second, TP{"t", 1}, 0, false},
		{0, TP{"u", 0}, 4 * time.Second, true},
	} {
		at, ok := r.FirstSendOKAfter(base.Add(c.after), c.tp)
		if ok != c.ok || ok && !at.Equal(base.Add(c.at)) {
			t.Errorf("FirstSendOKAfter(+%v, %v) = +%v %v, want +%v %v", c.after, c.tp, at.Sub(base), ok, c.at, c.ok)
		}
	}
}
