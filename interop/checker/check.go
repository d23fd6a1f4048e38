package checker

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Kind names one class of anomaly. Zero anomalies of every kind is the only pass.
type Kind string

const (
	// Lost: an acknowledged send is absent from the final drain of its partition.
	Lost Kind = "lost-write"
	// NotDrained: an acknowledged send's partition was never drained, so it could not be
	// checked (the run is incomplete).
	NotDrained Kind = "not-drained"
	// Duplicate: one value stored (or read) at two different places.
	Duplicate Kind = "duplicate"
	// WrongOffset: an acknowledged send was read at another partition/offset than its
	// acknowledgement named.
	WrongOffset Kind = "wrong-offset"
	// InconsistentRead: two reads of one partition offset saw different values, or a consumer
	// read a record that the final drain does not have there.
	InconsistentRead Kind = "inconsistent-read"
	// Phantom: a value was read that no producer sent to that topic.
	Phantom Kind = "phantom-read"
	// NonmonotonicSend: one producer's records in a partition are stored (or acknowledged) in
	// another order than they were sent.
	NonmonotonicSend Kind = "nonmonotonic-send"
	// Gap: a drained partition's offsets (control records included) are not contiguous from its
	// log start to its high watermark. Not checked with Options.OffsetGaps.
	Gap Kind = "offset-gap"
	// OffsetOrder: a drain read an offset not above the one before it (offsets must strictly
	// increase within a partition, gaps or not).
	OffsetOrder Kind = "offset-order"
	// ControlValue: a drain found a control record where an acknowledged send says its value
	// is, or a consumer was handed a control record as data.
	ControlValue Kind = "control-value"
	// PollSkip: a consumer's consecutive reads of a partition jumped over offsets holding
	// records (control records excepted), with no seek or reassignment in between.
	PollSkip Kind = "poll-skip"
	// NonmonotonicPoll: a consumer's consecutive reads of a partition went backwards or
	// repeated an offset, with no seek or reassignment in between.
	NonmonotonicPoll Kind = "nonmonotonic-poll"
	// CommitBackwards: an OffsetFetch answered less than a commit acknowledged before it was
	// asked, or less than an earlier answer; or a group's acknowledged commit is below one
	// acknowledged before it was sent.
	CommitBackwards Kind = "commit-backwards"
	// PhantomCommit: an OffsetFetch answered an offset nobody committed.
	PhantomCommit Kind = "phantom-commit"
	// TopicMissing: a topic whose creation was acknowledged is not listed after the run (or
	// has fewer partitions).
	TopicMissing Kind = "topic-missing"
	// TopicConfig: an acknowledged topic's configs differ from the ones it was created with.
	TopicConfig Kind = "topic-config"
	// ProducerIDReused: two InitProducerID calls got the same producer id.
	ProducerIDReused Kind = "producer-id-reused"
)

// Anomaly is one finding.
type Anomaly struct {
	Kind   Kind
	Detail string
}

// Report is the checker's verdict over a History.
type Report struct {
	Anomalies []Anomaly // every finding, deterministic order
	// What was checked.
	AckedSends, ReadRecords, DrainedRecords, AckedCommits, OffsetReads, AckedTopics, ProducerIDs int
}

// OK reports whether the history has no anomaly.
func (r *Report) OK() bool { return len(r.Anomalies) == 0 }

// Count is the number of anomalies of kind k.
func (r *Report) Count(k Kind) int {
	n := 0
	for _, a := range r.Anomalies {
		if a.Kind == k {
			n++
		}
	}
	return n
}

// String summarises the report: counts per kind and the first few findings of each.
func (r *Report) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "checked %d acknowledged sends, %d polled and %d drained records, %d acknowledged commits, %d offset reads, %d acknowledged topics, %d producer ids: ",
		r.AckedSends, r.ReadRecords, r.DrainedRecords, r.AckedCommits, r.OffsetReads, r.AckedTopics, r.ProducerIDs)
	if r.OK() {
		b.WriteString("no anomalies")
		return b.String()
	}
	byKind := map[Kind][]string{}
	for _, a := range r.Anomalies {
		byKind[a.Kind] = append(byKind[a.Kind], a.Detail)
	}
	fmt.Fprintf(&b, "%d anomalies", len(r.Anomalies))
	for _, k := range slices.Sorted(maps.Keys(byKind)) {
		ds := byKind[k]
		fmt.Fprintf(&b, "\n  %s: %d", k, len(ds))
		for _, d := range ds[:min(len(ds), 5)] {
			fmt.Fprintf(&b, "\n    %s", d)
		}
	}
	return b.String()
}

