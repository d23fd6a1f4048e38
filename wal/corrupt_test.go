package wal_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// TestCorruptionTable damages a closed log's active segment (or its index files) in specific
// ways and checks what Open keeps: the entries before the damage, never anything invalid.
func TestCorruptionTable(t *testing.T) {
	const (
		dir  = "/p"
		seg  = "/p/00000000000000000000"
		n    = 40
		size = 90
	)
	entry := int64(wal.HeaderSizeForTest + size)
	tests := []struct {
		name     string
		damage   func(t *testing.T, fs *waltest.CrashFS)
		wantNext int64 // entries (count 1 each) that must survive
		readErr  int64 // > 0: Open keeps everything, but reading this entry reports corruption
	}{
		{"nothing", func(*testing.T, *waltest.CrashFS) {}, n, 0},
		{"truncated mid-entry", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".log")
			fs.WriteFile(seg+".log", b[:len(b)-10])
		}, n - 1, 0},
		{"truncated mid-header", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".log")
			fs.WriteFile(seg+".log", b[:len(b)-int(entry)+5])
		}, n - 1, 0},
		{"zeroed preallocation after the end", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".log")
			fs.WriteFile(seg+".log", append(b, make([]byte, 1<<16)...))
		}, n, 0},
		{"garbage after the end", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".log")
			fs.WriteFile(seg+".log", append(b, bytes.Repeat([]byte{0xEE, 0x01}, 500)...))
		}, n, 0},
		{"last entry zeroed (torn sector)", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".log")
			clear(b[len(b)-int(entry)+20:])
			fs.WriteFile(seg+".log", b)
		}, n - 1, 0},
		{"bit flip in the last entry's data", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".log")
			fs.FlipBit(seg+".log", int64(len(b)-3)*8)
		}, n - 1, 0},
		{"bit flip in the third-last entry's count", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".log")
			fs.FlipBit(seg+".log", (int64(len(b))-3*entry+13)*8)
		}, n - 3, 0},
		{"bit flip before the last index point", func(t *testing.T, fs *waltest.CrashFS) {
			fs.FlipBit(seg+".log", (20*entry+40)*8) // entry 20; index points at 17 and 34
		}, n, 20},
		{"index files missing", func(t *testing.T, fs *waltest.CrashFS) {
			fs.Remove(seg + ".index")
			fs.Remove(seg + ".timeindex")
		}, n, 0},
		{"index file garbage", func(t *testing.T, fs *waltest.CrashFS) {
			fs.WriteFile(seg+".index", bytes.Repeat([]byte{0x00, 0x00, 0x00, 0x07, 0x00, 0x00, 0x01, 0x00}, 30))
		}, n, 0},
		{"time index truncated", func(t *testing.T, fs *waltest.CrashFS) {
			b, _ := fs.ReadFile(seg + ".timeindex")
			fs.WriteFile(seg+".timeindex", b[:len(b)/2+1])
		}, n, 0},
	}
	for _, tt := range tests {
		if tt.wantNext < n {
			// Damage below the durable point (the closed log's recovery point covers the
			// whole segment) is corruption, not a torn tail: Open refuses, cuts nothing.
			t.Run(tt.name+"/below durable point", func(t *testing.T) {
				fs := waltest.NewCrashFS()
				opts := wal.Options{FS: fs, IndexIntervalBytes: 2000}
				l := mustOpen(t, fs, dir, opts)
				for i := range n {
					if _, err := l.Append(payload(int64(i), size), 1, int64(i)); err != nil {
						t.Fatal(err)
					}
				}
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				tt.damage(t, fs)
				before, _ := fs.ReadFile(seg + ".log")
				if l, err := wal.Open(dir, opts); !wal.IsCorruption(err) {
					if l != nil {
						l.Close()
					}
					t.Fatalf("Open = %v, want a corruption error", err)
				}
				if after, _ := fs.ReadFile(seg + ".log"); !bytes.Equal(before, after) {
					t.Fatalf("Open changed the damaged segment (%d -> %d bytes)", len(before), len(after))
				}
			})
		}
		t.Run(tt.name, func(t *testing.T) {
			fs := waltest.NewCrashFS()
			opts := wal.Options{FS: fs, IndexIntervalBytes: 2000}
			l := mustOpen(t, fs, dir, opts)
			var m model
			for i := range n {
				data := payload(int64(i), size)
				base, err := l.Append(data, 1, int64(i))
				if err != nil {
					t.Fatal(err)
				}
				m.entries = append(m.entries, wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: int64(i), Data: data})
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if tt.wantNext < n {
				// As after a crash before any recovery point: the damage lies past the
				// durable point, where it is a torn tail.
				if err := fs.Remove(dir + "/recovery-point"); err != nil {
					t.Fatal(err)
				}
			}
			tt.damage(t, fs)
			damaged, _ := fs.ReadFile(seg + ".log")
			l = mustOpen(t, fs, dir, opts)
			defer l.Close()
			if got, want := l.Stats().TruncatedBytes, int64(len(damaged))-tt.wantNext*entry; got != want {
				t.Fatalf("Stats().TruncatedBytes = %d, want %d", got, want)
			}
			if l.NextOffset() != tt.wantNext {
				t.Fatalf("NextOffset %d, want %d", l.NextOffset(), tt.wantNext)
			}
			m.truncate(t, tt.wantNext)
			if tt.readErr > 0 {
				// Only the tail after the last index point is re-validated by Open; older
				// damage is reported by the read that meets it, never returned as data.
				for _, e := range m.entries {
					bs, err := l.Read(e.BaseOffset, 1)
					switch {
					case e.BaseOffset >= tt.readErr && e.BaseOffset < 34:
						// The damaged entry up to the next index point: reachable only through it.
						if !wal.IsCorruption(err) {
							t.Fatalf("Read(%d) = %v, want corruption", e.BaseOffset, err)
						}
					case err != nil:
						t.Fatalf("Read(%d): %v", e.BaseOffset, err)
					default:
						sameBatch(t, bs[0], e)
					}
				}
				return
			}
			m.verify(t, l)
			// The damaged bytes are gone from the file and appending continues cleanly.
			b, _ := fs.ReadFile(seg + ".log")
			if int64(len(b)) != tt.wantNext*entry {
				t.Fatalf("segment is %d bytes, want %d", len(b), tt.wantNext*entry)
			}
			data := payload(99, 10)
			base, err := l.Append(data, 1, 99)
			if err != nil || base != tt.wantNext {
				t.Fatalf("Append after recovery = %d, %v", base, err)
			}
			m.entries = append(m.entries, wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: 99, Data: data})
			m.verify(t, l)
		})
	}
}

