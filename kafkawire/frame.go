package kafkawire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// DefaultMaxFrame is the largest request frame a [FrameReader] accepts unless told otherwise
// (Kafka's socket.request.max.bytes is 100 MiB).
const DefaultMaxFrame = 100 << 20

// ErrFrameTooLarge is returned for a size prefix above the maximum or below zero. The
// connection cannot be resynchronised and must be closed.
var ErrFrameTooLarge = errors.New("kafkawire: frame size out of range")

// FrameReader reads size-prefixed frames from a stream. It buffers the underlying reader, so
// pipelined small requests cost one read syscall between them.
type FrameReader struct {
	r    *bufio.Reader
	max  int
	size [4]byte
}

// NewFrameReader returns a reader of frames of at most max bytes (0 means DefaultMaxFrame).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &FrameReader{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// Next returns the next frame's bytes (without the size prefix) in a freshly allocated
// slice that the caller owns. It returns io.EOF on a clean end between frames,
// io.ErrUnexpectedEOF for a frame cut short, and ErrFrameTooLarge for an out-of-range size.
func (f *FrameReader) Next() ([]byte, error) { return f.NextReuse(nil) }

// NextReuse is Next reading into buf when its capacity suffices (a new slice otherwise), so
// a caller that knows a frame is no longer referenced can recycle its memory.
func (f *FrameReader) NextReuse(buf []byte) ([]byte, error) {
	if _, err := io.ReadFull(f.r, f.size[:]); err != nil {
		return nil, err
	}
	n := int32(binary.BigEndian.Uint32(f.size[:]))
	if n < 0 || int64(n) > int64(f.max) {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, f.max)
	}
	if cap(buf) >= int(n) {
		buf = buf[:n]
	} else if n <= growChunk {
		buf = make([]byte, n)
	} else {
		// Grow with the data actually received, so a peer that announces 100 MiB and sends
		// nothing cannot make us allocate 100 MiB.
		buf = make([]byte, 0, growChunk)
		for len(buf) < int(n) {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, min(cap(buf), int(n)-len(buf)))
			}
			m, err := io.ReadFull(f.r, buf[len(buf):min(cap(buf), int(n))])
			buf = buf[:len(buf)+m]
			if err != nil {
				if err == io.EOF {
					err = io.ErrUnexpectedEOF
				}
				return nil, err
			}
		}
		return buf, nil
	}
	if _, err := io.ReadFull(f.r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf, nil
}

// growChunk is the size up to which a frame's buffer is allocated in one go.
const growChunk = 1 << 20

// Buffered reports how many bytes are already read from the stream but not yet returned,
// so a server can tell whether another pipelined request is waiting.
func (f *FrameReader) Buffered() int { return f.r.Buffered() }

// AppendFrame appends a size-prefixed frame holding payload to dst.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}
