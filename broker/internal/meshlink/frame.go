package meshlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// FrameHeader is the size of a frame's length prefix.
const FrameHeader = 4

// Frame errors. Both are wrapped with detail; a Codec's DecodeBatch wraps ErrMalformed.
var (
	ErrFrameTooLarge = errors.New("frame too large")
	ErrMalformed     = errors.New("malformed frame")
)

// chunk is the largest buffer a non-retaining receiver keeps between frames.
const chunk = 1 << 20

// upfront is the most ReadFrame allocates on a frame's length prefix alone. A larger frame's
// buffer grows as its bytes arrive, to at most twice what arrived, so a prefix never makes it
// allocate much more than arrived. A replica append of about MaxSizePerMsg (1 MiB) plus one
// entry fits, read into one buffer of its exact size (decision, session 11, issue #16: such
// frames, just over 1 MiB, went through a bytes.Buffer growing from 512 bytes, which copied
// and cleared each about four times: 3-4% of an RF=3 follower's CPU).
const upfront = 2 * chunk

// ReadFrame reads one frame from r and returns its batch (the bytes after the length
// prefix), reusing buf when it is large enough. A frame longer than max is ErrFrameTooLarge
// (nothing more is read); an empty frame is ErrMalformed; io.EOF before the first byte is
// io.EOF, a frame cut short io.ErrUnexpectedEOF.
func ReadFrame(r io.Reader, max int, buf []byte) ([]byte, error) {
	var hdr [FrameHeader]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 {
		return nil, fmt.Errorf("%w: empty frame", ErrMalformed)
	}
	if uint64(n) > uint64(max) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrFrameTooLarge, n, max)
	}
	size := int(n)
	if size > cap(buf) {
		buf = make([]byte, min(size, upfront))
	}
	buf = buf[:min(size, cap(buf))]
	got := 0
	for {
		k, err := io.ReadFull(r, buf[got:])
		got += k
		if err != nil {
			return nil, noEOF(err)
		}
		if got == size {
			return buf, nil
		}
		// Large (a snapshot): grow as the bytes arrive.
		next := min(size, 2*got)
		buf = slices.Grow(buf, next-got)[:next]
	}
}

func noEOF(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// StartFrame appends an unsealed frame header to buf.
func StartFrame(buf []byte) []byte { return append(buf, 0, 0, 0, 0) }

// SealFrame writes the batch length into the header of the frame that starts at buf[start].
func SealFrame(buf []byte, start int) []byte {
	binary.BigEndian.PutUint32(buf[start:], uint32(len(buf)-start-FrameHeader))
	return buf
}

// UvarintLen is the number of bytes binary.AppendUvarint takes for v.
func UvarintLen(v uint64) int {
	n := 1
	for v >= 0x80 {
		v >>= 7
		n++
	}
	return n
}

// AppendFrame appends one frame carrying items to buf, encoded by enc (as a fresh sender
// frames them, with no size limit). On an encoding error buf comes back as it was.
func AppendFrame[T any](buf []byte, enc Encoder[T], items []T) ([]byte, error) {
	start := len(buf)
	buf = StartFrame(buf)
	enc.Reset()
	for _, it := range items {
		var err error
		if buf, err = enc.Append(buf, it); err != nil {
			return buf[:start], err
		}
	}
	return SealFrame(buf, start), nil
}