// Options say what the system under test promises where systems differ. The zero value is the
// strictest: Check(h) is Options{}.Check(h).
type Options struct {
	// OffsetGaps: a partition's offsets need only increase, not be contiguous, because the
	// drains cannot see every record that holds an offset. Control batches (a replicated
	// partition's raft no-op at each new leader term and its membership changes, transaction
	// markers) take one offset each and clients skip them; a drain that keeps control records
	// (Rec.Control) sees them and needs no gaps. With OffsetGaps, offset-gap is not reported
	// and a consumer may jump over offsets the drains hold nothing at.
	OffsetGaps bool
}

type checker struct {
	h    *History
	opts Options
	rep  Report
	// data is every drained partition's data (non-control) offsets, ascending.
	data map[TP][]int64
	// controls is every drained partition's control record offsets.
	controls map[TP]map[int64]bool
}

func (c *checker) add(k Kind, format string, args ...any) {
	c.rep.Anomalies = append(c.rep.Anomalies, Anomaly{k, fmt.Sprintf(format, args...)})
}

// place is where a record was read.
type place struct {
	TP
	Offset int64
}

func (p place) String() string { return fmt.Sprintf("%s/%d@%d", p.Topic, p.Partition, p.Offset) }

// Check runs every check over h with the strictest options.
func Check(h History) Report { return Options{}.Check(h) }

// Check runs every check over h.
func (o Options) Check(h History) Report {
	c := &checker{h: &h, opts: o, data: map[TP][]int64{}}
	sends := c.indexSends()
	logs := c.checkDrains()
	c.checkValues(sends, logs)
	c.checkSendOrder(logs)
	c.checkPolls(logs)
	c.checkCommits()
	c.checkTopics()
	c.checkProducerIDs()
	return c.rep
}

// indexSends maps each value to its send (values are unique by contract; a value sent twice
// is the workload's bug and reported as a duplicate).
func (c *checker) indexSends() map[string]*Send {
	sends := make(map[string]*Send, len(c.h.Sends))
	for i := range c.h.Sends {
		s := &c.h.Sends[i]
		if prev, dup := sends[s.Value]; dup {
			c.add(Duplicate, "value %q sent twice (producers %s#%d and %s#%d): values must be unique", s.Value, prev.Producer, prev.Seq, s.Producer, s.Seq)
			continue
		}
		sends[s.Value] = s
		if s.OK {
			c.rep.AckedSends++
		}
	}
	return sends
}

// checkDrains checks each drained partition's shape and returns its offset → value map (data
// records only; control records are kept in c.controls).
func (c *checker) checkDrains() map[TP]map[int64]string {
	logs := map[TP]map[int64]string{}
	c.controls = map[TP]map[int64]bool{}
	for _, d := range c.h.Drains {
		log := logs[d.TP]
		if log == nil {
			log = map[int64]string{}
			logs[d.TP] = log
			c.controls[d.TP] = map[int64]bool{}
		}
		next := d.LogStart
		for _, r := range d.Records {
			c.rep.DrainedRecords++
			switch {
			case r.Offset < next:
				c.add(OffsetOrder, "%s/%d: offset %d read after %d", d.Topic, d.Partition, r.Offset, next-1)
			case r.Offset > next && !c.opts.OffsetGaps:
				c.add(Gap, "%s/%d: offsets %d..%d missing (next read was %d)", d.Topic, d.Partition, next, r.Offset-1, r.Offset)
			}
			next = max(next, r.Offset+1)
			if r.Control {
				if v, ok := log[r.Offset]; ok {
					c.add(InconsistentRead, "%s: drains read %q and a control record", place{d.TP, r.Offset}, v)
					continue
				}
				c.controls[d.TP][r.Offset] = true
				continue
			}
			if c.controls[d.TP][r.Offset] {
				c.add(InconsistentRead, "%s: drains read a control record and %q", place{d.TP, r.Offset}, r.Value)
				continue
			}
			if v, ok := log[r.Offset]; ok && v != r.Value {
				c.add(InconsistentRead, "%s: drains read %q and %q", place{d.TP, r.Offset}, v, r.Value)
				continue
			}
			log[r.Offset] = r.Value
		}
		if next < d.HighWatermark && !c.opts.OffsetGaps {
			c.add(Gap, "%s/%d: offsets %d..%d below the high watermark never read", d.Topic, d.Partition, next, d.HighWatermark-1)
		}
	}
	for tp, log := range logs {
		c.data[tp] = slices.Sorted(maps.Keys(log))
	}
	return logs
}

