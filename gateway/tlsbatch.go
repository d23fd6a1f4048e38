package gateway

import (
	"crypto/tls"
	"net"
	"sync"
)

// recordBatcher sits between a server-side tls.Conn and its socket and turns the TLS records
// of one answer into few large writes. crypto/tls seals every record (at most 16 KiB of
// plaintext) into a buffer of its own and writes it to the socket at once, so a 2 MiB fetch
// answer cost ~140 write syscalls, and ~140 wake-ups and reads of the client, where the
// PLAINTEXT listener makes one writev of it (BenchmarkSecureListener's consume, strace -c:
// 13,454 writes and 12,806 reads against 92 writevs and 883 reads for the same 200,000
// records).
//
// Between begin and flush, writes are copied into a pooled buffer, which goes to the socket
// whenever it holds recordBatchBytes and at flush. Outside begin/flush a write goes straight
// to the socket (the handshake, alerts). crypto/tls serializes its writes (its output lock),
// but begin and flush run outside that lock, so a write of the reader goroutine (a TLS 1.3
// KeyUpdate answer) or of Close (the close_notify alert) may come in while a batch is open
// or being written: it joins the batch, after the records already in it, which is also its
// place in crypto/tls's order. A flush never holds the mutex while it writes, so such a write
// never waits for a stalled client: Close appends its alert, closes the socket, and the
// blocked flush fails.
type recordBatcher struct {
	net.Conn

	mu       sync.Mutex
	batching bool    // guarded by mu: between begin and flush
	flushing bool    // guarded by mu: a flush is writing; writes are appended to buf
	buf      *[]byte // guarded by mu: the batch (nil: none yet)
	err      error   // guarded by mu: the first failed socket write of a batch
}

// recordBatchBytes is the most a batch holds before it goes to the socket: 16 full TLS
// records, about as much as one writev of the PLAINTEXT listener hands the kernel at a time
// on loopback (net.core.wmem_default), and few enough to pool.
const recordBatchBytes = 256 << 10

var recordBatchPool = sync.Pool{New: func() any { b := make([]byte, 0, recordBatchBytes+maxTLSRecord); return &b }}

// maxTLSPlaintext is the most plaintext one TLS record carries (RFC 8446 5.1); maxTLSRecord
// is the largest record crypto/tls writes: that plus the header, the content type, padding
// and the AEAD tag (RFC 8446 5.2 allows up to 256 bytes of expansion).
const (
	maxTLSPlaintext = 16 << 10
	maxTLSRecord    = maxTLSPlaintext + 5 + 256
)

// newTLSServerConn wraps raw in a recordBatcher and that in a server tls.Conn.
func newTLSServerConn(raw net.Conn, cfg *tls.Config) *tls.Conn {
	return tls.Server(&recordBatcher{Conn: raw}, cfg)
}

// tlsBatcher returns the recordBatcher under c (nil if c is not a tls.Conn made by
// newTLSServerConn).
func tlsBatcher(c net.Conn) *recordBatcher {
	if tc, ok := c.(*tls.Conn); ok {
		rb, _ := tc.NetConn().(*recordBatcher)
		return rb
	}
	return nil
}

// writeAnswer writes one answer, the slices bufs in order, to c (the tls.Conn over b). An
// answer of one slice that fits one TLS record is written as it is (one record, one
// syscall); anything else is sealed slice by slice, each straight from where it lies, into
// one batch.
func (b *recordBatcher) writeAnswer(c net.Conn, bufs ...[]byte) error {
	if len(bufs) == 1 && len(bufs[0]) <= maxTLSPlaintext {
		_, err := c.Write(bufs[0])
		return err
	}
	b.begin()
	var err error
	for _, p := range bufs {
		if _, err = c.Write(p); err != nil {
			break
		}
	}
	if ferr := b.flush(); err == nil {
		err = ferr
	}
	return err
}

// begin opens a batch: writes are collected until flush.
func (b *recordBatcher) begin() {
	b.mu.Lock()
	b.batching = true
	b.mu.Unlock()
}

// Write is the TLS connection's write to its socket: straight through, or into the batch.
func (b *recordBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	if !b.batching && !b.flushing {
		b.mu.Unlock()
		return b.Conn.Write(p)
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	if b.buf == nil {
		b.buf = recordBatchPool.Get().(*[]byte)
	}
	*b.buf = append(*b.buf, p...)
	if len(*b.buf) < recordBatchBytes || b.flushing {
		b.mu.Unlock()
		return len(p), nil
	}
	// Full: write it now. This runs inside a tls.Conn Write (crypto/tls holds its output
	// lock), so nothing else writes meanwhile; Close closes the socket without waiting for it.
	err := b.drainLocked(false)
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes what the batch holds and closes it. The error is that of the first failed
// socket write since begin (the tls.Conn has already reported it too when it saw it).
func (b *recordBatcher) flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	err := b.drainLocked(true)
	b.batching = false
	b.err = nil
	return err
}

// drainLocked writes the batch to the socket, with b.mu released during each write; writes
// that arrive meanwhile are appended and written next. With release, the batch buffer goes
// back to the pool once empty. b.mu is held on entry and on return.
func (b *recordBatcher) drainLocked(release bool) error {
	for b.err == nil && b.buf != nil && len(*b.buf) > 0 {
		data := b.buf
		b.buf = nil
		b.flushing = true
		b.mu.Unlock()
		_, err := b.Conn.Write(*data)
		*data = (*data)[:0]
		b.mu.Lock()
		b.flushing = false
		if err != nil {
			b.err = err
		}
		if b.buf == nil {
			b.buf = data
		} else {
			recordBatchPool.Put(data)
		}
	}
	if release && b.buf != nil {
		*b.buf = (*b.buf)[:0]
		recordBatchPool.Put(b.buf)
		b.buf = nil
	}
	return b.err
}
