package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// model is what the log must hold: every appended entry, and the offset below which the log
// reported durability.
type model struct {
	entries []wal.Batch
	synced  int64
	start   int64
}

func (m *model) next() int64 {
	if len(m.entries) == 0 {
		return m.start
	}
	return m.entries[len(m.entries)-1].LastOffset + 1
}

// truncate drops entries at and after off, which must be an entry boundary.
func (m *model) truncate(t *testing.T, off int64) {
	t.Helper()
	for len(m.entries) > 0 && m.entries[len(m.entries)-1].BaseOffset >= off {
		m.entries = m.entries[:len(m.entries)-1]
	}
	if m.next() != off && !(len(m.entries) == 0 && off == m.start) {
		t.Fatalf("log ends at %d, inside a model entry (model next %d)", off, m.next())
	}
}

// dropBefore drops entries below the new start offset.
func (m *model) dropBefore(t *testing.T, start int64) {
	t.Helper()
	for len(m.entries) > 0 && m.entries[0].BaseOffset < start {
		if m.entries[0].LastOffset >= start {
			t.Fatalf("start offset %d inside entry %+v", start, m.entries[0])
		}
		m.entries = m.entries[1:]
	}
	m.start = start
}

// verify checks that the log holds exactly the model's entries.
func (m *model) verify(t *testing.T, l *wal.Log) {
	t.Helper()
	if l.StartOffset() != m.start {
		t.Fatalf("StartOffset %d, want %d", l.StartOffset(), m.start)
	}
	if l.NextOffset() != m.next() {
		t.Fatalf("NextOffset %d, want %d", l.NextOffset(), m.next())
	}
	sameBatches(t, "read", readAll(t, l), m.entries)
}

// sameBatches checks that got holds exactly want's entries; what names the read.
func sameBatches(t *testing.T, what string, got, want []wal.Batch) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range want {
		sameBatch(t, got[i], want[i])
	}
}

func sameBatch(t *testing.T, got, want wal.Batch) {
	t.Helper()
	if got.BaseOffset != want.BaseOffset || got.LastOffset != want.LastOffset ||
		got.MaxTimestamp != want.MaxTimestamp || !bytes.Equal(got.Data, want.Data) {
		t.Fatalf("got entry [%d,%d] ts %d len %d, want [%d,%d] ts %d len %d",
			got.BaseOffset, got.LastOffset, got.MaxTimestamp, len(got.Data),
			want.BaseOffset, want.LastOffset, want.MaxTimestamp, len(want.Data))
	}
}

// runSeeds runs f as a subtest "seed=N" for each seed of seeds(t, n).
func runSeeds(t *testing.T, n int, f func(t *testing.T, seed uint64)) {
	for _, seed := range seeds(t, n) {
		t.Run(fmt.Sprint("seed=", seed), func(t *testing.T) { f(t, seed) })
	}
}

// seeds returns the seeds to run: WAL_SEED=n runs just n (to reproduce a failure);
// WAL_SEEDS=n runs seeds 1..n instead of the default count (for a longer soak).
func seeds(t *testing.T, n int) []uint64 {
	if s := os.Getenv("WAL_SEEDS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			t.Fatalf("WAL_SEEDS: %v", err)
		}
		n = v
	}
	if s := os.Getenv("WAL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("WAL_SEED: %v", err)
		}
		return []uint64{v}
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = uint64(i + 1)
	}
	return out
}

// TestCrashProperty runs random appends, syncs, reads, crashes (clean, tearing the last
// writes, or keeping random unsynced pages out of order), clean reopens and retention against a model. After every crash: Open succeeds,
// every entry the log reported synced is there, and every entry read equals what was appended
// (no garbage, no corrupt entry). Reproduce a failure with WAL_SEED=<seed>.
func TestCrashProperty(t *testing.T) {
	runSeeds(t, 40, crashProperty)
}

