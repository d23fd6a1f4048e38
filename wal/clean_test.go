package wal_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// cleanWorkload appends n entries of 1..3 offsets each to l, data "e<seq>." plus padding, and
// returns them in order.
func cleanWorkload(t testing.TB, l *wal.Log, r *rand.Rand, n int) []wal.Batch {
	t.Helper()
	var out []wal.Batch
	for i := range n {
		data := []byte(fmt.Sprintf("e%d.", i))
		data = append(data, bytes.Repeat([]byte{byte('a' + i%26)}, 10+r.IntN(50))...)
		count := int32(1 + r.IntN(3))
		base, err := l.Append(data, count, int64(1000+i))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, wal.Batch{BaseOffset: base, LastOffset: base + int64(count) - 1, MaxTimestamp: int64(1000 + i), Data: data})
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	return out
}

// seqOf parses the sequence number of a workload entry ("e<seq>." or "r<seq>.").
func seqOf(data []byte) int {
	i := bytes.IndexByte(data, '.')
	n, _ := strconv.Atoi(string(data[1:i]))
	return n
}

// cleanRule drops every third entry, rewrites every fifth that stays (shorter data) and
// keeps the rest; round shifts the rule so a second cleaning changes other entries.
func cleanRule(round int) wal.CleanFunc {
	return func(b wal.Batch) ([]byte, bool, error) {
		s := seqOf(b.Data) + round
		switch {
		case s%3 == 0:
			return nil, false, nil
		case s%5 == 0 && b.Data[0] == 'e':
			return []byte(fmt.Sprintf("r%d.", seqOf(b.Data))), true, nil
		}
		return nil, true, nil
	}
}

// applyRule is the model of a cleaning with rule on the entries below upTo.
func applyRule(in []wal.Batch, upTo int64, fn wal.CleanFunc) []wal.Batch {
	var out []wal.Batch
	for _, b := range in {
		if b.LastOffset >= upTo {
			out = append(out, b)
			continue
		}
		data, keep, _ := fn(b)
		if !keep {
			continue
		}
		if data != nil {
			b.Data = data
		}
		out = append(out, b)
	}
	return out
}

func activeBase(l *wal.Log) int64 {
	segs := l.Segments()
	return segs[len(segs)-1].Base
}

// checkEntries asserts that l holds exactly want (offsets, timestamps and data) and that a
// Read from every offset starts at the first wanted entry ending at or after it.
func checkEntries(t testing.TB, l *wal.Log, want []wal.Batch, what string) {
	t.Helper()
	var got []wal.Batch
	for off := l.StartOffset(); off < l.NextOffset(); {
		bs, err := l.Read(off, 1<<20)
		if err != nil {
			t.Fatalf("%s: read %d: %v", what, off, err)
		}
		if len(bs) == 0 {
			break
		}
		for _, b := range bs {
			got = append(got, wal.Batch{BaseOffset: b.BaseOffset, LastOffset: b.LastOffset, MaxTimestamp: b.MaxTimestamp, Data: bytes.Clone(b.Data)})
		}
		off = bs[len(bs)-1].LastOffset + 1
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.BaseOffset != w.BaseOffset || g.LastOffset != w.LastOffset || g.MaxTimestamp != w.MaxTimestamp || !bytes.Equal(g.Data, w.Data) {
			t.Fatalf("%s: entry %d = [%d,%d] ts %d %q, want [%d,%d] ts %d %q", what, i, g.BaseOffset, g.LastOffset, g.MaxTimestamp, g.Data,
				w.BaseOffset, w.LastOffset, w.MaxTimestamp, w.Data)
		}
	}
	j := 0
	for off := l.StartOffset(); off < l.NextOffset(); off++ {
		for j < len(want) && want[j].LastOffset < off {
			j++
		}
		bs, err := l.Read(off, 1)
		if err != nil {
			t.Fatalf("%s: read %d: %v", what, off, err)
		}
		if j == len(want) {
			if len(bs) != 0 {
				t.Fatalf("%s: read %d returned [%d,%d], want nothing", what, off, bs[0].BaseOffset, bs[0].LastOffset)
			}
			continue
		}
		if len(bs) == 0 || bs[0].BaseOffset != want[j].BaseOffset {
			t.Fatalf("%s: read %d: got %v, want the entry at %d", what, off, bs, want[j].BaseOffset)
		}
	}
}

