package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestBufPoolClasses: getBuf hands out buffers of the power-of-two class that holds the request
// (at least 1 KiB), empty; putBuf keeps only buffers of a class, and a recycled buffer comes
// back empty whatever it held.
func TestBufPoolClasses(t *testing.T) {
	for _, tc := range []struct{ n, wantCap int }{
		{1, 1 << 10}, {1056, 2 << 10}, {4 << 10, 4 << 10}, {4<<10 + 1, 8 << 10}, {100_000, 128 << 10},
		{writeBufferBytes, writeBufferBytes}, {writeBufferBytes + 1, writeBufferBytes + 1},
	} {
		b := getBuf(tc.n)
		if len(b) != 0 || cap(b) != tc.wantCap {
			t.Errorf("getBuf(%d): len %d cap %d, want 0 and %d", tc.n, len(b), cap(b), tc.wantCap)
		}
		b = append(b, 1, 2, 3)
		putBuf(b)
		if b2 := getBuf(tc.n); len(b2) != 0 || cap(b2) < tc.n {
			t.Errorf("getBuf(%d) after putBuf: len %d cap %d", tc.n, len(b2), cap(b2))
		}
	}
	putBuf(make([]byte, 10, 5000)) // not a class size: ignored, never handed out as 4 KiB
	for range 10 {
		if b := getBuf(4 << 10); cap(b) != 4<<10 {
			t.Fatalf("getBuf(4 KiB) returned cap %d", cap(b))
		}
	}
}

// TestGrowBufKeepsContents: growing the write buffer (its first chunk into larger pooled
// ones, then by whole chunks) keeps its bytes, in order.
func TestGrowBufKeepsContents(t *testing.T) {
	var l Log
	want := make([]byte, 0, 300_000)
	for i := range 300_000 {
		l.buf.write([]byte{byte(i * 7)})
		want = append(want, byte(i*7))
	}
	if string(l.buf.bytes()) != string(want) || l.buf.len() != len(want) {
		t.Fatal("growing the write buffer lost or changed buffered bytes")
	}
	// 300,000 bytes: four full 64 KiB chunks and a fifth (the first grew to the chunk size).
	if c := l.buf.cap(); c != 5*bufChunkBytes {
		t.Fatalf("cap %d after 300,000 bytes, want five %d-byte chunks", c, bufChunkBytes)
	}
	l.buf.reset() // emptied, memory kept, and filled again in the same chunks
	if l.buf.len() != 0 || l.buf.cap() != 5*bufChunkBytes {
		t.Fatalf("reset left %d bytes and capacity %d, want 0 and the five chunks", l.buf.len(), l.buf.cap())
	}
	want = want[:0]
	for i := range 200_000 {
		l.buf.write([]byte{byte(i * 3)})
		want = append(want, byte(i*3))
	}
	if string(l.buf.bytes()) != string(want) || l.buf.cap() != 5*bufChunkBytes {
		t.Fatalf("refilled after reset: content equal %v, capacity %d", string(l.buf.bytes()) == string(want), l.buf.cap())
	}
	l.buf.reset()
	l.releaseBuf()
	if l.buf.chunks != nil {
		t.Fatal("releaseBuf kept the buffer")
	}
}

// TestWriteBufSmallStaysSmall: a little-written log's buffer stays in the smallest classes
// (an idle partition's memory), and entries spanning chunks reach the file intact.
func TestWriteBufSmallStaysSmall(t *testing.T) {
	var w writeBuf
	w.write(make([]byte, 100))
	if c := w.cap(); c != 1<<10 {
		t.Fatalf("100 bytes buffered in %d bytes, want the 1 KiB class", c)
	}
	var want []byte
	for i := range 50 { // 50 writes of 3,001 bytes: chunk boundaries fall inside writes
		p := make([]byte, 3001)
		for j := range p {
			p[j] = byte(i + j)
		}
		w.write(p)
		want = append(want, p...)
	}
	var w2 writeBuf
	w2.write(want)
	path := filepath.Join(t.TempDir(), "f")
	f, err := OSFS().OpenFile(path, osRDWR|osCREATE|osTRUNC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte("head"), 0); err != nil {
		t.Fatal(err)
	}
	n, err := w2.writeTo(f, 4)
	got, rerr := os.ReadFile(path)
	if err != nil || rerr != nil || n != int64(len(want)) || string(got) != "head"+string(want) {
		t.Fatalf("writeTo wrote %d bytes (%v, %v), file content as written: %v", n, err, rerr, string(got) == "head"+string(want))
	}
	if got := w.bytes()[100:]; string(got) != string(want) {
		t.Fatal("bytes() does not return what was written")
	}
}

// TestAppendJournalToMatchesAppendJournalRec: a record written into a chunked buffer
// (appendJournalTo, the Store's path) is byte for byte the record appendJournalRec encodes,
// for every kind, when records (and their names) span chunk boundaries.
func TestAppendJournalToMatchesAppendJournalRec(t *testing.T) {
	w := writeBuf{chunk: 4 << 10} // small chunks: most records span a boundary
	var want []byte
	var hdr [journalHeaderSize + tagSize]byte
	for i := range 300 {
		kind := []uint8{journalKindEntry, journalKindTagged, journalKindRemove, journalKindTruncate}[i%4]
		name := fmt.Sprintf("topic-%d/%d", i, i*7)
		data := make([]byte, (i*131)%9000)
		for j := range data {
			data[j] = byte(i ^ j)
		}
		n := appendJournalTo(&w, hdr[:], kind, int64(i*1000), name, uint64(i+5), data, int64(i*3), int32(i+1), int64(i*11))
		before := len(want)
		want = appendJournalRec(want, kind, int64(i*1000), name, uint64(i+5), data, int64(i*3), int32(i+1), int64(i*11))
		if n != len(want)-before {
			t.Fatalf("record %d: size %d, want %d", i, n, len(want)-before)
		}
		if kind != journalKindEntry && kind != journalKindTagged {
			continue // the other kinds carry other fields (the bytes are compared below)
		}
		if _, size, err := decodeJournalRecord(want[before:]); err != nil || size != n {
			t.Fatalf("record %d does not decode: %v", i, err)
		}
	}
	if got := w.bytes(); string(got) != string(want) {
		t.Fatal("appendJournalTo wrote other bytes than appendJournalRec")
	}
}

// TestWriteBufFirstChunkGrowsByFour: a steadily written buffer reaches bufChunkBytes from
// 1 KiB in three moves (1, 4, 16, 64 KiB), not six (doubling), so a partition's buffer
// allocates 85 KiB rather than 127 KiB on its way to one chunk.
func TestWriteBufFirstChunkGrowsByFour(t *testing.T) {
	var w writeBuf
	caps := []int{}
	for w.cap() < bufChunkBytes {
		w.write(make([]byte, 1000))
		if c := w.cap(); len(caps) == 0 || caps[len(caps)-1] != c {
			caps = append(caps, c)
		}
	}
	want := []int{1 << 10, 4 << 10, 16 << 10, 64 << 10}
	if !slices.Equal(caps, want) {
		t.Fatalf("first chunk capacities %v, want %v", caps, want)
	}
}
