package brokermesh

import "github.com/meshkafka/meshkafka/internal/bufpool"

// framePool holds payload buffers for Fetch answers and produce requests, reused from call to
// call: classes of a power of two from 64 KiB to 16 MiB; a larger payload is allocated.
var framePool = bufpool.New(16, 9, 0)

// pooledPayload is the payload buffer one call read its frame into (brokerop.ReadFrameInto).
type pooledPayload struct{ bp *[]byte }

func (p *pooledPayload) alloc(n int) []byte {
	if p.bp = framePool.Get(n); p.bp != nil {
		return *p.bp
	}
	return make([]byte, n)
}

// release gives the buffer back; the payload must not be used afterwards.
func (p *pooledPayload) release() {
	if p.bp != nil {
		framePool.Put(p.bp)
		p.bp = nil
	}
}
