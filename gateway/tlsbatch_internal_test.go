package gateway

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"runtime"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/gatewaytest"
)

// fakeSocket records the writes a recordBatcher makes. With gate set, each write waits for
// a value on gate (started is told first); Close fails a waiting write.
type fakeSocket struct {
	net.Conn // nil: only Write and Close are used
	gate     chan struct{}
	started  chan struct{}
	closed   chan struct{}
	once     sync.Once

	mu     sync.Mutex
	writes [][]byte // guarded by mu
}

func newFakeSocket(gated bool) *fakeSocket {
	f := &fakeSocket{closed: make(chan struct{})}
	if gated {
		f.gate, f.started = make(chan struct{}), make(chan struct{}, 16)
	}
	return f
}

func (f *fakeSocket) Write(p []byte) (int, error) {
	if f.gate != nil {
		f.started <- struct{}{}
		select {
		case <-f.gate:
		case <-f.closed:
			return 0, net.ErrClosed
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes = append(f.writes, bytes.Clone(p))
	return len(p), nil
}

func (f *fakeSocket) Close() error {
	f.once.Do(func() { close(f.closed) })
	return nil
}

func (f *fakeSocket) got() (n int, all []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.writes), bytes.Join(f.writes, nil)
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// Outside a batch every write goes straight to the socket; inside one, writes are collected
// and leave in writes of recordBatchBytes or more (and the rest at flush), in order.
func TestRecordBatcherBatchesInOrder(t *testing.T) {
	sock := newFakeSocket(false)
	rb := &recordBatcher{Conn: sock}
	direct := randomBytes(100, 1)
	if n, err := rb.Write(direct); n != len(direct) || err != nil {
		t.Fatalf("direct write: %d, %v", n, err)
	}
	if n, _ := sock.got(); n != 1 {
		t.Fatalf("a write outside a batch made %d socket writes, want 1", n)
	}
	rb.begin()
	const record = 16<<10 + 22
	var want []byte
	want = append(want, direct...)
	for i := range 40 { // 40 records: 660 KiB, two full batches and a rest
		rec := randomBytes(record, byte(i+2))
		want = append(want, rec...)
		if n, err := rb.Write(rec); n != len(rec) || err != nil {
			t.Fatalf("record %d: %d, %v", i, n, err)
		}
	}
	if n, _ := sock.got(); n != 3 {
		t.Fatalf("before flush: %d socket writes, want 3 (the direct one and two full batches)", n)
	}
	if err := rb.flush(); err != nil {
		t.Fatal(err)
	}
	n, got := sock.got()
	if n != 4 || !bytes.Equal(got, want) {
		t.Fatalf("after flush: %d socket writes (want 4), bytes equal: %v", n, bytes.Equal(got, want))
	}
	if rb.buf != nil {
		t.Fatal("flush kept the batch buffer")
	}
	if _, err := rb.Write(direct); err != nil {
		t.Fatal(err)
	}
	if n, _ := sock.got(); n != 5 {
		t.Fatalf("after flush a write is direct again: %d socket writes, want 5", n)
	}
}

// A write that arrives while a flush is writing (the reader's KeyUpdate answer, Close's
// alert) does not wait for it: it joins the batch and leaves after it. Closing the socket
// fails the blocked flush.
func TestRecordBatcherWriteDuringFlush(t *testing.T) {
	defer goleak.VerifyNone(t)
	sock := newFakeSocket(true)
	rb := &recordBatcher{Conn: sock}
	first, second, third := randomBytes(1000, 1), randomBytes(200, 2), randomBytes(300, 3)
	rb.begin()
	rb.Write(first)
	flushed := make(chan error, 1)
	go func() { flushed <- rb.flush() }()
	<-sock.started // the flush is in the socket write of first
	if n, err := rb.Write(second); n != len(second) || err != nil {
		t.Fatalf("write during flush: %d, %v", n, err)
	}
	sock.gate <- struct{}{} // first written
	<-sock.started          // the flush goes on with second
	sock.gate <- struct{}{}
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
	if n, got := sock.got(); n != 2 || !bytes.Equal(got, append(bytes.Clone(first), second...)) {
		t.Fatalf("%d socket writes, want first then second", n)
	}

	// A stalled client: the flush blocks; a write meanwhile returns; Close ends the flush.
	rb.begin()
	rb.Write(third)
	go func() { flushed <- rb.flush() }()
	<-sock.started
	if _, err := rb.Write(second); err != nil {
		t.Fatal(err)
	}
	sock.Close()
	if err := <-flushed; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("flush on a closed socket: %v, want net.ErrClosed", err)
	}
}

// countingConn counts the writes to a real socket.
type countingConn struct {
	net.Conn
	mu     sync.Mutex
	writes int // guarded by mu
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Conn.Write(p)
}

func (c *countingConn) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// Over a real TLS connection an answer that fits one record is one socket write, a 1 MiB
// answer written as slices (as the fetch path does) is 64+ records but a handful of socket
// writes, and the client reads exactly the bytes.
func TestTLSAnswerIsBatched(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	certs := gatewaytest.NewCerts(t, dir, "client")
	scfg, _, err := NewTLSConfig(TLSOptions{CertFile: certs.Cert, KeyFile: certs.Key})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	small, answer := randomBytes(maxTLSPlaintext, 8), randomBytes(1<<20, 9)
	slices := [][]byte{answer[:60], answer[60 : 300<<10], answer[300<<10 : 300<<10+40], answer[300<<10+40:]}
	type result struct {
		writes int
		err    error
	}
	served := make(chan result, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			served <- result{err: err}
			return
		}
		cc := &countingConn{Conn: raw}
		tc := newTLSServerConn(cc, scfg)
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			served <- result{err: err}
			return
		}
		rb := tlsBatcher(tc)
		if rb == nil {
			served <- result{err: errors.New("no recordBatcher under the TLS conn")}
			return
		}
		before := cc.count()
		if err := rb.writeAnswer(tc, small); err != nil || cc.count() != before+1 {
			served <- result{err: fmt.Errorf("small answer: %d socket writes, %v; want 1", cc.count()-before, err)}
			return
		}
		before = cc.count()
		err = rb.writeAnswer(tc, slices...)
		served <- result{writes: cc.count() - before, err: err}
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), certs.ClientTLS())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make([]byte, len(small)+len(answer))
	if _, err := io.ReadFull(c, got); err != nil {
		t.Fatal(err)
	}
	r := <-served
	if r.err != nil {
		t.Fatal(r.err)
	}
	if !bytes.Equal(got, append(bytes.Clone(small), answer...)) {
		t.Fatal("the client read other bytes than were written")
	}
	// 1 MiB is at least 64 records; unbatched, each would be a socket write.
	if max := (1<<20)/recordBatchBytes + 2; r.writes > max {
		t.Fatalf("1 MiB answer: %d socket writes, want at most %d", r.writes, max)
	}
}

