package wal_test

import (
	"bytes"
	"os"
	"path"
	"path/filepath"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// goldenEntries is the fixed content of testdata/golden: two sealed segments and an active one.
func goldenEntries() []wal.Batch {
	var out []wal.Batch
	off := int64(0)
	for i := range 7 {
		count := int64(1 + i%3)
		data := []byte("golden entry " + string(rune('a'+i)) + " " + string(bytes.Repeat([]byte{'x'}, 10*i)))
		out = append(out, wal.Batch{BaseOffset: off, LastOffset: off + count - 1, MaxTimestamp: 1_700_000_000_000 + int64(i)*1000, Data: data})
		off += count
	}
	return out
}

var goldenOpts = wal.Options{SegmentBytes: 200, IndexIntervalBytes: 40}

// TestGolden pins the on-disk format: the files written for goldenEntries must equal
// testdata/golden byte for byte (UPDATE_GOLDEN=1 rewrites them after a deliberate format
// change), and the golden files must open on the real disk and read back the same entries.
func TestGolden(t *testing.T) {
	goldenLog(t, "golden", func(l *wal.Log, e wal.Batch) error {
		_, err := l.Append(e.Data, int32(e.LastOffset-e.BaseOffset+1), e.MaxTimestamp)
		return err
	}, false)
}

// TestGoldenTagged pins the tagged entry format (version 2, AppendTagged) the same way, in
// testdata/golden-tagged: every entry tagged (100 + its number) but the fourth, so the two
// versions are mixed in one segment.
func TestGoldenTagged(t *testing.T) {
	i := 0
	goldenLog(t, "golden-tagged", func(l *wal.Log, e wal.Batch) error {
		defer func() { i++ }()
		if i == 3 {
			_, err := l.Append(e.Data, int32(e.LastOffset-e.BaseOffset+1), e.MaxTimestamp)
			return err
		}
		_, err := l.AppendTagged(e.Data, int32(e.LastOffset-e.BaseOffset+1), e.MaxTimestamp, uint64(100+i))
		return err
	}, true)
}

func goldenLog(t *testing.T, name string, appendEntry func(*wal.Log, wal.Batch) error, tagged bool) {
	cfs := waltest.NewCrashFS()
	opts := goldenOpts
	opts.FS = cfs
	l, err := wal.Open("/g", opts)
	if err != nil {
		t.Fatal(err)
	}
	want := goldenEntries()
	for i, e := range want {
		if err := appendEntry(l, e); err != nil {
			t.Fatal(err)
		}
		if tagged && i != 3 {
			want[i].Tag = uint64(100 + i)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	gdir := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") == "1" {
		os.RemoveAll(gdir)
		if err := os.MkdirAll(gdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, f := range cfs.Files() {
			b, _ := cfs.ReadFile(f)
			if err := os.WriteFile(filepath.Join(gdir, path.Base(f)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	names, err := os.ReadDir(gdir)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create)", err)
	}
	if len(names) != len(cfs.Files()) {
		t.Fatalf("golden has %d files, log wrote %v", len(names), cfs.Files())
	}
	tmp := t.TempDir()
	for _, n := range names {
		g, err := os.ReadFile(filepath.Join(gdir, n.Name()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := cfs.ReadFile("/g/" + n.Name())
		if err != nil {
			t.Fatalf("log did not write %s", n.Name())
		}
		if !bytes.Equal(got, g) {
			t.Errorf("%s differs from the golden file:\n got %x\nwant %x", n.Name(), got, g)
		}
		os.WriteFile(filepath.Join(tmp, n.Name()), g, 0o644)
	}
	l, err = wal.Open(tmp, goldenOpts)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := readAll(t, l)
	sameBatches(t, "golden log", got, want)
	for i := range want {
		if got[i].Tag != want[i].Tag {
			t.Fatalf("entry %d has tag %d, want %d", i, got[i].Tag, want[i].Tag)
		}
	}
	if l.StartOffset() != 0 || l.NextOffset() != want[len(want)-1].LastOffset+1 {
		t.Fatalf("golden log [%d,%d)", l.StartOffset(), l.NextOffset())
	}
}