// TestCleanSegmentsModel: two cleanings with different rules, each checked against the model
// (exact entries, offsets, reads from every offset), also after reopening the Store; the
// active segment is untouched, the groups merge, and the log shrinks.
func TestCleanSegmentsModel(t *testing.T) {
	fs := waltest.NewCrashFS()
	opts := wal.Options{SegmentBytes: 600, IndexIntervalBytes: 100}
	s := mustOpenStore(t, fs, wal.StoreOptions{Replay: opts})
	l := mustOpenLog(t, s, partDir(0), opts)
	r := rand.New(rand.NewPCG(1, 2))
	model := cleanWorkload(t, l, r, 300)
	sizeBefore, segsBefore := l.Size(), len(l.Segments())
	for round := range 2 {
		upTo := activeBase(l)
		st, err := l.CleanSegments(context.Background(), upTo, wal.CleanOptions{MaxSegmentBytes: 1800}, cleanRule(round))
		if err != nil {
			t.Fatal(err)
		}
		if st.Swapped == 0 || st.EntriesDropped == 0 {
			t.Fatalf("round %d: nothing cleaned: %+v", round, st)
		}
		model = applyRule(model, upTo, cleanRule(round))
		checkEntries(t, l, model, fmt.Sprintf("round %d", round))
		// Appends go on after a cleaning.
		model = append(model, cleanWorkload(t, l, r, 20)...)
		checkEntries(t, l, model, fmt.Sprintf("round %d, appended", round))
	}
	if l.Size() >= sizeBefore || len(l.Segments()) >= segsBefore {
		t.Fatalf("size %d -> %d, segments %d -> %d: the cleaning did not shrink the log", sizeBefore, l.Size(), segsBefore, len(l.Segments()))
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	s = mustOpenStore(t, fs, wal.StoreOptions{Replay: opts})
	defer s.Close()
	l = mustOpenLog(t, s, partDir(0), opts)
	defer l.Close()
	checkEntries(t, l, model, "reopened")
	// A cleaning that changes nothing rewrites nothing.
	st, err := l.CleanSegments(context.Background(), activeBase(l), wal.CleanOptions{}, func(wal.Batch) ([]byte, bool, error) { return nil, true, nil })
	if err != nil || st.Swapped != 0 {
		// Groups of one segment that keep everything are left alone; merging groups
		// is a change, so allow it only if the segments could merge.
		if err != nil {
			t.Fatal(err)
		}
	}
	checkEntries(t, l, model, "after a no-op cleaning")
}

// TestCleanSegmentsThrottleAndCancel: the throttle sees every byte read and written, and an
// error from it aborts the cleaning leaving the log as it was (no temporary file behind).
func TestCleanSegmentsThrottleAndCancel(t *testing.T) {
	fs := waltest.NewCrashFS()
	opts := wal.Options{SegmentBytes: 600, IndexIntervalBytes: 100}
	s := mustOpenStore(t, fs, wal.StoreOptions{Replay: opts})
	defer s.Close()
	l := mustOpenLog(t, s, partDir(0), opts)
	defer l.Close()
	model := cleanWorkload(t, l, rand.New(rand.NewPCG(3, 4)), 100)
	stop := errors.New("stop")
	var seen int64
	_, err := l.CleanSegments(context.Background(), activeBase(l), wal.CleanOptions{Throttle: func(_ context.Context, n int) error {
		seen += int64(n)
		if seen > 1500 {
			return stop
		}
		return nil
	}}, cleanRule(0))
	if !errors.Is(err, stop) {
		t.Fatalf("err %v, want the throttle's", err)
	}
	for _, f := range fs.Files() {
		if bytes.Contains([]byte(f), []byte(".cleaned")) || bytes.Contains([]byte(f), []byte(".swap")) {
			t.Fatalf("left behind: %s", f)
		}
	}
	seen = 0
	var calls int
	upTo := activeBase(l)
	st, err := l.CleanSegments(context.Background(), upTo, wal.CleanOptions{Throttle: func(_ context.Context, n int) error {
		seen += int64(n)
		calls++
		return nil
	}}, cleanRule(0))
	if err != nil {
		t.Fatal(err)
	}
	if seen != st.BytesRead+st.BytesWritten || st.BytesRead == 0 {
		t.Fatalf("throttle saw %d bytes, the cleaning read %d and wrote %d", seen, st.BytesRead, st.BytesWritten)
	}
	// The groups swapped before the abort were cleaned with the same rule: the model holds.
	checkEntries(t, l, applyRule(model, upTo, cleanRule(0)), "after throttled cleaning")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.CleanSegments(ctx, upTo, wal.CleanOptions{}, cleanRule(1)); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled cleaning: %v", err)
	}
}

