package interop

// The Go half of the stream protocol the driver speaks (see interop/irohnode doc: echo, sink,
// source on bi and uni streams), over any connection with iroh-style stream methods, so that
// the same checks run against mesh/endpoint connections and bare quic-go ones.

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// streamConn is what the Go side needs from a connection.
type streamConn interface {
	OpenStream(ctx context.Context) (*quic.Stream, error)
	AcceptStream(ctx context.Context) (*quic.Stream, error)
	OpenUniStream(ctx context.Context) (*quic.SendStream, error)
	AcceptUniStream(ctx context.Context) (*quic.ReceiveStream, error)
}

// rawQUIC adapts a bare *quic.Conn to streamConn.
type rawQUIC struct{ *quic.Conn }

func (r rawQUIC) OpenStream(ctx context.Context) (*quic.Stream, error) {
	return r.Conn.OpenStreamSync(ctx)
}

func (r rawQUIC) OpenUniStream(ctx context.Context) (*quic.SendStream, error) {
	return r.Conn.OpenUniStreamSync(ctx)
}

// streamReport is what the Go side saw on one served stream.
type streamReport struct {
	Kind       string
	RecvBytes  int64
	RecvSHA256 string
	SentBytes  int64
	SentSHA256 string
	Err        error
}

// hashCounter hashes and counts what passes through it.
type hashCounter struct {
	h hash.Hash
	n int64
}

func newHashCounter() *hashCounter { return &hashCounter{h: sha256.New()} }

func (c *hashCounter) Write(p []byte) (int, error) {
	c.h.Write(p)
	c.n += int64(len(p))
	return len(p), nil
}

func (c *hashCounter) sum() string { return hex.EncodeToString(c.h.Sum(nil)) }

// goServe serves every stream the peer opens on c in mode until the connection ends, calling
// report for each finished stream. It returns when c is closed, after every stream handler
// has returned.
func goServe(ctx context.Context, c streamConn, mode irohnode.Mode, report func(streamReport)) {
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() {
		for {
			s, err := c.AcceptUniStream(ctx)
			if err != nil {
				return
			}
			wg.Go(func() { report(serveUni(ctx, c, s, mode)) })
		}
	})
	for {
		s, err := c.AcceptStream(ctx)
		if err != nil {
			return
		}
		wg.Go(func() { report(serveBi(s, mode)) })
	}
}

// reportTo returns a report function that queues reports on ch without ever blocking: a
// full channel is a test error, not a hang.
func reportTo(t testing.TB, ch chan<- streamReport) func(streamReport) {
	return func(r streamReport) {
		select {
		case ch <- r:
		default:
			t.Errorf("stream report dropped (channel full): %+v", r)
		}
	}
}

// sendAll copies src to w, counting and hashing what it sends into out, and closes w.
func sendAll(w io.WriteCloser, out io.Writer, src io.Reader) error {
	if _, err := io.Copy(io.MultiWriter(w, out), src); err != nil {
		return err
	}
	return w.Close()
}

func serveBi(s *quic.Stream, mode irohnode.Mode) streamReport {
	r := streamReport{Kind: "bi"}
	in, out := newHashCounter(), newHashCounter()
	var err error
	switch mode {
	case irohnode.Echo:
		err = sendAll(s, out, io.TeeReader(s, in))
	case irohnode.Sink:
		if _, err = io.Copy(in, s); err == nil {
			_, err = fmt.Fprintf(io.MultiWriter(s, out), "%d %s\n", in.n, in.sum())
			if err == nil {
				err = s.Close()
			}
		}
	case irohnode.Source:
		var n uint64
		if n, err = readRequest(io.TeeReader(s, in)); err == nil {
			err = sendAll(s, out, irohnode.Pattern(int64(n)))
		}
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		s.CancelRead(1)
		s.CancelWrite(1)
	}
	r.RecvBytes, r.RecvSHA256, r.SentBytes, r.SentSHA256, r.Err = in.n, in.sum(), out.n, out.sum(), err
	return r
}

func serveUni(ctx context.Context, c streamConn, s *quic.ReceiveStream, mode irohnode.Mode) streamReport {
	r := streamReport{Kind: "uni"}
	in, out := newHashCounter(), newHashCounter()
	var err error
	switch mode {
	case irohnode.Echo:
		var back *quic.SendStream
		if back, err = c.OpenUniStream(ctx); err == nil {
			err = sendAll(back, out, io.TeeReader(s, in))
		}
	case irohnode.Sink:
		_, err = io.Copy(in, s)
	case irohnode.Source:
		var n uint64
		if n, err = readRequest(io.TeeReader(s, in)); err == nil {
			var back *quic.SendStream
			if back, err = c.OpenUniStream(ctx); err == nil {
				err = sendAll(back, out, irohnode.Pattern(int64(n)))
			}
		}
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		s.CancelRead(1)
	}
	r.RecvBytes, r.RecvSHA256, r.SentBytes, r.SentSHA256, r.Err = in.n, in.sum(), out.n, out.sum(), err
	return r
}

