package checker

import (
	"encoding/json"
	"io"
	"sync"
	"time"
)

// TP is a topic partition.
type TP struct {
	Topic     string
	Partition int32
}

// Send is one produce attempt of one unique value. Producer and Seq give the producer's send
// order (Seq increases with each send the producer makes). OK means the broker acknowledged
// it at Partition/Offset; a failed send (OK false) may or may not be stored: the checker treats
// it as indeterminate.
type Send struct {
	Producer  string
	Seq       int64
	Topic     string
	Value     string
	OK        bool
	Partition int32
	Offset    int64
	Err       string `json:",omitempty"`
	Invoke    int64  // logical time the send was made
	Complete  int64  // logical time its outcome was known
	Wall      time.Time
}

// Poll is one record a consumer read, in the order it read them.
type Poll struct {
	Consumer string
	TP
	Offset int64
	Value  string
	At     int64
}

// Reset is a seek or an assignment change of a consumer's partition: its next poll of TP may
// start anywhere.
type Reset struct {
	Consumer string
	TP
	At int64
}

// Rec is one record of a log. Control marks a control record (a transaction marker, or a
// replicated partition's raft no-op or membership entry): it occupies an offset, holds no
// producer's value, and consumers skip it.
type Rec struct {
	Offset  int64
	Value   string
	Control bool `json:",omitempty"`
}

// Drain is a complete read of one partition after the run: every record from LogStart up to
// HighWatermark, in the order read, control records included when the reader can see them
// (then the offsets are contiguous; see Options.OffsetGaps otherwise).
type Drain struct {
	TP
	LogStart, HighWatermark int64
	Records                 []Rec
}

// Commit is one OffsetCommit of one partition for a group.
type Commit struct {
	Group string
	TP
	Offset           int64
	OK               bool
	Err              string `json:",omitempty"`
	Invoke, Complete int64
	Wall             time.Time
}

// OffsetRead is one OffsetFetch answer for a group's partition (Offset -1: none committed).
type OffsetRead struct {
	Group string
	TP
	Offset           int64
	Invoke, Complete int64
	Wall             time.Time
}

// TopicCreate is one CreateTopics attempt.
type TopicCreate struct {
	Name             string
	Partitions       int32
	Configs          map[string]string
	OK               bool
	Err              string `json:",omitempty"`
	Invoke, Complete int64
	Wall             time.Time
}

// TopicState is a topic as listed after the run.
type TopicState struct {
	Partitions int32
	Configs    map[string]string
}

// ProducerID is one successful InitProducerID answer.
type ProducerID struct {
	Client           string
	ID               int64
	Epoch            int16
	Invoke, Complete int64
	Wall             time.Time
}

// History is everything a run recorded.
type History struct {
	Sends       []Send
	Polls       []Poll
	Resets      []Reset
	Drains      []Drain
	Commits     []Commit
	OffsetReads []OffsetRead
	Topics      []TopicCreate
	FinalTopics map[string]TopicState // nil: not listed (topic checks skipped)
	ProducerIDs []ProducerID
}

// WriteJSON writes the history as JSON (kept next to a failing test's report).
func (h *History) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", " ")
	return enc.Encode(h)
}

// Recorder builds a History from concurrent clients. Every operation gets logical times from
// one counter: Begin before the operation is sent, the Add method's call after its answer, so
// that "completed before invoked" is exact between operations of different clients.
type Recorder struct {
	mu   sync.Mutex
	now  int64
	h    History
	wall func() time.Time
}

// NewRecorder returns an empty recorder; wall (nil: time.Now) stamps completions for
// liveness reports only: no check depends on it.
func NewRecorder(wall func() time.Time) *Recorder {
	if wall == nil {
		wall = time.Now
	}
	return &Recorder{wall: wall}
}

// Begin returns the logical time of an operation about to be sent.
func (r *Recorder) Begin() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.now++
	return r.now
}

func (r *Recorder) tick() (int64, time.Time) {
	r.now++
	return r.now, r.wall()
}

// complete stamps v's completion (stamp sets it) and appends v to *list, under the lock.
func complete[T any](r *Recorder, list *[]T, v T, stamp func(v *T, at int64, wall time.Time)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, w := r.tick()
	stamp(&v, at, w)
	*list = append(*list, v)
}

// AddSend records a send's outcome (s.Invoke from Begin).
func (r *Recorder) AddSend(s Send) {
	complete(r, &r.h.Sends, s, func(v *Send, at int64, w time.Time) { v.Complete, v.Wall = at, w })
}

// AddPolls records records a consumer read, in order.
func (r *Recorder) AddPolls(consumer string, recs ...Poll) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range recs {
		p.Consumer = consumer
		p.At, _ = r.tick()
		r.h.Polls = append(r.h.Polls, p)
	}
}