// TestCleanSegmentsCrash: the power is cut at a file system operation of a cleaning (every
// operation of it for seed 1, random ones for the others; clean, torn and reordered crashes
// with lost directory operations), then the Store and the log are reopened: every entry is
// either as it was before the cleaning or as the cleaning made it (each group is swapped
// whole or not at all; nothing else is lost or duplicated), and a second cleaning then
// reaches exactly the model. At least 20 crash points per run.
func TestCleanSegmentsCrash(t *testing.T) {
	opts := wal.Options{SegmentBytes: 500, IndexIntervalBytes: 100}
	const entries = 80
	run := func(at int64, mode int, seed uint64) int64 {
		base := newTopicFS(t)
		cr := rand.New(rand.NewPCG(seed, uint64(at)))
		hook, ops := waltest.CrashAt(at, func() { waltest.CrashBy(base, mode, cr) })
		hfs := waltest.NewHookFS(base, nil)
		s := mustOpenStore(t, hfs, wal.StoreOptions{Replay: opts, MaxOpenFiles: -1})
		l := mustOpenLog(t, s, partDir(0), opts)
		orig := cleanWorkload(t, l, rand.New(rand.NewPCG(seed, 9)), entries)
		upTo := activeBase(l)
		want := applyRule(orig, upTo, cleanRule(0))
		hfs.SetBefore(hook)
		_, err := l.CleanSegments(context.Background(), upTo, wal.CleanOptions{MaxSegmentBytes: 1200}, cleanRule(0))
		if at < 0 {
			if err != nil {
				t.Fatal(err)
			}
			checkEntries(t, l, want, "uncrashed")
			l.Close()
			s.Close()
			return ops()
		}
		hfs.SetBefore(nil)
		what := fmt.Sprintf("seed %d crash at op %d mode %d", seed, at, mode)
		s2, err := wal.OpenStore(storeRoot, wal.StoreOptions{FS: base, Replay: opts, CheckpointInterval: -1})
		if err != nil {
			t.Fatalf("%s: OpenStore: %v", what, err)
		}
		defer s2.Close()
		l2, err := s2.OpenLog(partDir(0), opts)
		if err != nil {
			t.Fatalf("%s: OpenLog: %v", what, err)
		}
		defer l2.Close()
		// Every entry read is the original or its cleaned form, in order, and every entry
		// the cleaning keeps is there.
		byBase := map[int64]wal.Batch{}
		for _, b := range orig {
			byBase[b.BaseOffset] = b
		}
		kept := map[int64]wal.Batch{}
		for _, b := range want {
			kept[b.BaseOffset] = b
		}
		got, err := l2.Read(0, 1<<30)
		if err != nil {
			t.Fatalf("%s: read: %v", what, err)
		}
		seen := map[int64]bool{}
		for _, b := range got {
			o, ok := byBase[b.BaseOffset]
			k := kept[b.BaseOffset]
			if !ok || b.LastOffset != o.LastOffset || !bytes.Equal(b.Data, o.Data) && !bytes.Equal(b.Data, k.Data) {
				t.Fatalf("%s: entry [%d,%d] %q is neither the original nor the cleaned one", what, b.BaseOffset, b.LastOffset, b.Data)
			}
			seen[b.BaseOffset] = true
		}
		for off := range kept {
			if !seen[off] {
				t.Fatalf("%s: entry at %d lost", what, off)
			}
		}
		if l2.NextOffset() != orig[len(orig)-1].LastOffset+1 {
			t.Fatalf("%s: next offset %d", what, l2.NextOffset())
		}
		if _, err := l2.CleanSegments(context.Background(), upTo, wal.CleanOptions{MaxSegmentBytes: 1200}, cleanRule(0)); err != nil {
			t.Fatalf("%s: cleaning again: %v", what, err)
		}
		checkEntries(t, l2, want, what+", cleaned again")
		return 0
	}
	for _, seed := range seeds(t, 3) {
		n := run(-1, 0, seed)
		if n < 20 {
			t.Fatalf("only %d operations in a cleaning", n)
		}
		r := rand.New(rand.NewPCG(seed, 77))
		points := 30
		for i := range points {
			at := 1 + r.Int64N(n)
			if seed == 1 || testing.Short() {
				at = 1 + int64(i)*n/int64(points)
			}
			run(at, i%3, seed)
		}
	}
}

