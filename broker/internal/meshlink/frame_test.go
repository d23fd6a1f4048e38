package meshlink

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"testing"
	"testing/iotest"
)

func TestUvarintLen(t *testing.T) {
	var buf [binary.MaxVarintLen64]byte
	for _, v := range []uint64{0, 1, 127, 128, 16383, 16384, 1<<21 - 1, 1 << 21, 1<<35 + 3, math.MaxUint64} {
		if got, want := UvarintLen(v), binary.PutUvarint(buf[:], v); got != want {
			t.Errorf("UvarintLen(%d) = %d, want %d", v, got, want)
		}
	}
}

// TestFrames: frames built with StartFrame/SealFrame, appended after other bytes, read back
// by ReadFrame; limits and truncation are reported as documented.
func TestFrames(t *testing.T) {
	stream := []byte{}
	for _, body := range [][]byte{[]byte("a"), bytes.Repeat([]byte("b"), 300)} {
		start := len(stream)
		stream = StartFrame(stream)
		stream = append(stream, body...)
		stream = SealFrame(stream, start)
	}
	r := bytes.NewReader(stream)
	for _, want := range []string{"a", string(bytes.Repeat([]byte("b"), 300))} {
		b, err := ReadFrame(r, 1<<10, nil)
		if err != nil || string(b) != want {
			t.Fatalf("ReadFrame = %q, %v; want %q", b, err, want)
		}
	}
	if _, err := ReadFrame(r, 1<<10, nil); err != io.EOF {
		t.Fatalf("at the end: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(stream[1:]), 1<<10, nil); !errors.Is(err, ErrFrameTooLarge) && !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("misaligned: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader(stream), 0, nil); !errors.Is(err, ErrFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
}

// TestReadFrameSizes: frames around and above the sizes ReadFrame allocates at once come back
// whole from a reader that hands out a few bytes at a time, one buffer of the frame's size
// for those up to upfront; a frame cut short is io.ErrUnexpectedEOF.
func TestReadFrameSizes(t *testing.T) {
	for _, n := range []int{1, chunk - 1, chunk, chunk + 1, chunk + 300, upfront, upfront + 1, 3*upfront + 7} {
		body := make([]byte, n)
		for i := range body {
			body[i] = byte(i * 7)
		}
		stream := SealFrame(append(StartFrame(nil), body...), 0)
		b, err := ReadFrame(iotest.HalfReader(bytes.NewReader(stream)), 512<<20, nil)
		if err != nil || !bytes.Equal(b, body) {
			t.Fatalf("%d bytes: got %d bytes, %v", n, len(b), err)
		}
		if n <= upfront && cap(b) != n {
			t.Errorf("%d bytes: buffer of %d", n, cap(b))
		}
		if _, err := ReadFrame(bytes.NewReader(stream[:len(stream)-1]), 512<<20, nil); err != io.ErrUnexpectedEOF {
			t.Fatalf("%d bytes cut short: %v", n, err)
		}
	}
}
