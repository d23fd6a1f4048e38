package raftlog_test

import (
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/meshkafka/meshkafka/broker/quorum/raftlog"
	"github.com/meshkafka/meshkafka/wal/waltest"
)

// FuzzReplay feeds arbitrary bytes as the newest segment (and optionally an older segment
// and a snapshot file) of a log with a valid raft id; with frame set, the segment's bytes are
// first cut into record payloads (u16 length each) and framed with valid CRCs, so that the
// batch decoder and the replay semantics behind the checksum are fuzzed too. Open never panics; it fails only with
// a corruption or unsupported-version error; when it succeeds the state it serves is
// consistent (entries consecutive, Entries agreeing with Term), and after Close a reopen
// serves the same state (recovery, a cut torn tail included, is durable and stable).
func FuzzReplay(f *testing.F) {
	// Seeds: the files of real logs.
	for _, opts := range []raftlog.Options{{SegmentBytes: 300, KeepEntries: 2}, {KeepEntries: -1}} {
		cfs := waltest.NewCrashFS()
		l := mustOpen(f, cfs, opts)
		w := makeWorkload(3, 25, opts.KeepEntries)
		for _, o := range w.ops {
			if err := o.apply(l); err != nil {
				f.Fatal(err)
			}
		}
		l.Close()
		var segs [][]byte
		for _, name := range cfs.Files() {
			if b, _ := cfs.ReadFile(name); len(name) > 5 && name[len(name)-5:] == ".rlog" {
				segs = append(segs, b)
			}
		}
		snap, err := cfs.ReadFile("/node/quorum/snapshot")
		seg := segs[len(segs)-1]
		f.Add(seg, []byte{}, snap, err == nil, false)
		f.Add(seg[:len(seg)-5], seg, snap, err == nil, false)
		f.Add(seg[:len(seg)/2], []byte{}, []byte{}, false, false)
		f.Add(unframe(seg), []byte{}, snap, err == nil, true)
	}
	f.Add([]byte{}, []byte{}, []byte{}, false, false)

	idFile := func() []byte {
		cfs := waltest.NewCrashFS()
		l := mustOpen(f, cfs, raftlog.Options{})
		l.Close()
		b, _ := cfs.ReadFile("/node/quorum/raft-id")
		return b
	}()

	f.Fuzz(func(t *testing.T, seg, older, snap []byte, withSnap, frame bool) {
		if frame {
			seg = frameRecords(seg)
		}
		cfs := waltest.NewCrashFS()
		if err := cfs.MkdirAll("/q", 0o755); err != nil {
			t.Fatal(err)
		}
		cfs.WriteFile("/q/raft-id", idFile)
		cfs.WriteFile("/q/00000000000000000002.rlog", seg)
		if len(older) > 0 {
			cfs.WriteFile("/q/00000000000000000001.rlog", older)
		}
		if withSnap {
			cfs.WriteFile("/q/snapshot", snap)
		}
		l, err := raftlog.Open(cfs, "/q", raftlog.Options{})
		if err != nil {
			if !raftlog.IsCorruption(err) && !errors.Is(err, raftlog.ErrUnsupportedVersion) {
				t.Fatalf("Open: %v", err)
			}
			return
		}
		first, _ := l.FirstIndex()
		last, _ := l.LastIndex()
		if first > last+1 {
			t.Fatalf("first %d, last %d", first, last)
		}
		if _, err := l.Term(first - 1); err != nil {
			t.Fatalf("term of %d (before the first): %v", first-1, err)
		}
		if first <= last {
			es, err := l.Entries(first, last+1, 1<<62)
			if err != nil || uint64(len(es)) != last-first+1 {
				t.Fatalf("entries [%d, %d]: %d, %v", first, last, len(es), err)
			}
			for i, e := range es {
				if tm, _ := l.Term(first + uint64(i)); e.GetIndex() != first+uint64(i) || e.GetTerm() != tm {
					t.Fatalf("entry %d: index %d term %d, Term says %d", i, e.GetIndex(), e.GetTerm(), tm)
				}
			}
		}
		want := dump(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l, err = raftlog.Open(cfs, "/q", raftlog.Options{})
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer l.Close()
		if got := dump(l); got != want {
			t.Fatalf("reopen:\n%s\nfirst open:\n%s", got, want)
		}
	})
}

// unframe turns a segment into the payloads frameRecords frames again (u16 length each).
func unframe(seg []byte) []byte {
	var out []byte
	for len(seg) >= 24 {
		size := int(binary.BigEndian.Uint32(seg[8:]))
		if size < 24 || size > len(seg) || size-24 > 0xffff {
			break
		}
		out = binary.BigEndian.AppendUint16(out, uint16(size-24))
		out = append(out, seg[24:size]...)
		seg = seg[size:]
	}
	return out
}

// frameRecords cuts b into payloads (u16 length each, the last one short if b ends) and
// frames each as an intact batch record (doc.go's layout), each claiming the file durable
// up to its start.
func frameRecords(b []byte) []byte {
	var out []byte
	for len(b) >= 2 {
		n := min(int(binary.BigEndian.Uint16(b)), len(b)-2)
		payload := b[2 : 2+n]
		b = b[2+n:]
		rec := make([]byte, 24, 24+n)
		binary.BigEndian.PutUint32(rec[4:], 0x524c4f47)
		binary.BigEndian.PutUint32(rec[8:], uint32(24+n))
		rec[12], rec[13] = 1, 1
		binary.BigEndian.PutUint64(rec[16:], uint64(len(out)))
		rec = append(rec, payload...)
		binary.BigEndian.PutUint32(rec[0:], crc32.Checksum(rec[4:], crc32.MakeTable(crc32.Castagnoli)))
		out = append(out, rec...)
	}
	return out
}
