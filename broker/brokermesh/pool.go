package brokermesh

import (
	"math/bits"
	"sync"
)

// Payload buffers for Fetch answers, reused from answer to answer: classes of a power of two
// from 64 KiB to 16 MiB. A smaller payload is allocated (cheap), a larger one too (rare).
const (
	poolMinShift = 16
	poolClasses  = 9
)

var framePools [poolClasses]sync.Pool

// getFrameBuf returns a pooled buffer of at least n bytes, or nil when n is outside the classes.
func getFrameBuf(n int) *[]byte {
	if n < 1<<poolMinShift || n > 1<<(poolMinShift+poolClasses-1) {
		return nil
	}
	c := bits.Len(uint(n-1)) - poolMinShift
	if bp, _ := framePools[c].Get().(*[]byte); bp != nil {
		return bp
	}
	b := make([]byte, 1<<(c+poolMinShift))
	return &b
}

func putFrameBuf(bp *[]byte) {
	framePools[bits.Len(uint(cap(*bp)-1))-poolMinShift].Put(bp)
}