// TestOutOfOrderPages: after a crash, unsynced pages may have reached the disk out of order —
// a hole, then intact entries, and index points to them. Open must not trust index points past
// its recovery point: it scans from there, finds the hole and cuts the log at it, so every
// entry it keeps is readable.
func TestOutOfOrderPages(t *testing.T) {
	const seg = "/p/00000000000000000000"
	fs := waltest.NewCrashFS()
	opts := wal.Options{FS: fs, IndexIntervalBytes: 100}
	l := mustOpen(t, fs, "/p", opts)
	var m model
	add := func(i int) {
		data := payload(int64(i), 150)
		base, err := l.Append(data, 1, int64(i))
		if err != nil {
			t.Fatal(err)
		}
		m.entries = append(m.entries, wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: int64(i), Data: data})
	}
	for i := range 10 {
		add(i)
	}
	if err := l.Close(); err != nil { // recovery point: the end of these 10 entries
		t.Fatal(err)
	}
	synced, _ := fs.ReadFile(seg + ".log")
	l = mustOpen(t, fs, "/p", opts)
	for i := 10; i < 30; i++ {
		add(i)
	}
	if _, err := l.Read(0, 1); err != nil { // hands the buffer and index points to the files
		t.Fatal(err)
	}
	full, _ := fs.ReadFile(seg + ".log")
	idx, _ := fs.ReadFile(seg + ".index")
	tidx, _ := fs.ReadFile(seg + ".timeindex")
	fs.Crash()
	// Pages written back out of order: the first unsynced entry is a hole, later ones and all
	// index points made it.
	holey := append([]byte(nil), full...)
	clear(holey[len(synced) : len(synced)+100])
	fs.WriteFile(seg+".log", holey)
	fs.WriteFile(seg+".index", idx)
	fs.WriteFile(seg+".timeindex", tidx)

	l = mustOpen(t, fs, "/p", opts)
	defer l.Close()
	if l.NextOffset() != 10 {
		t.Fatalf("NextOffset %d, want 10 (cut at the hole)", l.NextOffset())
	}
	m.truncate(t, 10)
	m.verify(t, l)
}