func crashProperty(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	fs := waltest.NewCrashFS()
	opts := wal.Options{
		FS:                 fs,
		SegmentBytes:       []int64{512, 2048, 8192}[r.IntN(3)],
		IndexIntervalBytes: []int{1, 100, 1000}[r.IntN(3)],
	}
	const dir = "/d/topic-0"
	open := func() *wal.Log {
		t.Helper()
		l, err := wal.Open(dir, opts)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		return l
	}
	l := open()
	var m model
	ts := int64(1_000_000)
	for step := range 400 {
		switch p := r.IntN(100); {
		case p < 60:
			data := make([]byte, r.IntN(300))
			for i := range data {
				data[i] = byte(r.Uint32())
			}
			count := int32(1 + r.IntN(4))
			ts += int64(r.IntN(100)) - 20
			base, err := l.Append(data, count, ts)
			if err != nil {
				t.Fatalf("step %d: Append: %v", step, err)
			}
			if base != m.next() {
				t.Fatalf("step %d: base %d, want %d", step, base, m.next())
			}
			m.entries = append(m.entries, wal.Batch{BaseOffset: base, LastOffset: base + int64(count) - 1, MaxTimestamp: ts, Data: data})
		case p < 75:
			upTo := m.synced + r.Int64N(m.next()-m.synced+1)
			if err := l.Sync(upTo); err != nil {
				t.Fatalf("step %d: Sync: %v", step, err)
			}
			if l.SyncedOffset() < upTo {
				t.Fatalf("step %d: SyncedOffset %d < %d after Sync", step, l.SyncedOffset(), upTo)
			}
			m.synced = max(m.synced, l.SyncedOffset())
		case p < 85:
			if len(m.entries) == 0 {
				continue
			}
			i := r.IntN(len(m.entries))
			e := m.entries[i]
			off := e.BaseOffset + r.Int64N(e.LastOffset-e.BaseOffset+1)
			bs, err := l.Read(off, r.IntN(2000))
			if err != nil || len(bs) == 0 {
				t.Fatalf("step %d: Read(%d) = %d entries, %v", step, off, len(bs), err)
			}
			for j, b := range bs {
				sameBatch(t, b, m.entries[i+j])
			}
		case p < 95:
			waltest.CrashAny(fs, r)
			l = open()
			next := l.NextOffset()
			if next < m.synced {
				t.Fatalf("step %d: after crash NextOffset %d < synced %d: lost synced data", step, next, m.synced)
			}
			if next > m.next() {
				t.Fatalf("step %d: after crash NextOffset %d beyond anything appended (%d)", step, next, m.next())
			}
			m.truncate(t, next)
			if l.StartOffset() != m.start {
				t.Fatalf("step %d: StartOffset %d, want %d", step, l.StartOffset(), m.start)
			}
			m.verify(t, l)
			if l.SyncedOffset() != next {
				t.Fatalf("step %d: SyncedOffset %d after open, want %d", step, l.SyncedOffset(), next)
			}
			m.synced = next
		case p < 98:
			if err := l.Close(); err != nil {
				t.Fatalf("step %d: Close: %v", step, err)
			}
			m.synced = m.next()
			l = open()
			m.verify(t, l)
		default:
			keep := int64(r.IntN(4000))
			if _, err := l.Retain(-1, keep); err != nil {
				t.Fatalf("step %d: Retain: %v", step, err)
			}
			m.dropBefore(t, l.StartOffset())
			if m.start > 0 {
				if _, err := l.Read(m.start-1, 100); !errors.Is(err, wal.ErrOffsetOutOfRange) {
					t.Fatalf("step %d: Read below start: %v", step, err)
				}
			}
			m.verify(t, l)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = open()
	m.verify(t, l)
	l.Close()
}

// TestBitFlip flips one random bit in one random file of a closed log and reopens it: Open
// succeeds, and every entry is either returned intact or reported as corruption — or, for
// damage in the re-validated tail of the active segment (all of it below the recovery point
// Close wrote), Open fails with a corruption error and changes nothing. Damage to index files
// loses nothing; nothing synced is ever cut; damage to a sealed segment, or to the active one
// before its re-validated tail, makes only that segment's damaged region unreadable.
func TestBitFlip(t *testing.T) {
	runSeeds(t, 60, bitFlip)
}

func bitFlip(t *testing.T, seed uint64) {
	r := rand.New(rand.NewPCG(seed, 0xb17))
	fs := waltest.NewCrashFS()
	opts := wal.Options{FS: fs, SegmentBytes: 2048, IndexIntervalBytes: 200}
	const dir = "/d/p"
	l, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatal(err)
	}
	var m model
	for i := range 60 {
		data := payload(int64(i), 20+r.IntN(100))
		base, err := l.Append(data, int32(1+r.IntN(3)), int64(i))
		if err != nil {
			t.Fatal(err)
		}
		bs, _ := l.Read(base, 1)
		m.entries = append(m.entries, bs[0])
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	files := fs.Files()
	victim := files[r.IntN(len(files))]
	content, _ := fs.ReadFile(victim)
	if len(content) == 0 {
		t.Skip("picked an empty file")
	}
	bit := r.Int64N(int64(len(content)) * 8)
	if err := fs.FlipBit(victim, bit); err != nil {
		t.Fatal(err)
	}
	logs := []string{}
	for _, f := range files {
		if strings.HasSuffix(f, ".log") {
			logs = append(logs, f)
		}
	}
	activeLog := logs[len(logs)-1]
	t.Logf("flipped bit %d of %s (%d bytes); active %s", bit, victim, len(content), activeLog)

	l, err = wal.Open(dir, opts)
	if err != nil {
		if victim == activeLog && wal.IsCorruption(err) {
			// Close made the whole active segment durable: damage in the part Open
			// re-validates is corruption, refused rather than cut (offsets never reused).
			if after, _ := fs.ReadFile(victim); len(after) != len(content) {
				t.Fatalf("refused Open still changed %s: %d -> %d bytes", victim, len(content), len(after))
			}
			return
		}
		t.Fatalf("Open after bit flip: %v", err)
	}
	defer l.Close()
	// Which segment holds each entry: base offsets from the file names.
	segBase := func(off int64) int64 {
		var b int64
		for _, f := range logs {
			fb, _ := strconv.ParseInt(strings.TrimSuffix(f[strings.LastIndex(f, "/")+1:], ".log"), 10, 64)
			if fb <= off {
				b = fb
			}
		}
		return b
	}
	victimBase, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(
		victim[strings.LastIndex(victim, "/")+1:], ".log"), ".index"), ".timeindex"), 10, 64)
	next := l.NextOffset()
	switch {
	case next != m.next():
		// Synced, acknowledged data is never cut (damage further back in the active
		// segment is found by reads, as in a sealed segment).
		t.Fatalf("NextOffset %d after a bit flip in %s, want %d", next, victim, m.next())
	case strings.HasSuffix(victim, ".log"):
		if next != m.next() {
			t.Fatalf("NextOffset %d, want %d", next, m.next())
		}
		bad := 0
		for _, e := range m.entries {
			bs, err := l.Read(e.BaseOffset, 1)
			if err != nil {
				if !wal.IsCorruption(err) {
					t.Fatalf("Read(%d): %v, want a corruption error", e.BaseOffset, err)
				}
				if segBase(e.BaseOffset) != victimBase {
					t.Fatalf("Read(%d) in an undamaged segment: %v", e.BaseOffset, err)
				}
				bad++
				continue
			}
			sameBatch(t, bs[0], e)
		}
		if bad == 0 {
			t.Fatalf("bit flip in sealed segment data went unnoticed")
		}
	default: // index files are hints: nothing may be lost
		m.verify(t, l)
		for _, e := range m.entries {
			bs, err := l.Read(e.BaseOffset, 1)
			if err != nil {
				t.Fatalf("Read(%d): %v", e.BaseOffset, err)
			}
			sameBatch(t, bs[0], e)
		}
	}
}
