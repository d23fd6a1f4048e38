package wal

import "hash/crc32"

// writeBuf is a member's (or standalone log's) write buffer: the bytes of the active segment
// not yet handed to its file, in chunks from the size-classed pool (bufpool.go). The first
// chunk grows by at least firstChunkGrowth times from 1 KiB up to bufChunkBytes (an idle or
// little-written partition stays small); past that the buffer grows by whole chunks of
// bufChunkBytes, which are never copied, and an entry may span chunks.
//
// Decision (measured): a single slice doubling up to 1 MiB copied every buffered byte once
// more per doubling and allocated about 2.5 times the bytes it held (BenchmarkKafkaScaleProduce
// at 1,000 partitions: 321 MB allocated for 130 MB of records, 6% of the server's CPU in the
// copies, more in page faults and garbage collection of the fresh memory); with chunks the
// copies stop at bufChunkBytes and the memory is what the buffer holds, rounded up to a chunk.
// A flush costs one write per chunk.
type writeBuf struct {
	chunks [][]byte // from getBuf; those before cur are full, those after it empty
	cur    int      // the chunk being filled
	n      int      // bytes held
	chunk  int      // chunk size; 0 means bufChunkBytes (the journal's buffers use larger ones)
}

// bufChunkBytes is the size of every chunk but a growing first one.
const bufChunkBytes = 64 << 10

// firstChunkGrowth is the least factor a growing first chunk grows by.
//
// Decision (measured): with doubling, a partition written steadily allocated every class from
// 1 KiB to bufChunkBytes once (127 KiB for a buffer that ends up holding 64 KiB), and the
// classes it left went back to a pool that no other partition drew from, since at 1,000
// partitions all of them grow together: wal.getBuf was the server's largest allocation site
// in BenchmarkKafkaScaleProduceInProcess at 1,000 partitions (116 MB of growth for 65 MB of
// records). Growing by four visits 1, 4, 16 and 64 KiB (85 KiB) and copies half as often; a
// little-written partition holds at most four times its bytes instead of twice, until a
// checkpoint finds it cold and releases the buffer.
const firstChunkGrowth = 4

func (w *writeBuf) len() int { return w.n }

// cap is the memory the buffer holds.
func (w *writeBuf) cap() int {
	c := 0
	for _, b := range w.chunks {
		c += cap(b)
	}
	return c
}

// write appends p.
func (w *writeBuf) write(p []byte) {
	for len(p) > 0 {
		k := w.room(len(p))
		last := &w.chunks[w.cur]
		*last = append(*last, p[:k]...)
		p = p[k:]
		w.n += k
	}
}

// writeString appends p (no conversion to a byte slice, which could allocate).
func (w *writeBuf) writeString(p string) {
	for len(p) > 0 {
		k := w.room(len(p))
		last := &w.chunks[w.cur]
		*last = append(*last, p[:k]...)
		p = p[k:]
		w.n += k
	}
}

// room makes room for up to want bytes in the chunk at cur and returns how many fit (> 0).
func (w *writeBuf) room(want int) int {
	size := w.chunk
	if size == 0 {
		size = bufChunkBytes
	}
	for {
		if len(w.chunks) == 0 {
			w.chunks, w.cur = append(w.chunks, getBuf(min(want, size))), 0
		}
		last := &w.chunks[w.cur]
		room := cap(*last) - len(*last)
		if room < want && len(w.chunks) == 1 && cap(*last) < size {
			// The first chunk is still growing: move it to a size class at least
			// firstChunkGrowth times larger (see firstChunkGrowth).
			nb := append(getBuf(min(max(len(*last)+want, firstChunkGrowth*cap(*last)), size)), *last...)
			putBuf(*last)
			*last = nb
			room = cap(nb) - len(nb)
		}
		if room > 0 {
			return min(room, want)
		}
		if w.cur++; w.cur == len(w.chunks) {
			w.chunks = append(w.chunks, getBuf(size))
		}
	}
}

// filled returns the chunks that hold bytes (the last may be empty).
func (w *writeBuf) filled() [][]byte {
	if len(w.chunks) == 0 {
		return nil
	}
	return w.chunks[:w.cur+1]
}

// writeTo hands the buffered bytes to f at off, chunk by chunk, and returns how many it wrote.
func (w *writeBuf) writeTo(f File, off int64) (int64, error) {
	var done int64
	for _, b := range w.filled() {
		if len(b) == 0 {
			continue
		}
		m, err := f.WriteAt(b, off+done)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// bytes returns a copy of the buffered bytes in one slice.
func (w *writeBuf) bytes() []byte {
	out := make([]byte, 0, w.n)
	for _, b := range w.filled() {
		out = append(out, b...)
	}
	return out
}

// reset empties the buffer and keeps its memory (a busy log is likely written again soon;
// release gives it back once the log is cold).
func (w *writeBuf) reset() {
	for i, b := range w.filled() {
		w.chunks[i] = b[:0]
	}
	w.cur, w.n = 0, 0
}

// release hands an empty buffer's memory back to the pool.
func (w *writeBuf) release() {
	if w.n != 0 {
		return
	}
	for _, b := range w.chunks {
		putBuf(b)
	}
	w.chunks, w.cur = nil, 0
}

// crcOfLast continues the CRC-32C c over the n buffered bytes at position pos.
func (w *writeBuf) crcOfLast(c uint32, pos, n int) uint32 {
	w.at(pos, n, func(b []byte) { c = crc32.Update(c, castagnoli, b) })
	return c
}

// overwrite replaces the buffered bytes at pos with p.
func (w *writeBuf) overwrite(pos int, p []byte) {
	w.at(pos, len(p), func(b []byte) { p = p[copy(b, p):] })
}

// at calls f with the pieces (in chunk order) of the n buffered bytes at position pos.
// The bytes are found from the end (callers look at what they just wrote).
func (w *writeBuf) at(pos, n int, f func([]byte)) {
	if n == 0 {
		return
	}
	i := w.cur
	start := w.n - len(w.chunks[i]) // position of chunk i's first byte
	for start > pos {
		i--
		start -= len(w.chunks[i])
	}
	pos -= start
	for ; n > 0; i++ {
		b := w.chunks[i]
		k := min(len(b)-pos, n)
		f(b[pos : pos+k])
		pos, n = 0, n-k
	}
}