// BenchmarkAnswerRead: one 3 MiB answer (a kgo fetch of 3 partitions at its 1 MiB partition
// limit) from the gateway's writer to a reader that reads as kgo does (bufio, the 4-byte
// size, a new buffer, then io.ReadFull of the body), over TLS (impl=ours: writeAnswer, sealed
// records in batches, the client's crypto/tls opening them) and over plain TCP
// (impl=plaintext: one writev). ns/op is request →
// answer read, the transfer part of a consume's fetch cycle; client-cpu-ns/op is the CPU of
// the reading goroutine alone (Linux), which a loaded machine disturbs less. kgo sends its
// next fetch only after the answer is read and decoded, so this transfer is on every cycle's
// critical path, and over TLS the reader is its slow side (README, "What TLS and SASL cost").
func BenchmarkAnswerRead(b *testing.B) {
	dir := b.TempDir()
	certs := gatewaytest.NewCerts(b, dir, "client")
	scfg, _, err := NewTLSConfig(TLSOptions{CertFile: certs.Cert, KeyFile: certs.Key})
	if err != nil {
		b.Fatal(err)
	}
	const size = 3 << 20
	body := randomBytes(size, 5)
	for _, secure := range []bool{true, false} {
		name := "impl=plaintext"
		if secure {
			name = "impl=ours" // as BenchmarkSecureListener: ours is the TLS listener's writer
		}
		b.Run(name, func(b *testing.B) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer ln.Close()
			served := make(chan error, 1)
			go func() {
				raw, err := ln.Accept()
				if err != nil {
					served <- err
					return
				}
				var c net.Conn = raw
				var rb *recordBatcher
				if secure {
					tc := newTLSServerConn(raw, scfg)
					c, rb = tc, tlsBatcher(tc)
				}
				defer c.Close()
				hdr := binary.BigEndian.AppendUint32(nil, size)
				req := make([]byte, 1)
				for {
					if _, err := io.ReadFull(c, req); err != nil {
						served <- nil // the client closed
						return
					}
					if rb != nil {
						err = rb.writeAnswer(c, hdr, body)
					} else {
						bufs := net.Buffers{hdr, body}
						_, err = bufs.WriteTo(c)
					}
					if err != nil {
						served <- err
						return
					}
				}
			}()
			c, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			if secure {
				c = tls.Client(c, certs.ClientTLS())
			}
			br := bufio.NewReader(c)
			var sizeBuf [4]byte
			read := func() {
				if _, err := c.Write([]byte{1}); err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadFull(br, sizeBuf[:]); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, binary.BigEndian.Uint32(sizeBuf[:]))
				if _, err := io.ReadFull(br, buf); err != nil {
					b.Fatal(err)
				}
			}
			read() // the handshake and a warm connection
			runtime.LockOSThread()
			b.SetBytes(size)
			b.ResetTimer()
			cpu0 := threadCPU()
			for range b.N {
				read()
			}
			cpu := threadCPU() - cpu0
			b.StopTimer()
			runtime.UnlockOSThread()
			b.ReportMetric(float64(cpu)/float64(b.N), "client-cpu-ns/op")
			c.Close()
			if err := <-served; err != nil {
				b.Fatal(err)
			}
		})
	}
}
