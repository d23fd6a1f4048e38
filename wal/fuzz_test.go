package wal_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/meshkafka/meshkafka/wal"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// FuzzReader feeds arbitrary bytes as a segment file (and its index files; entries of both
// format versions, untagged and tagged, in the seeds), as the active
// segment or as a sealed one followed by an empty active segment. Open and Read never panic;
// Open fails only with a corruption error, and only for a sealed segment; Read fails only with a
// corruption error; every entry read is one that passes its CRC: re-encoding the entries read reproduces the file byte for byte.
func FuzzReader(f *testing.F) {
	var seg []byte
	for i := range 5 {
		seg = append(seg, wal.EncodeEntryForTest(payload(int64(i), 10*i), int64(2*i), 2, int64(100+i))...)
	}
	f.Add(seg, []byte{}, []byte{}, false, uint32(10))
	f.Add(seg[:len(seg)-3], []byte{}, []byte{}, false, uint32(10))
	f.Add(seg, []byte{}, []byte{}, true, uint32(10))
	// Tagged entries (version 2), and a mix of both versions.
	var tagged []byte
	for i := range 5 {
		if i == 2 {
			tagged = append(tagged, wal.EncodeEntryForTest(payload(int64(i), 9), int64(2*i), 2, int64(100+i))...)
			continue
		}
		tagged = append(tagged, wal.EncodeTaggedEntryForTest(payload(int64(i), 10*i), int64(2*i), 2, int64(100+i), uint64(7+i))...)
	}
	f.Add(tagged, []byte{}, []byte{}, false, uint32(10))
	f.Add(tagged, []byte{}, []byte{}, true, uint32(10))
	f.Add(tagged[:len(tagged)-45], []byte{}, []byte{}, false, uint32(10))
	// Holes (version 3, left by cleaning) between and after entries.
	var holed []byte
	holed = append(holed, wal.EncodeEntryForTest(payload(0, 10), 0, 2, 100)...)
	holed = append(holed, wal.EncodeHoleForTest(2, 5)...)
	holed = append(holed, wal.EncodeHoleForTest(7, 1)...)
	holed = append(holed, wal.EncodeEntryForTest(payload(1, 12), 8, 1, 101)...)
	holed = append(holed, wal.EncodeHoleForTest(9, 3)...)
	f.Add(holed, []byte{}, []byte{}, false, uint32(12))
	f.Add(holed, []byte{}, []byte{}, true, uint32(12))
	// A real log's files, with index points.
	cfs := waltest.NewCrashFS()
	l, err := wal.Open("/s", wal.Options{FS: cfs, IndexIntervalBytes: 40, SegmentBytes: 400})
	if err != nil {
		f.Fatal(err)
	}
	for i := range 12 {
		l.Append(payload(int64(i), 20), 1, int64(i))
	}
	l.Close()
	lg, _ := cfs.ReadFile("/s/00000000000000000000.log")
	ix, _ := cfs.ReadFile("/s/00000000000000000000.index")
	tx, _ := cfs.ReadFile("/s/00000000000000000000.timeindex")
	f.Add(lg, ix, tx, true, uint32(l.NextOffset()))
	f.Add(lg, ix, tx, false, uint32(0))

	f.Fuzz(func(t *testing.T, logData, idx, tidx []byte, sealed bool, nextBase uint32) {
		fs := waltest.NewCrashFS()
		if err := fs.MkdirAll("/p", 0o755); err != nil {
			t.Fatal(err)
		}
		fs.WriteFile("/p/00000000000000000000.log", logData)
		fs.WriteFile("/p/00000000000000000000.index", idx)
		fs.WriteFile("/p/00000000000000000000.timeindex", tidx)
		if sealed {
			nextBase = max(nextBase, 1) // the next segment's base is above this one's
			fs.WriteFile("/p/"+segName(int64(nextBase))+".log", nil)
		}
		l, err := wal.Open("/p", wal.Options{FS: fs, IndexIntervalBytes: 64})
		if err != nil {
			// A sealed segment may be corrupt; any segment may hold an intact entry of an
			// unknown format version.
			if !(sealed && wal.IsCorruption(err)) && !errors.Is(err, wal.ErrUnsupportedVersion) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		defer l.Close()
		var re []byte
		readErr := false
		off := l.StartOffset()
		for off < l.NextOffset() {
			// Holes are never read: they re-encode from the file, and must cover the
			// offsets up to the next entry read.
			skipHoles := func(upTo int64) {
				for off < upTo {
					base, count, size, ok := wal.HoleForTest(logData[len(re):])
					if !ok || base != off {
						t.Fatalf("offsets %d..%d skipped by Read but no hole at %d", off, upTo, off)
					}
					re = append(re, logData[len(re):len(re)+size]...)
					off += int64(count)
				}
			}
			bs, err := l.Read(off, 1+int(nextBase%5000))
			if err != nil {
				// Only the tail of the active segment is validated by Open: damage before it
				// (here: index points into the middle of garbage) is reported by Read.
				if !wal.IsCorruption(err) && !errors.Is(err, wal.ErrUnsupportedVersion) {
					t.Fatalf("Read(%d): %v", off, err)
				}
				readErr = true
				break
			}
			if len(bs) == 0 {
				skipHoles(l.NextOffset()) // only holes are left
				break
			}
			for _, b := range bs {
				skipHoles(b.BaseOffset)
				if b.BaseOffset != off {
					t.Fatalf("entry at %d, want %d", b.BaseOffset, off)
				}
				// An entry re-encodes in its own version: untagged (its tag reads as 0)
				// or tagged.
				e := wal.EncodeEntryForTest(b.Data, b.BaseOffset, int32(b.LastOffset-b.BaseOffset+1), b.MaxTimestamp)
				if b.Tag != 0 || !bytes.HasPrefix(logData[len(re):], e) {
					e = wal.EncodeTaggedEntryForTest(b.Data, b.BaseOffset, int32(b.LastOffset-b.BaseOffset+1), b.MaxTimestamp, b.Tag)
				}
				re = append(re, e...)
				off = b.LastOffset + 1
			}
		}
		if !bytes.HasPrefix(logData, re) {
			t.Fatalf("entries read do not re-encode to a prefix of the segment")
		}
		if readErr {
			return
		}
		if sealed && !bytes.Equal(logData, re) {
			t.Fatalf("sealed segment opened but only %d of %d bytes are entries", len(re), len(logData))
		}
		got, _ := fs.ReadFile("/p/00000000000000000000.log")
		if !sealed && !bytes.Equal(got, re) {
			t.Fatalf("active segment truncated to %d bytes, entries cover %d", len(got), len(re))
		}
		// Tag lookups bisect over unverified headers: never a panic, never a wrong kind of
		// error, always an offset inside the log.
		for _, tag := range []uint64{0, 1, uint64(nextBase), 1 << 63} {
			o, err := l.OffsetForTag(tag)
			if err != nil && !wal.IsCorruption(err) && !errors.Is(err, wal.ErrUnsupportedVersion) {
				t.Fatalf("OffsetForTag(%d): %v", tag, err)
			}
			if err == nil && (o < l.StartOffset() || o > l.NextOffset()) {
				t.Fatalf("OffsetForTag(%d) = %d outside [%d, %d]", tag, o, l.StartOffset(), l.NextOffset())
			}
		}
		for q := int64(-1); q < 3; q++ {
			if _, _, err := l.OffsetForTimestamp(q * 50); err != nil {
				t.Fatalf("OffsetForTimestamp: %v", err)
			}
		}
	})
}

func segName(base int64) string {
	s := []byte("00000000000000000000")
	for i := len(s) - 1; base > 0; i-- {
		s[i] = byte('0' + base%10)
		base /= 10
	}
	return string(s)
}
