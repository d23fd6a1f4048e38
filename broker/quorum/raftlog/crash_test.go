package raftlog_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestCrashEveryPoint runs a workload and crashes the filesystem before each of its
// mutating operations in turn (plain crash, torn tails, out-of-order writeback; pending
// directory changes lost or kept at random: waltest.DirFaultFS). Each reopen must succeed
// and give exactly the state after a prefix of the writes: every write that returned, and
// possibly parts of the one in flight that are durable on their own (the snapshot file
// of a Save with a snapshot, the snapshot of a CreateSnapshot before its compaction). So
// the hard state never goes back. The raft id made by the first Open never changes. A second
// reopen gives the same state (recovery is itself durable).
func TestCrashEveryPoint(t *testing.T) {
	seeds := 2 // × 2 option sets × ~150 crash points × 3 crash kinds
	if os.Getenv("RAFTLOG_CHAOS") != "" {
		seeds = 30
	}
	for seed := range uint64(seeds) {
		for _, opts := range []raftlog.Options{
			{SegmentBytes: 400, KeepEntries: 2},
			{KeepEntries: -1},
		} {
			t.Run(fmt.Sprintf("seed%d/seg%d", seed, opts.SegmentBytes), func(t *testing.T) {
				testCrashEveryPoint(t, seed, opts)
			})
		}
	}
}

func testCrashEveryPoint(t *testing.T, seed uint64, opts raftlog.Options) {
	keep := opts.KeepEntries
	w := makeWorkload(seed, 40, keep)
	opts.Rand = &seqRand{}

	// A run without a crash counts the mutating operations.
	d := waltest.NewDirFaultFS()
	c := &crashFS{d: d}
	l, err := raftlog.Open(c, "/node/quorum", opts)
	if err != nil {
		t.Fatal(err)
	}
	for i, o := range w.ops {
		if err := o.apply(l); err != nil {
			t.Fatalf("op %d %v: %v", i, o, err)
		}
	}
	if got, want := dump(l), w.states[len(w.states)-1]; got != want {
		t.Fatalf("no crash: state\n%s\nwant\n%s", got, want)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	total := c.n
	t.Logf("%d ops, %d crash points", len(w.ops), total)

	for at := 1; at <= total; at++ {
		for mode := range 3 {
			d := waltest.NewDirFaultFS()
			r := rand.New(rand.NewPCG(seed, uint64(at*3+mode)))
			crash := func() { waltest.CrashBy(d, mode, r) }
			c := &crashFS{d: d, at: at, crash: crash}
			lo, hi := 0, 0 // the states a reopen may find
			opened, id := false, uint64(0)
			l, err := raftlog.Open(c, "/node/quorum", opts)
			if err == nil {
				opened, id = true, l.RaftID()
				done := true
				for i, o := range w.ops {
					if err := o.apply(l); err != nil {
						if !errors.Is(err, errPowerCut) {
							t.Fatalf("crash at %d mode %d: op %d %v failed with %v, not the power cut", at, mode, i, o, err)
						}
						lo, hi = w.start[i], w.end[i]
						done = false
						break
					}
					// A write may succeed although the power was cut during it: after it was
					// durable (removing old segments is best effort). The next one fails,
					// and the reopen must find this one.
				}
				if done {
					lo, hi = len(w.states)-1, len(w.states)-1
				}
				l.Close()
			}
			if !c.crashed {
				t.Fatalf("crash at %d: never reached (of %d)", at, total)
			}
			what := fmt.Sprintf("crash at %d/%d mode %d", at, total, mode)
			l2 := reopen(t, d, opts, what+": reopen")
			got := dump(l2)
			// The hard state never goes back: not below the last one acknowledged.
			hs, _, _ := l2.InitialState()
			if acked := w.hs[lo]; hs.GetTerm() < acked.GetTerm() || hs.GetCommit() < acked.GetCommit() ||
				hs.GetTerm() == acked.GetTerm() && acked.GetVote() != 0 && hs.GetVote() != acked.GetVote() {
				t.Fatalf("%s: hard state %v went back from %v", what, hs, acked)
			}
			if !slices.Contains(w.states[lo:hi+1], got) {
				t.Fatalf("%s: reopened state is none of states %d..%d:\n%s\nlast acknowledged:\n%s", what, lo, hi, got, w.states[lo])
			}
			if opened && l2.RaftID() != id {
				t.Fatalf("%s: raft id %x, first open made %x", what, l2.RaftID(), id)
			}
			if err := l2.Close(); err != nil {
				t.Fatal(err)
			}
			l3 := reopen(t, d, opts, what+": second reopen")
			if again := dump(l3); again != got {
				t.Fatalf("%s: second reopen differs:\n%s\nfirst:\n%s", what, again, got)
			}
			// The log goes on from there.
			last, _ := l3.LastIndex()
			if err := l3.Save(nil, ents(last+1, last+1, 1000), nil); err != nil {
				t.Fatalf("%s: save after recovery: %v", what, err)
			}
			after := dump(l3)
			l3.Close()
			l4 := reopen(t, d, opts, what+": reopen after a save")
			if again := dump(l4); again != after {
				t.Fatalf("%s: reopen after a save:\n%s\nwant\n%s", what, again, after)
			}
			l4.Close()
			if files := d.Files(); slices.ContainsFunc(files, func(f string) bool { return strings.HasSuffix(f, ".tmp") }) {
				t.Errorf("%s: temporary files left: %v", what, files)
			}
		}
	}
}
