package wal

import (
	"math/bits"
	"sync"
)

// Write buffers of partition logs are recycled through size-classed pools (powers of two from
// 1 KiB to writeBufferBytes): a member's buffer is released by every checkpoint after its last
// append, and regrowing it from nothing each time cost an allocation per doubling and garbage
// to collect. (wal imports only the standard library, so this is not internal/bufpool.)
const (
	minBufShift = 10 // 1 KiB
	maxBufShift = 20 // writeBufferBytes
)

var bufPools [maxBufShift - minBufShift + 1]sync.Pool

func bufClass(n int) int {
	c := bits.Len(uint(n - 1))
	return max(c, minBufShift)
}

// getBuf returns an empty buffer with room for at least n bytes.
func getBuf(n int) []byte {
	c := bufClass(n)
	if c > maxBufShift {
		return make([]byte, 0, n)
	}
	if p, ok := bufPools[c-minBufShift].Get().(*[]byte); ok {
		return (*p)[:0]
	}
	return make([]byte, 0, 1<<c)
}

// putBuf recycles b (whose bytes nobody may use afterwards); buffers not from getBuf are left
// to the garbage collector.
func putBuf(b []byte) {
	c := cap(b)
	if c < 1<<minBufShift || c > 1<<maxBufShift || c&(c-1) != 0 {
		return
	}
	bufPools[bits.Len(uint(c))-1-minBufShift].Put(&b)
}

// releaseBuf hands an empty write buffer back to the pool (an idle log holds none). Called
// with l.mu held.
func (l *Log) releaseBuf() { l.buf.release() }