// checkValues: every acknowledged send is in the drained log exactly once at its acknowledged
// place; every stored value was sent, to that topic.
func (c *checker) checkValues(sends map[string]*Send, logs map[TP]map[int64]string) {
	where := map[string][]place{}
	for _, tp := range sortedTPs(logs) {
		log := logs[tp]
		for _, off := range slices.Sorted(maps.Keys(log)) {
			v := log[off]
			where[v] = append(where[v], place{tp, off})
			if s, ok := sends[v]; !ok || s.Topic != tp.Topic {
				c.add(Phantom, "%s holds %q, which was never sent to %s", place{tp, off}, v, tp.Topic)
			}
		}
	}
	for _, v := range slices.Sorted(maps.Keys(where)) {
		if ps := where[v]; len(ps) > 1 {
			c.add(Duplicate, "%q stored at %v", v, ps)
		}
	}
	for i := range c.h.Sends {
		s := &c.h.Sends[i]
		if !s.OK {
			continue
		}
		at := place{TP{s.Topic, s.Partition}, s.Offset}
		if _, drained := logs[at.TP]; !drained {
			c.add(NotDrained, "%s#%d %q acknowledged at %s: partition not drained", s.Producer, s.Seq, s.Value, at)
			continue
		}
		ps := where[s.Value]
		if c.controls[at.TP][at.Offset] {
			c.add(ControlValue, "%s#%d %q acknowledged at %s, which holds a control record (value stored at %v)", s.Producer, s.Seq, s.Value, at, ps)
			continue
		}
		switch {
		case len(ps) == 0:
			c.add(Lost, "%s#%d %q acknowledged at %s, not in the log", s.Producer, s.Seq, s.Value, at)
		case !slices.Contains(ps, at):
			c.add(WrongOffset, "%s#%d %q acknowledged at %s, stored at %v", s.Producer, s.Seq, s.Value, at, ps)
		}
	}
}

// checkSendOrder: a producer's records in a partition are stored in send order, and its
// acknowledged offsets increase with its sends.
func (c *checker) checkSendOrder(logs map[TP]map[int64]string) {
	bySeq := map[string]*Send{}
	for i := range c.h.Sends {
		bySeq[c.h.Sends[i].Value] = &c.h.Sends[i]
	}
	for _, tp := range sortedTPs(logs) {
		log := logs[tp]
		last := map[string]*Send{}
		for _, off := range slices.Sorted(maps.Keys(log)) {
			s := bySeq[log[off]]
			if s == nil {
				continue
			}
			if p := last[s.Producer]; p != nil && p.Seq > s.Seq {
				c.add(NonmonotonicSend, "%s: %s#%d %q stored at %d after #%d %q", tp2s(tp), s.Producer, s.Seq, s.Value, off, p.Seq, p.Value)
			}
			last[s.Producer] = s
		}
	}
	type key struct {
		producer string
		tp       TP
	}
	acked := map[key][]*Send{}
	for i := range c.h.Sends {
		s := &c.h.Sends[i]
		if s.OK {
			k := key{s.Producer, TP{s.Topic, s.Partition}}
			acked[k] = append(acked[k], s)
		}
	}
	for _, k := range slices.SortedFunc(maps.Keys(acked), func(a, b key) int {
		return strings.Compare(a.producer+"\x00"+tp2s(a.tp), b.producer+"\x00"+tp2s(b.tp))
	}) {
		ss := acked[k]
		slices.SortFunc(ss, func(a, b *Send) int { return cmp.Compare(a.Seq, b.Seq) })
		for i := 1; i < len(ss); i++ {
			if ss[i].Offset <= ss[i-1].Offset {
				c.add(NonmonotonicSend, "%s: %s#%d acknowledged at %d, after #%d at %d", tp2s(k.tp), k.producer, ss[i].Seq, ss[i].Offset, ss[i-1].Seq, ss[i-1].Offset)
			}
		}
	}
}

