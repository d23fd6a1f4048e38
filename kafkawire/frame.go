package kafkawire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
)

// DefaultMaxFrame is the largest request frame a [FrameReader] accepts unless told otherwise
// (Kafka's socket.request.max.bytes is 100 MiB).
const DefaultMaxFrame = 100 << 20

// ErrFrameTooLarge is returned for a size prefix above the maximum or below zero. The
// connection cannot be resynchronised and must be closed.
var ErrFrameTooLarge = errors.New("kafkawire: frame size out of range")

// FrameReader reads size-prefixed frames from a stream. It buffers the underlying reader, so
// pipelined small requests cost one read syscall between them, but it holds no large buffer
// while waiting: the wait for the next frame reads into a small buffer inside the
// FrameReader, and only a frame that does not fit there takes a 64 KiB read-ahead buffer
// from a shared pool, returned as soon as everything read ahead was consumed. An idle
// connection therefore costs a few hundred bytes here, not 64 KiB.
type FrameReader struct {
	r   io.Reader
	max int
	err error // sticky read error, returned once the buffered bytes are used up

	buf      []byte // buffered bytes are buf[off:end]; buf is small[:] or *big
	off, end int
	big      *[]byte // pooled read-ahead buffer in use (nil: buf is small)
	small    [smallBuf]byte
}

const (
	smallBuf  = 512      // idle wait buffer: holds a typical fetch, metadata or heartbeat request
	readAhead = 64 << 10 // pooled read-ahead buffer for larger frames and pipelined requests
)

var readAheadPool = sync.Pool{New: func() any { b := make([]byte, readAhead); return &b }}

// NewFrameReader returns a reader of frames of at most max bytes (0 means DefaultMaxFrame).
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	f := &FrameReader{r: r, max: max}
	f.buf = f.small[:]
	return f
}

// SetMax changes the largest frame accepted from the next frame on (0 means DefaultMaxFrame).
// The gateway lowers it for unauthenticated SASL connections.
func (f *FrameReader) SetMax(max int) {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	f.max = max
}

// Next returns the next frame's bytes (without the size prefix) in a freshly allocated
// slice that the caller owns. It returns io.EOF on a clean end between frames,
// io.ErrUnexpectedEOF for a frame cut short, and ErrFrameTooLarge for an out-of-range size.
func (f *FrameReader) Next() ([]byte, error) { return f.NextReuse(nil) }

// NextReuse is Next reading into buf when its capacity suffices (a new slice otherwise), so
// a caller that knows a frame is no longer referenced can recycle its memory.
func (f *FrameReader) NextReuse(buf []byte) ([]byte, error) {
	for f.end-f.off < 4 {
		if err := f.fill(); err != nil {
			if err == io.EOF && f.end > f.off {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	n := int32(binary.BigEndian.Uint32(f.buf[f.off:]))
	if n < 0 || int64(n) > int64(f.max) {
		return nil, fmt.Errorf("%w: %d bytes (max %d)", ErrFrameTooLarge, n, f.max)
	}
	f.off += 4
	if cap(buf) >= int(n) {
		buf = buf[:n]
	} else if n <= growChunk {
		buf = make([]byte, n)
	} else {
		// Grow with the data actually received, so a peer that announces 100 MiB and sends
		// nothing cannot make us allocate 100 MiB: from buf's memory when it is large (a
		// recycled frame), by at most frameGrowth times what is held.
		if cap(buf) < growChunk {
			buf = make([]byte, 0, growChunk)
		}
		buf = append(buf[:0], f.take(growChunk)...)
		for len(buf) < int(n) {
			if len(buf) == cap(buf) {
				buf = slices.Grow(buf, min((frameGrowth-1)*cap(buf), int(n)-len(buf)))
			}
			m, err := io.ReadFull(f.r, buf[len(buf):min(cap(buf), int(n))])
			buf = buf[:len(buf)+m]
			if err != nil {
				return nil, unexpected(err)
			}
		}
		f.drained()
		return buf, nil
	}
	k := copy(buf, f.take(int(n)))
	if rest := buf[k:]; len(rest) >= readAhead {
		if _, err := io.ReadFull(f.r, rest); err != nil { // large: straight into the frame
			return nil, unexpected(err)
		}
	} else if len(rest) > 0 {
		// Everything buffered is consumed: read the rest, and what follows, ahead.
		if f.big == nil {
			f.big = readAheadPool.Get().(*[]byte)
			f.buf = *f.big
		}
		m, err := io.ReadAtLeast(f.r, f.buf, len(rest))
		if err != nil {
			f.off, f.end = 0, 0
			f.drained()
			return nil, unexpected(err)
		}
		f.off, f.end = copy(rest, f.buf[:m]), m
	}
	f.drained()
	return buf, nil
}

// take consumes up to n buffered bytes.
func (f *FrameReader) take(n int) []byte {
	k := min(n, f.end-f.off)
	b := f.buf[f.off : f.off+k]
	f.off += k
	return b
}

// fill reads more bytes into the buffer (at least one, or an error).
func (f *FrameReader) fill() error {
	if f.err != nil {
		return f.err
	}
	f.drained()
	if f.end == len(f.buf) { // a partial size prefix at the very end: move it to the front
		f.end = copy(f.buf, f.buf[f.off:f.end])
		f.off = 0
	}
	for range 100 {
		m, err := f.r.Read(f.buf[f.end:])
		f.end += m
		if err != nil {
			f.err = err
		}
		if m > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	f.err = io.ErrNoProgress
	return f.err
}

// drained gives the read-ahead buffer back to the pool once nothing in it is unread.
func (f *FrameReader) drained() {
	if f.off < f.end {
		return
	}
	f.off, f.end = 0, 0
	if f.big != nil {
		readAheadPool.Put(f.big)
		f.big = nil
		f.buf = f.small[:]
	}
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// growChunk is the size up to which a frame's buffer is allocated in one go.
const growChunk = 1 << 20

// frameGrowth is the factor a large frame's buffer grows by as its bytes arrive.
//
// Decision (measured): a producer spread over 1,000 partitions sends produce requests of 1 to
// 16 MiB (kgo puts every partition's batch in one request), and each request larger than the
// recycled frame regrew a buffer from growChunk by doubling (1+2+4+8+16 MiB for a 16 MiB
// frame): that growth was a tenth of the gateway's CPU in BenchmarkKafkaScaleProduceInProcess
// at 1,000 partitions (2% at 4). Growing from the recycled frame by four allocates one buffer
// for most such frames; an unauthenticated peer still makes us allocate at most four times
// what it sent.
const frameGrowth = 4

// Buffered reports how many bytes are already read from the stream but not yet returned,
// so a server can tell whether another pipelined request is waiting.
func (f *FrameReader) Buffered() int { return f.end - f.off }

// AppendFrame appends a size-prefixed frame holding payload to dst.
func AppendFrame(dst, payload []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	return append(dst, payload...)
}
