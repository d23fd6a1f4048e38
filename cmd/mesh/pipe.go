package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/internal/acceptloop"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// The pipe commands speak dumbpipe's protocol (n0's dumbpipe tool): ALPN DUMBPIPEV0; the side
// that opens a bidirectional stream first writes the 5-byte handshake "hello" (a QUIC stream is
// not seen by the peer before data is sent on it), the side that accepts consumes it, and then
// bytes pass through unchanged both ways. A finished send side is passed on as end of input.
const (
	PipeALPN  = "DUMBPIPEV0"
	handshake = "hello"
)

// pipeCopy copies both ways between the stream and the local side (reads from in, writes to
// out) until both directions have ended; closeOut ends the local output (a TCP half-close or
// nothing for stdout).
//
// The accepting side (accepted) finishes its send side only once it has read the opener's
// whole input, so when the opener reads the end of the stream it knows the other side has all
// of its bytes too, and may close the connection without losing any in flight.
func pipeCopy(s *quic.Stream, in io.Reader, out io.Writer, closeOut func(), accepted bool) error {
	var wg sync.WaitGroup
	var upErr, downErr error
	downDone := make(chan struct{})
	wg.Go(func() {
		_, upErr = io.Copy(s, in)
		if upErr != nil {
			s.CancelWrite(1)
			return
		}
		if accepted {
			<-downDone
		}
		upErr = s.Close() // our input ended: finish the stream's send side
	})
	_, downErr = io.Copy(out, s)
	close(downDone)
	if closeOut != nil {
		closeOut()
	}
	if downErr != nil {
		s.CancelRead(1)
	}
	wg.Wait()
	return errors.Join(upErr, downErr)
}

// openPipe opens one pipe stream on c and sends the handshake.
func openPipe(ctx context.Context, c *endpoint.Conn) (*quic.Stream, error) {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := io.WriteString(s, handshake); err != nil {
		s.CancelRead(1)
		s.CancelWrite(1)
		return nil, err
	}
	return s, nil
}

// acceptPipe accepts one pipe stream on c and consumes its handshake.
func acceptPipe(ctx context.Context, c *endpoint.Conn) (*quic.Stream, error) {
	s, err := c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	var hs [len(handshake)]byte
	if _, err := io.ReadFull(s, hs[:]); err != nil || string(hs[:]) != handshake {
		s.CancelRead(1)
		s.CancelWrite(1)
		return nil, fmt.Errorf("pipe: bad handshake %q: %v", hs, err)
	}
	return s, nil
}

// pipeListen serves one pipe: the first connection's first stream is joined to stdin/stdout
// (dumbpipe listen).
func pipeListen(ctx context.Context, ep *endpoint.Endpoint, in io.Reader, out io.Writer, ready func()) error {
	conns := make(chan *endpoint.Conn, 1)
	ep.Handle(PipeALPN, func(hctx context.Context, c *endpoint.Conn) {
		select {
		case conns <- c:
			<-hctx.Done()
		default:
			c.CloseWithError(1, "this pipe is taken")
		}
	})
	ready()
	var c *endpoint.Conn
	select {
	case <-ctx.Done():
		return nil
	case c = <-conns:
	}
	s, err := acceptPipe(ctx, c)
	if err != nil {
		c.Close()
		return err
	}
	err = pipeCopy(s, in, out, nil, true)
	// The opener closes the connection once it has read our end of stream; closing it here
	// first could drop our last bytes in flight.
	select {
	case <-c.Context().Done():
	case <-ctx.Done():
	case <-time.After(10 * time.Second):
	}
	c.Close()
	return err
}

// pipeConnect joins stdin/stdout to a stream to the node at a (dumbpipe connect).
func pipeConnect(ctx context.Context, ep *endpoint.Endpoint, a endpoint.NodeAddr, in io.Reader, out io.Writer, connected func(*endpoint.Conn)) error {
	c, err := ep.Dial(ctx, a, PipeALPN)
	if err != nil {
		return err
	}
	defer c.Close()
	if connected != nil {
		connected(c)
	}
	s, err := openPipe(ctx, c)
	if err != nil {
		return err
	}
	return pipeCopy(s, in, out, nil, false)
}

// tcpListen forwards every pipe stream any node opens to a new TCP connection to target
// (dumbpipe listen-tcp --host).
func tcpListen(ctx context.Context, ep *endpoint.Endpoint, target string, ready func()) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	ep.Handle(PipeALPN, func(hctx context.Context, c *endpoint.Conn) {
		defer c.Close()
		var streams sync.WaitGroup
		defer streams.Wait()
		for {
			s, err := acceptPipe(hctx, c)
			if err != nil {
				if hctx.Err() != nil || c.Context().Err() != nil {
					return
				}
				continue
			}
			streams.Go(func() {
				var d net.Dialer
				tc, err := d.DialContext(hctx, "tcp", target)
				if err != nil {
					s.CancelRead(2)
					s.CancelWrite(2)
					return
				}
				defer tc.Close()
				_ = pipeCopy(s, tc, tc, func() { _ = tc.(*net.TCPConn).CloseWrite() }, true)
			})
		}
	})
	ready()
	<-ctx.Done()
	return nil
}

// tcpConnect listens on addr and forwards every TCP connection over its own pipe stream on one
// mesh connection to the node at a (dumbpipe connect-tcp --addr); the connection is dialed
// again when it was lost.
func tcpConnect(ctx context.Context, ep *endpoint.Endpoint, a endpoint.NodeAddr, ln net.Listener) error {
	var mu sync.Mutex
	var conn *endpoint.Conn
	dial := func() (*endpoint.Conn, error) {
		mu.Lock()
		defer mu.Unlock()
		if conn != nil && conn.Context().Err() == nil {
			return conn, nil
		}
		c, err := ep.Dial(ctx, a, PipeALPN)
		if err != nil {
			return nil, err
		}
		conn = c
		return c, nil
	}
	defer func() {
		mu.Lock()
		if conn != nil {
			conn.Close()
		}
		mu.Unlock()
	}()
	return acceptloop.Serve(ctx, ln, func(tc net.Conn) {
		c, err := dial()
		if err != nil {
			return
		}
		s, err := openPipe(ctx, c)
		if err != nil {
			return
		}
		_ = pipeCopy(s, tc, tc, func() { _ = tc.(*net.TCPConn).CloseWrite() }, false)
	})
}