// AddReset records a seek or an assignment change.
func (r *Recorder) AddReset(consumer string, tp TP) {
	r.mu.Lock()
	defer r.mu.Unlock()
	at, _ := r.tick()
	r.h.Resets = append(r.h.Resets, Reset{Consumer: consumer, TP: tp, At: at})
}

// AddDrain records a final complete read of a partition.
func (r *Recorder) AddDrain(d Drain) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.Drains = append(r.h.Drains, d)
}

// AddCommit records an OffsetCommit's outcome (c.Invoke from Begin).
func (r *Recorder) AddCommit(c Commit) {
	complete(r, &r.h.Commits, c, func(v *Commit, at int64, w time.Time) { v.Complete, v.Wall = at, w })
}

// AddOffsetRead records an OffsetFetch answer (o.Invoke from Begin).
func (r *Recorder) AddOffsetRead(o OffsetRead) {
	complete(r, &r.h.OffsetReads, o, func(v *OffsetRead, at int64, w time.Time) { v.Complete, v.Wall = at, w })
}

// AddTopic records a CreateTopics outcome (t.Invoke from Begin).
func (r *Recorder) AddTopic(t TopicCreate) {
	complete(r, &r.h.Topics, t, func(v *TopicCreate, at int64, w time.Time) { v.Complete, v.Wall = at, w })
}

// AddProducerID records an InitProducerID answer (p.Invoke from Begin).
func (r *Recorder) AddProducerID(p ProducerID) {
	complete(r, &r.h.ProducerIDs, p, func(v *ProducerID, at int64, w time.Time) { v.Complete, v.Wall = at, w })
}

// SetFinalTopics records the topics listed after the run.
func (r *Recorder) SetFinalTopics(ts map[string]TopicState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.h.FinalTopics = ts
}

// History returns a copy of what was recorded so far.
func (r *Recorder) History() History {
	r.mu.Lock()
	defer r.mu.Unlock()
	h := r.h
	h.Sends = append([]Send(nil), h.Sends...)
	h.Polls = append([]Poll(nil), h.Polls...)
	h.Resets = append([]Reset(nil), h.Resets...)
	h.Drains = append([]Drain(nil), h.Drains...)
	h.Commits = append([]Commit(nil), h.Commits...)
	h.OffsetReads = append([]OffsetRead(nil), h.OffsetReads...)
	h.Topics = append([]TopicCreate(nil), h.Topics...)
	h.ProducerIDs = append([]ProducerID(nil), h.ProducerIDs...)
	return h
}

// Operation names FirstOKAfter reports.
const (
	OpProduce        = "Produce"
	OpCreateTopics   = "CreateTopics"
	OpOffsetCommit   = "OffsetCommit"
	OpOffsetFetch    = "OffsetFetch"
	OpInitProducerID = "InitProducerID"
)

// FirstOKAfter is, per operation, the wall time of its first success completed after t (an
// operation missing from the map has not succeeded since). It measures recovery after a fault
// at t, for reports, never for assertions.
func (r *Recorder) FirstOKAfter(t time.Time) map[string]time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]time.Time{}
	consider := func(w time.Time, ok bool, op string) {
		if prev, seen := out[op]; ok && w.After(t) && (!seen || w.Before(prev)) {
			out[op] = w
		}
	}
	for _, s := range r.h.Sends {
		consider(s.Wall, s.OK, OpProduce)
	}
	for _, c := range r.h.Topics {
		consider(c.Wall, c.OK, OpCreateTopics)
	}
	for _, c := range r.h.Commits {
		consider(c.Wall, c.OK, OpOffsetCommit)
	}
	for _, o := range r.h.OffsetReads {
		consider(o.Wall, true, OpOffsetFetch)
	}
	for _, p := range r.h.ProducerIDs {
		consider(p.Wall, true, OpInitProducerID)
	}
	return out
}

// FirstSendOKAfter is the wall time of the first acknowledged send to tp completed after t:
// failover of a partition (its leader killed at t → the first record acknowledged on it), for
// reports, never for assertions.
func (r *Recorder) FirstSendOKAfter(t time.Time, tp TP) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first time.Time
	ok := false
	for _, s := range r.h.Sends {
		if s.OK && s.Topic == tp.Topic && s.Partition == tp.Partition && s.Wall.After(t) && (!ok || s.Wall.Before(first)) {
			first, ok = s.Wall, true
		}
	}
	return first, ok
}

// FirstWriteAfter is the wall time of the first successful metadata write (CreateTopics,
// OffsetCommit or InitProducerID) completed after t, and which one it was; ok is false if none
// was. It measures failover (kill at t → first write), for reports, never for assertions.
func (r *Recorder) FirstWriteAfter(t time.Time) (at time.Time, what string, ok bool) {
	for op, w := range r.FirstOKAfter(t) {
		if op == OpProduce || op == OpOffsetFetch {
			continue
		}
		if !ok || w.Before(at) || w.Equal(at) && op < what {
			at, what, ok = w, op, true
		}
	}
	return at, what, ok
}