func readRequest(r io.Reader) (uint64, error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, fmt.Errorf("read request: %w", err)
	}
	return binary.BigEndian.Uint64(hdr[:]), nil
}

// goTransferResult is what goTransfer moved on each stream.
type goTransferResult struct {
	Elapsed time.Duration
	Streams []irohnode.StreamResult
}

// goTransfer opens t.Streams concurrent bi streams on c (uni is not supported here: a uni
// stream's delivery can only be confirmed by the peer, see the tests), writes t.Bytes of
// Pattern on each (or an 8-byte request for t.Bytes), closes its send side and reads the
// reply to the end at the same time.
func goTransfer(ctx context.Context, c streamConn, t irohnode.Transfer) (goTransferResult, error) {
	if t.Streams == 0 {
		t.Streams = 1
	}
	res := goTransferResult{Streams: make([]irohnode.StreamResult, t.Streams)}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, t.Streams)
	for i := range t.Streams {
		wg.Go(func() {
			sr, err := transferBi(ctx, c, t)
			res.Streams[i], errs[i] = sr, err
		})
	}
	wg.Wait()
	res.Elapsed = time.Since(start)
	return res, errors.Join(errs...)
}

func transferBi(ctx context.Context, c streamConn, t irohnode.Transfer) (irohnode.StreamResult, error) {
	var sr irohnode.StreamResult
	s, err := c.OpenStream(ctx)
	if err != nil {
		return sr, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetDeadline(dl)
	}
	start := time.Now()
	out, in := newHashCounter(), newHashCounter()
	writeErr := make(chan error, 1)
	go func() {
		var err error
		if t.Request {
			var hdr [8]byte
			binary.BigEndian.PutUint64(hdr[:], uint64(t.Bytes))
			_, err = io.MultiWriter(s, out).Write(hdr[:])
		} else {
			_, err = io.Copy(io.MultiWriter(s, out), irohnode.Pattern(t.Bytes))
		}
		if err == nil {
			err = s.Close()
		}
		writeErr <- err
	}()
	_, rerr := io.Copy(in, s)
	werr := <-writeErr
	sr = irohnode.StreamResult{SentBytes: out.n, SentSHA256: out.sum(), RecvBytes: in.n, RecvSHA256: in.sum(),
		MS: float64(time.Since(start)) / float64(time.Millisecond)}
	if werr != nil || rerr != nil {
		s.CancelRead(1)
		s.CancelWrite(1)
	}
	return sr, errors.Join(werr, rerr)
}

// sendUni opens a uni stream and writes n pattern bytes to it, then closes it.
func sendUni(ctx context.Context, c streamConn, n int64) error {
	s, err := c.OpenUniStream(ctx)
	if err != nil {
		return err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = s.SetWriteDeadline(dl)
	}
	if _, err := io.Copy(s, irohnode.Pattern(n)); err != nil {
		s.CancelWrite(1)
		return err
	}
	return s.Close()
}

// sinkReplySHA256 is the sha256 of the reply a sink sends after reading n bytes with hash sha.
func sinkReplySHA256(n int64, sha string) string {
	sum := sha256.Sum256(fmt.Appendf(nil, "%d %s\n", n, sha))
	return hex.EncodeToString(sum[:])
}

// checkEchoes fails t for every stream whose echo does not hash to want.
func checkEchoes(t *testing.T, streams []irohnode.StreamResult, want string) {
	t.Helper()
	for i, s := range streams {
		if s.RecvSHA256 != want {
			t.Errorf("stream %d: echo %d bytes %s, want %s", i, s.RecvBytes, s.RecvSHA256, want)
		}
	}
}

// waitUni waits for the next stream node reports on conn ("": any) and fails t unless it
// was a uni stream that received n bytes hashing to want.
func waitUni(ctx context.Context, t *testing.T, node *irohnode.Node, conn string, n int64, want string) {
	t.Helper()
	e, err := node.WaitStream(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind != "uni" || e.RecvBytes != n || e.RecvSHA256 != want {
		t.Fatalf("Rust node %s saw %+v, want uni %d bytes %s", node.Name, e, n, want)
	}
}