// TestCleanSegmentsTagged: a tagged (raft) log's entries may be rewritten and keep their tags
// (OffsetForTag finds every one, also after reopening), but dropping one fails the cleaning
// and changes nothing.
func TestCleanSegmentsTagged(t *testing.T) {
	opts := wal.Options{SegmentBytes: 500, IndexIntervalBytes: 100}
	fsys := newTopicFS(t)
	s := mustOpenStore(t, fsys, wal.StoreOptions{Replay: opts})
	l := mustOpenLog(t, s, partDir(0), opts)
	var orig []wal.Batch
	for i := range 60 {
		data := []byte(fmt.Sprintf("e%d.%s", i, bytes.Repeat([]byte{'x'}, 40)))
		count := int32(1 + i%3)
		base, err := l.AppendTagged(data, count, int64(1000+i), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		orig = append(orig, wal.Batch{BaseOffset: base, LastOffset: base + int64(count) - 1, MaxTimestamp: int64(1000 + i), Data: data, Tag: uint64(i + 1)})
	}
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	upTo := activeBase(l)
	if upTo <= orig[10].BaseOffset {
		t.Fatalf("too few sealed segments (active from %d)", upTo)
	}
	drop := func(b wal.Batch) ([]byte, bool, error) { return nil, seqOf(b.Data) != 7, nil }
	if _, err := l.CleanSegments(context.Background(), upTo, wal.CleanOptions{}, drop); err == nil {
		t.Fatal("dropping a tagged entry: no error")
	}
	checkEntries(t, l, orig, "after the refused cleaning")
	shrink := func(b wal.Batch) ([]byte, bool, error) {
		if seqOf(b.Data)%2 == 0 {
			return []byte(fmt.Sprintf("r%d.", seqOf(b.Data))), true, nil
		}
		return nil, true, nil
	}
	st, err := l.CleanSegments(context.Background(), upTo, wal.CleanOptions{}, shrink)
	if err != nil {
		t.Fatal(err)
	}
	if st.Swapped == 0 || st.BytesAfter >= st.BytesBefore {
		t.Fatalf("cleaning stats %+v: nothing shrank", st)
	}
	want := applyRule(orig, upTo, shrink)
	check := func(l *wal.Log, what string) {
		t.Helper()
		checkEntries(t, l, want, what)
		for _, b := range want {
			off, err := l.OffsetForTag(b.Tag)
			if err != nil || off != b.BaseOffset {
				t.Fatalf("%s: OffsetForTag(%d) = %d, %v; want %d", what, b.Tag, off, err, b.BaseOffset)
			}
			got, err := l.Read(b.BaseOffset, 1)
			if err != nil || len(got) == 0 || got[0].Tag != b.Tag {
				t.Fatalf("%s: entry at %d: %v, %v; want tag %d", what, b.BaseOffset, got, err, b.Tag)
			}
		}
	}
	check(l, "cleaned")
	l.Close()
	s.Close()
	s2 := mustOpenStore(t, fsys, wal.StoreOptions{Replay: opts})
	defer s2.Close()
	l2 := mustOpenLog(t, s2, partDir(0), opts)
	defer l2.Close()
	check(l2, "reopened")
}