// TestDamagedIndexPoint: an index point of a sealed segment that lands inside an entry (still
// monotonic, so it passes the load checks) makes reads fall back to a scan, not fail.
func TestDamagedIndexPoint(t *testing.T) {
	fs := waltest.NewCrashFS()
	opts := wal.Options{FS: fs, SegmentBytes: 4000, IndexIntervalBytes: 250}
	l := mustOpen(t, fs, "/p", opts)
	var m model
	for i := range 60 {
		data := payload(int64(i), 100)
		base, _ := l.Append(data, 1, int64(i))
		m.entries = append(m.entries, wal.Batch{BaseOffset: base, LastOffset: base, MaxTimestamp: int64(i), Data: data})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	const idx = "/p/00000000000000000000.index"
	b, _ := fs.ReadFile(idx)
	if len(b) < 3*8 {
		t.Fatalf("index has %d bytes", len(b))
	}
	b[8+7]++ // second point's position, one byte into its entry
	fs.WriteFile(idx, b)
	l = mustOpen(t, fs, "/p", opts)
	defer l.Close()
	for _, e := range m.entries {
		bs, err := l.Read(e.BaseOffset, 1)
		if err != nil {
			t.Fatalf("Read(%d): %v", e.BaseOffset, err)
		}
		sameBatch(t, bs[0], e)
		if o, ok, err := l.OffsetForTimestamp(e.MaxTimestamp); err != nil || !ok || o != e.BaseOffset {
			t.Fatalf("OffsetForTimestamp(%d) = %d, %v, %v", e.MaxTimestamp, o, ok, err)
		}
	}
}

// TestUnknownVersionIsNotATornTail: an intact entry of a newer format version makes Open fail
// with ErrUnsupportedVersion and leaves the file alone, instead of cutting it off.
func TestUnknownVersionIsNotATornTail(t *testing.T) {
	fs := waltest.NewCrashFS()
	l := mustOpen(t, fs, "/p", wal.Options{})
	fill(t, l, 3, 40, 0)
	next := l.NextOffset()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	e := wal.EncodeEntryForTest([]byte("from the future"), next, 1, 7)
	e[8] = 3 // 1 and 2 (tagged) are known
	binary.BigEndian.PutUint32(e[0:4], crc32.Checksum(e[4:], crc32.MakeTable(crc32.Castagnoli)))
	const seg = "/p/00000000000000000000.log"
	b, _ := fs.ReadFile(seg)
	fs.WriteFile(seg, append(b, e...))
	_, err := wal.Open("/p", wal.Options{FS: fs})
	if !errors.Is(err, wal.ErrUnsupportedVersion) || wal.IsCorruption(err) {
		t.Fatalf("Open = %v, want ErrUnsupportedVersion", err)
	}
	if after, _ := fs.ReadFile(seg); len(after) != len(b)+len(e) {
		t.Fatalf("segment changed from %d to %d bytes", len(b)+len(e), len(after))
	}
}