// checkPolls: consumers read what the log holds, and move through a partition one offset at
// a time unless they seek or are reassigned.
func (c *checker) checkPolls(logs map[TP]map[int64]string) {
	type key struct {
		consumer string
		tp       TP
	}
	type event struct {
		at    int64
		reset bool
		p     *Poll
	}
	streams := map[key][]event{}
	seen := map[place]string{}
	for i := range c.h.Polls {
		p := &c.h.Polls[i]
		c.rep.ReadRecords++
		k := key{p.Consumer, p.TP}
		streams[k] = append(streams[k], event{at: p.At, p: p})
		pl := place{p.TP, p.Offset}
		if v, ok := seen[pl]; ok && v != p.Value {
			c.add(InconsistentRead, "%s: read %q and %q", pl, v, p.Value)
		} else if !ok {
			seen[pl] = p.Value
		}
		if log, drained := logs[p.TP]; drained {
			if c.controls[p.TP][p.Offset] {
				c.add(ControlValue, "%s: %s read %q where the log holds a control record", pl, p.Consumer, p.Value)
			} else if v, ok := log[p.Offset]; !ok {
				c.add(InconsistentRead, "%s: %s read %q, absent from the final log", pl, p.Consumer, p.Value)
			} else if v != p.Value {
				c.add(InconsistentRead, "%s: %s read %q, the final log holds %q", pl, p.Consumer, p.Value, v)
			}
		}
	}
	for _, r := range c.h.Resets {
		k := key{r.Consumer, r.TP}
		streams[k] = append(streams[k], event{at: r.At, reset: true})
	}
	for _, k := range slices.SortedFunc(maps.Keys(streams), func(a, b key) int {
		return strings.Compare(a.consumer+"\x00"+tp2s(a.tp), b.consumer+"\x00"+tp2s(b.tp))
	}) {
		evs := streams[k]
		slices.SortFunc(evs, func(a, b event) int { return cmp.Compare(a.at, b.at) })
		var prev *Poll
		for _, e := range evs {
			if e.reset {
				prev = nil
				continue
			}
			if prev != nil {
				switch {
				case e.p.Offset <= prev.Offset:
					c.add(NonmonotonicPoll, "%s %s: read offset %d after %d", k.consumer, tp2s(k.tp), e.p.Offset, prev.Offset)
				case e.p.Offset > prev.Offset+1:
					if n, known := c.skipped(k.tp, prev.Offset, e.p.Offset); n > 0 || !known {
						c.add(PollSkip, "%s %s: read offset %d after %d (skipped %d offsets, %d of them holding records in the final log)", k.consumer, tp2s(k.tp), e.p.Offset, prev.Offset, e.p.Offset-prev.Offset-1, n)
					}
				}
			}
			prev = e.p
		}
	}
}

// skipped is how many data records the final log of tp holds strictly between offsets a and b.
// known is false when that cannot be told and a skip must be assumed: the partition was not
// drained and offsets must be contiguous.
func (c *checker) skipped(tp TP, a, b int64) (n int, known bool) {
	offs, drained := c.data[tp]
	if !drained {
		return 0, c.opts.OffsetGaps
	}
	lo, _ := slices.BinarySearch(offs, a+1)
	hi, _ := slices.BinarySearch(offs, b)
	return hi - lo, true
}

