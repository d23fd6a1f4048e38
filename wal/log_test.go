package wal_test

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"sync/atomic"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// payload returns deterministic entry bytes for offset base.
func payload(base int64, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(int(base)*31 + i*7)
	}
	return b
}

func mustOpen(t testing.TB, fs wal.FS, dir string, opts wal.Options) *wal.Log {
	t.Helper()
	opts.FS = fs
	l, err := wal.Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

// readAll reads every entry from StartOffset to NextOffset.
func readAll(t testing.TB, l *wal.Log) []wal.Batch {
	t.Helper()
	var out []wal.Batch
	off := l.StartOffset()
	for off < l.NextOffset() {
		bs, err := l.Read(off, 64<<10)
		if err != nil {
			t.Fatalf("Read(%d): %v", off, err)
		}
		if len(bs) == 0 {
			t.Fatalf("Read(%d) returned nothing below NextOffset %d", off, l.NextOffset())
		}
		out = append(out, bs...)
		off = bs[len(bs)-1].LastOffset + 1
	}
	return out
}

func TestAppendReadReopen(t *testing.T) {
	fs := waltest.NewCrashFS()
	opts := wal.Options{SegmentBytes: 4096, IndexIntervalBytes: 256}
	l := mustOpen(t, fs, "/data/p0", opts)
	var want []wal.Batch
	for i := range 200 {
		n := 10 + i%50
		count := int32(1 + i%3)
		data := payload(int64(i), n)
		base, err := l.Append(data, count, int64(1000+i))
		if err != nil {
			t.Fatal(err)
		}
		if len(want) > 0 && base != want[len(want)-1].LastOffset+1 {
			t.Fatalf("entry %d: base %d not contiguous", i, base)
		}
		want = append(want, wal.Batch{BaseOffset: base, LastOffset: base + int64(count) - 1, MaxTimestamp: int64(1000 + i), Data: data})
	}
	check := func(l *wal.Log) {
		t.Helper()
		sameBatches(t, "read", readAll(t, l), want)
		// Reading from an offset inside an entry starts with that entry.
		for _, w := range want {
			bs, err := l.Read(w.LastOffset, 1)
			if err != nil || len(bs) != 1 || bs[0].BaseOffset != w.BaseOffset {
				t.Fatalf("Read(%d) = %v, %v; want the entry at %d", w.LastOffset, bs, err, w.BaseOffset)
			}
		}
		if bs, err := l.Read(l.NextOffset(), 100); err != nil || bs != nil {
			t.Fatalf("Read(next) = %v, %v", bs, err)
		}
		if _, err := l.Read(l.NextOffset()+1, 100); !errors.Is(err, wal.ErrOffsetOutOfRange) {
			t.Fatalf("Read(next+1) err = %v", err)
		}
	}
	check(l)
	if err := l.Sync(l.NextOffset()); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := l.Append([]byte("x"), 1, 0); !errors.Is(err, wal.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	l = mustOpen(t, fs, "/data/p0", opts)
	defer l.Close()
	check(l)
	segs := len(fs.FilesWithSuffix(".log"))
	if segs < 3 {
		t.Fatalf("only %d segments; SegmentBytes not honoured", segs)
	}
	t.Log(fmt.Sprint(segs, " segments"))
}

func TestReadInto(t *testing.T) {
	fs := waltest.NewCrashFS()
	l := mustOpen(t, fs, "/data/p0", wal.Options{SegmentBytes: 4096, IndexIntervalBytes: 256})
	defer l.Close()
	for i := range 100 {
		if _, err := l.Append(payload(int64(i), 20+i%40), 1+int32(i%2), int64(i)); err != nil {
			t.Fatal(err)
		}
	}
	for off := l.StartOffset(); off < l.NextOffset(); off++ {
		for _, max := range []int{1, 100, 1000, 10000} {
			want, err := l.Read(off, max)
			if err != nil {
				t.Fatal(err)
			}
			// Stale contents in the spare memory must not matter.
			buf := bytes.Repeat([]byte{0xee}, 64<<10)
			got, err := l.ReadInto(off, max, buf)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(want) {
				t.Fatalf("ReadInto(%d, %d): %d entries, Read: %d", off, max, len(got), len(want))
			}
			for i := range got {
				if got[i].BaseOffset != want[i].BaseOffset || got[i].LastOffset != want[i].LastOffset || !bytes.Equal(got[i].Data, want[i].Data) {
					t.Fatalf("ReadInto(%d, %d) entry %d differs", off, max, i)
				}
			}
			// The first entry lives in buf (the window started in it).
			d := got[0].Data
			inBuf := false
			for j := range buf[:len(buf)-len(d)+1] {
				if &buf[j] == &d[0] {
					inBuf = true
					break
				}
			}
			if !inBuf {
				t.Fatalf("ReadInto(%d, %d) did not read into the given memory", off, max)
			}
			// Too small a buffer is not used (and not overrun).
			small := make([]byte, 8)
			if got, err := l.ReadInto(off, max, small); err != nil || len(got) != len(want) || !bytes.Equal(got[0].Data, want[0].Data) {
				t.Fatalf("ReadInto with a small buffer: %v", err)
			}
		}
	}
}

// Large entries skip the write buffer; mixed with buffered ones they keep their order,
// read back whole, and synced ones survive a crash.
func TestLargeEntriesDirectWrite(t *testing.T) {
	fs := waltest.NewCrashFS()
	opts := wal.Options{SegmentBytes: 1 << 20}
	l := mustOpen(t, fs, "/data/p0", opts)
	var want []wal.Batch
	sizes := []int{100, 70 << 10, 10, 64 << 10, 64<<10 - 33, 200 << 10, 5, 300 << 10}
	for i, n := range sizes {
		data := payload(int64(i), n)
		base, err := l.Append(data, 2, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, wal.Batch{BaseOffset: base, LastOffset: base + 1, Data: data})
		if i == 5 {
			if err := l.Sync(l.NextOffset()); err != nil {
				t.Fatal(err)
			}
		}
	}
	check := func(l *wal.Log, n int) {
		t.Helper()
		got := readAll(t, l)
		if len(got) < n {
			t.Fatalf("%d entries, want at least %d", len(got), n)
		}
		for i := range got {
			if got[i].BaseOffset != want[i].BaseOffset || !bytes.Equal(got[i].Data, want[i].Data) {
				t.Fatalf("entry %d differs", i)
			}
		}
	}
	check(l, len(want))
	fs.Crash()
	l.Close()
	l = mustOpen(t, fs, "/data/p0", opts)
	defer l.Close()
	check(l, 6) // the first six were synced
}

// countFS counts the bytes read through it.
type countFS struct {
	wal.FS
	read *atomic.Int64
}

func (c countFS) OpenFile(name string, flag int, perm fs.FileMode) (wal.File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countFile{f, c.read}, nil
}

type countFile struct {
	wal.File
	read *atomic.Int64
}

func (f countFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.read.Add(int64(n))
	return n, err
}

// A Read that stops at maxBytes does not read the entry it stops before (only its header).
func TestReadStopsBeforeUnwantedEntry(t *testing.T) {
	var read atomic.Int64
	l := mustOpen(t, countFS{waltest.NewCrashFS(), &read}, "/data/p0", wal.Options{})
	defer l.Close()
	const size = 300 << 10
	for i := range 4 {
		if _, err := l.Append(payload(int64(i), size), 1, 0); err != nil {
			t.Fatal(err)
		}
	}
	l.Read(0, 1) // flush the write buffer to the file
	for off := int64(0); off < 3; off++ {
		read.Store(0)
		bs, err := l.Read(off, size+100)
		if err != nil || len(bs) != 1 || !bytes.Equal(bs[0].Data, payload(off, size)) {
			t.Fatalf("Read(%d): %d entries, %v", off, len(bs), err)
		}
		if n := read.Load(); n > size+1024 { // the window may run a few hundred bytes past
			t.Fatalf("Read(%d) of one %d-byte entry read %d bytes", off, size, n)
		}
	}
}
