package group

import (
	"bytes"
	"slices"
	"sort"
)

// Server-side assignors of KIP-848 consumer groups (ServerAssignor "uniform" and "range").
// Both are pure functions of the members' subscriptions, the topics' partition counts and
// (uniform) the previous target assignment; neither looks at racks.

// tid is a topic id.
type tid = [16]byte

// tpart is one partition named by topic id.
type tpart struct {
	topic tid
	part  int32
}

func lessTpart(a, b tpart) int {
	if c := bytes.Compare(a.topic[:], b.topic[:]); c != 0 {
		return c
	}
	return int(a.part) - int(b.part)
}

// assignment is a member's partitions by topic id, each list sorted.
type assignment map[tid][]int32

func (a assignment) clone() assignment {
	out := make(assignment, len(a))
	for t, ps := range a {
		out[t] = slices.Clone(ps)
	}
	return out
}

func (a assignment) has(t tid, p int32) bool {
	_, ok := slices.BinarySearch(a[t], p)
	return ok
}

func (a assignment) add(t tid, p int32) {
	ps := a[t]
	i, ok := slices.BinarySearch(ps, p)
	if !ok {
		a[t] = slices.Insert(ps, i, p)
	}
}

func (a assignment) count() int {
	n := 0
	for _, ps := range a {
		n += len(ps)
	}
	return n
}

func (a assignment) equal(b assignment) bool {
	if a.count() != b.count() {
		return false
	}
	for t, ps := range a {
		if !slices.Equal(ps, b[t]) {
			return false
		}
	}
	return true
}

func (a assignment) parts() []tpart {
	var out []tpart
	for t, ps := range a {
		for _, p := range ps {
			out = append(out, tpart{t, p})
		}
	}
	slices.SortFunc(out, lessTpart)
	return out
}

// assignSpec is the input of an assignor: members sorted by id, each with the topic ids it
// subscribes to (only topics that exist) and its previous target; the partition count of
// every subscribed topic.
type assignSpec struct {
	members    []string
	subscribed map[string][]tid // sorted topic ids
	previous   map[string]assignment
	partitions map[tid]int32
}

// assignRange is Kafka's range assignment per topic: the members subscribed to a topic,
// sorted by member id, get contiguous ranges of its partitions, the first (count % members)
// of them one partition more.
func assignRange(s assignSpec) map[string]assignment {
	out := make(map[string]assignment, len(s.members))
	subs := map[tid][]string{}
	for _, m := range s.members {
		out[m] = assignment{}
		for _, t := range s.subscribed[m] {
			subs[t] = append(subs[t], m)
		}
	}
	for t, ms := range subs {
		n := s.partitions[t]
		per, extra := n/int32(len(ms)), n%int32(len(ms))
		next := int32(0)
		for i, m := range ms {
			k := per
			if int32(i) < extra {
				k++
			}
			for p := next; p < next+k; p++ {
				out[m][t] = append(out[m][t], p)
			}
			next += k
		}
	}
	return out
}

// assignUniform spreads all subscribed partitions evenly and stickily: with P partitions and
// M members every member gets P/M or P/M+1 (when all subscribe to the same topics; with
// different subscriptions each partition goes to the least loaded member subscribed to it).
// A member keeps the partitions of its previous target it still subscribes to, up to its
// share, so a membership change moves only the partitions it must.
func assignUniform(s assignSpec) map[string]assignment {
	out := make(map[string]assignment, len(s.members))
	load := make(map[string]int, len(s.members))
	subscribed := make(map[string]map[tid]bool, len(s.members))
	var all []tpart
	seen := map[tid]bool{}
	for _, m := range s.members {
		out[m] = assignment{}
		subscribed[m] = map[tid]bool{}
		for _, t := range s.subscribed[m] {
			subscribed[m][t] = true
			if !seen[t] {
				seen[t] = true
				for p := range s.partitions[t] {
					all = append(all, tpart{t, p})
				}
			}
		}
	}
	if len(s.members) == 0 {
		return out
	}
	slices.SortFunc(all, lessTpart)
	quota, extra := len(all)/len(s.members), len(all)%len(s.members)
	taken := map[tpart]bool{}
	keep := func(limit func(m string) bool) {
		for _, m := range s.members {
			for _, tp := range s.previous[m].parts() {
				if taken[tp] || !subscribed[m][tp.topic] || tp.part >= s.partitions[tp.topic] || !limit(m) {
					continue
				}
				taken[tp] = true
				load[m]++
				out[m].add(tp.topic, tp.part)
			}
		}
	}
	keep(func(m string) bool { return load[m] < quota })
	keep(func(m string) bool {
		if load[m] == quota && extra > 0 {
			extra--
			return true
		}
		return false
	})
	for _, tp := range all {
		if taken[tp] {
			continue
		}
		best := ""
		for _, m := range s.members {
			if subscribed[m][tp.topic] && (best == "" || load[m] < load[best]) {
				best = m
			}
		}
		if best == "" {
			continue
		}
		taken[tp] = true
		load[best]++
		out[best].add(tp.topic, tp.part)
	}
	return out
}

// sortedIDs returns the keys of m, sorted.
func sortedIDs[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
