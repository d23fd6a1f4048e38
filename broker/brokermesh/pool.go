package brokermesh

import (
	"context"
	"math/bits"
	"sync"

	"github.com/meshkafka/meshkafka/broker/brokerop"
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

// FetchPooled is Fetch whose answer's record bytes live in a payload buffer reused once
// release is called (gateway.PooledFetcher): the caller calls release exactly once, after it
// no longer uses resp.
func (c *Caller) FetchPooled(ctx context.Context, req *brokerop.FetchReq) (*brokerop.FetchResp, func(), error) {
	var held *[]byte
	alloc := func(n int) []byte {
		if held = getFrameBuf(n); held != nil {
			return *held
		}
		return make([]byte, n)
	}
	release := func() {
		if held != nil {
			putFrameBuf(held)
			held = nil
		}
	}
	resp := new(brokerop.FetchResp)
	if err := c.sendInto(ctx, brokerop.OpFetch, req, alloc)(resp); err != nil {
		release()
		return nil, nil, err
	}
	return resp, release, nil
}
