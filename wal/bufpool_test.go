package wal

import "testing"

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

// TestGrowBufKeepsContents: growing the write buffer into a larger pooled one keeps its bytes.
func TestGrowBufKeepsContents(t *testing.T) {
	var l Log
	want := make([]byte, 0, 300_000)
	for i := range 300_000 {
		l.growBuf(1)
		l.buf = append(l.buf, byte(i*7))
		want = append(want, byte(i*7))
	}
	if string(l.buf) != string(want) {
		t.Fatal("growBuf lost or changed buffered bytes")
	}
	if cap(l.buf) != 512<<10 {
		t.Fatalf("cap %d after 300,000 bytes, want the 512 KiB class", cap(l.buf))
	}
	l.buf = l.buf[:0]
	l.releaseBuf()
	if l.buf != nil {
		t.Fatal("releaseBuf kept the buffer")
	}
}