// checkCommits: a group's committed offset, as OffsetFetch answers it, never goes below a
// commit acknowledged before the fetch was sent, nor below an answer completed before it, and
// is always an offset somebody committed.
func (c *checker) checkCommits() {
	commits := map[groupTP][]completed{}
	attempted := map[groupTP]map[int64]bool{}
	for _, cm := range c.h.Commits {
		k := groupTP{cm.Group, cm.TP}
		if attempted[k] == nil {
			attempted[k] = map[int64]bool{}
		}
		attempted[k][cm.Offset] = true
		if cm.OK {
			c.rep.AckedCommits++
			commits[k] = append(commits[k], completed{at: cm.Complete, offset: cm.Offset})
		}
	}
	reads := map[groupTP][]completed{}
	for _, o := range c.h.OffsetReads {
		c.rep.OffsetReads++
		k := groupTP{o.Group, o.TP}
		reads[k] = append(reads[k], completed{at: o.Complete, offset: o.Offset})
	}
	for _, m := range []map[groupTP][]completed{commits, reads} {
		for _, cs := range m {
			slices.SortFunc(cs, func(a, b completed) int { return cmp.Compare(a.at, b.at) })
			for i := range cs { // running maximum: the highest offset completed by cs[i].at
				cs[i].max = cs[i].offset
				if i > 0 {
					cs[i].max = max(cs[i-1].max, cs[i].offset)
				}
			}
		}
	}
	for _, cm := range c.h.Commits {
		k := groupTP{cm.Group, cm.TP}
		if hi, ok := maxBefore(commits[k], cm.Invoke); cm.OK && ok && cm.Offset < hi {
			c.add(CommitBackwards, "group %s %s: commit of %d acknowledged after a commit of %d was", cm.Group, tp2s(cm.TP), cm.Offset, hi)
		}
	}
	for _, o := range c.h.OffsetReads {
		k := groupTP{o.Group, o.TP}
		if o.Offset >= 0 && !attempted[k][o.Offset] {
			c.add(PhantomCommit, "group %s %s: OffsetFetch answered %d, which nobody committed", o.Group, tp2s(o.TP), o.Offset)
		}
		if hi, ok := maxBefore(commits[k], o.Invoke); ok && o.Offset < hi {
			c.add(CommitBackwards, "group %s %s: OffsetFetch answered %d after a commit of %d was acknowledged", o.Group, tp2s(o.TP), o.Offset, hi)
		} else if hi, ok := maxBefore(reads[k], o.Invoke); ok && o.Offset < hi {
			c.add(CommitBackwards, "group %s %s: OffsetFetch answered %d after an earlier answer of %d", o.Group, tp2s(o.TP), o.Offset, hi)
		}
	}
}

type groupTP struct {
	group string
	tp    TP
}

// completed is an operation's completion time and offset, with the running maximum offset.
type completed struct {
	at, offset, max int64
}

// maxBefore is the highest offset among cs (sorted by at) completed before t.
func maxBefore(cs []completed, t int64) (int64, bool) {
	i, _ := slices.BinarySearchFunc(cs, t, func(c completed, t int64) int { return cmp.Compare(c.at, t) })
	if i == 0 {
		return 0, false
	}
	return cs[i-1].max, true
}

// checkTopics: every acknowledged topic is listed at the end with its partitions and configs.
func (c *checker) checkTopics() {
	if c.h.FinalTopics == nil {
		return
	}
	for _, t := range c.h.Topics {
		if !t.OK {
			continue
		}
		c.rep.AckedTopics++
		got, ok := c.h.FinalTopics[t.Name]
		if !ok {
			c.add(TopicMissing, "topic %s acknowledged, not listed", t.Name)
			continue
		}
		if got.Partitions < t.Partitions {
			c.add(TopicMissing, "topic %s acknowledged with %d partitions, listed with %d", t.Name, t.Partitions, got.Partitions)
		}
		for _, k := range slices.Sorted(maps.Keys(t.Configs)) {
			if v, ok := got.Configs[k]; !ok || v != t.Configs[k] {
				c.add(TopicConfig, "topic %s: %s=%q acknowledged, listed as %q (present %v)", t.Name, k, t.Configs[k], v, ok)
			}
		}
	}
}

// checkProducerIDs: no producer id is handed out twice.
func (c *checker) checkProducerIDs() {
	first := map[int64]*ProducerID{}
	for i := range c.h.ProducerIDs {
		p := &c.h.ProducerIDs[i]
		c.rep.ProducerIDs++
		if q, dup := first[p.ID]; dup {
			c.add(ProducerIDReused, "producer id %d given to %s (epoch %d) and %s (epoch %d)", p.ID, q.Client, q.Epoch, p.Client, p.Epoch)
			continue
		}
		first[p.ID] = p
	}
}

func tp2s(tp TP) string { return fmt.Sprintf("%s/%d", tp.Topic, tp.Partition) }

func sortedTPs[V any](m map[TP]V) []TP {
	return slices.SortedFunc(maps.Keys(m), func(a, b TP) int {
		if a.Topic != b.Topic {
			return strings.Compare(a.Topic, b.Topic)
		}
		return cmp.Compare(a.Partition, b.Partition)
	})
}
