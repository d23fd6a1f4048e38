package wal

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzJournalReader feeds arbitrary bytes as a journal segment to the recovery reader. It never
// panics; it fails only with a corruption or unsupported-version error; the records it
// returns are exactly the bytes before the end it reports (re-encoding them reproduces those
// bytes), and a cut (end before the data's end) without an error happens only at a record
// that does not decode or is a leftover of a recycled file (version 2, synced below base).
func FuzzJournalReader(f *testing.F) {
	var seg []byte
	for i := range 4 {
		seg = appendJournalRecord(seg, int64(len(seg)), "topics/t/0", bytes.Repeat([]byte{byte(i)}, 7*i), int64(3*i), 3, int64(100+i))
	}
	seg = appendJournalRemove(seg, int64(len(seg)), "topics/t/0")
	// The kinds of replicated partitions: tagged entries, truncation, reset, state.
	seg = appendJournalRec(seg, journalKindTagged, int64(len(seg)), "topics/t/1", 42, []byte("tagged"), 0, 2, 7)
	seg = appendJournalRec(seg, journalKindTruncate, int64(len(seg)), "topics/t/1", 0, nil, 1, 0, 0)
	seg = appendJournalRec(seg, journalKindReset, int64(len(seg)), "topics/t/1", 0, nil, 100, 0, 0)
	seg = appendJournalRec(seg, journalKindState, int64(len(seg)), "topics/t/1", 0, []byte("hard state"), 0, 0, 0)
	f.Add(seg, int64(0))
	f.Add(seg[:len(seg)-5], int64(1<<20))
	damaged := append([]byte(nil), seg...)
	damaged[60] ^= 1
	f.Add(damaged, int64(0))
	f.Add([]byte{}, int64(0))
	f.Fuzz(func(t *testing.T, b []byte, base int64) {
		if base < 0 {
			base = -base
		}
		base %= 1 << 40
		recs, end, err := readJournal(b, base, 0)
		if err != nil && !IsCorruption(err) && !errors.Is(err, ErrUnsupportedVersion) {
			t.Fatalf("error %v is neither corruption nor an unsupported version", err)
		}
		if end < 0 || end > int64(len(b)) {
			t.Fatalf("end %d outside [0, %d]", end, len(b))
		}
		var re []byte
		for _, r := range recs {
			if r.lsn != base+int64(len(re)) {
				t.Fatalf("record at %d, want %d", r.lsn, base+int64(len(re)))
			}
			re = encodeJournalRecord(re, &r)
		}
		if !bytes.Equal(re, b[:end]) {
			t.Fatalf("re-encoded records (%d bytes) differ from the %d bytes read", len(re), end)
		}
		if err == nil && end < int64(len(b)) {
			if r, _, derr := decodeJournalRecord(b[end:]); derr == nil && (r.version < 2 || r.synced >= base) {
				t.Fatalf("cut at %d before a record of the segment that decodes", end)
			}
		}
	})
}

// FuzzStateFile feeds arbitrary bytes as a log's state file. It never panics; the state it
// returns is the newest valid slot, whose bytes re-encode to exactly what is stored there.
func FuzzStateFile(f *testing.F) {
	one := encodeStateSlot(1, []byte("state one"))
	two := append(append(append([]byte(nil), one...), make([]byte, stateSlotSize-len(one))...), encodeStateSlot(2, []byte("two"))...)
	f.Add(one)
	f.Add(two)
	f.Add(two[:len(two)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		seq, st := decodeStateFile(b)
		if seq == 0 {
			if st != nil {
				t.Fatalf("no valid slot but state %q", st)
			}
			return
		}
		if len(st) > MaxStateBytes {
			t.Fatalf("state of %d bytes", len(st))
		}
		for i := range 2 {
			if s, _, ok := decodeStateSlot(b[min(len(b), i*stateSlotSize):min(len(b), (i+1)*stateSlotSize)]); ok && s > seq {
				t.Fatalf("slot %d has a newer sequence %d than the chosen %d", i, s, seq)
			}
		}
		found := false
		for i := range 2 {
			start := i * stateSlotSize
			re := encodeStateSlot(seq, st)
			if start+len(re) <= len(b) && bytes.Equal(b[start:start+len(re)], re) {
				found = true
			}
		}
		if !found {
			t.Fatalf("state %q (seq %d) does not re-encode to a stored slot", st, seq)
		}
	})
}
