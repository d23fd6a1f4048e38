package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Echo modes (mesh echo -uni / -datagram; bidi is the default).
const (
	modeBidi     = "bidi"
	modeUni      = "uni"
	modeDatagram = "datagram"
)

// datagramAttempts is how many times echo sends a datagram that is not echoed back (datagrams
// are unreliable); datagramWait is how long each attempt waits for the echo.
const (
	datagramAttempts = 5
	datagramWait     = 2 * time.Second
)

// pathString is a one-line description of how c reaches its peer: "direct 1.2.3.4:5 rtt 1.2ms"
// or "relay http://relay rtt 20ms".
func pathString(p endpoint.ConnPath) string {
	var s string
	switch p.Kind {
	case endpoint.PathDirect:
		s = "direct " + p.Remote.String()
	case endpoint.PathRelay:
		s = "relay " + p.RelayURL
	default:
		s = p.Kind
	}
	return fmt.Sprintf("%s rtt %v", s, p.RTT.Round(time.Microsecond))
}

// printPath writes "path: <pathString>" for c.
func printPath(w io.Writer, ep *endpoint.Endpoint, c *endpoint.Conn) {
	fmt.Fprintf(w, "path: %s\n", pathString(ep.PathOf(c)))
}

// echoHandler serves the echo protocol on one connection: every bidi stream is echoed on
// itself until the peer finishes sending; every uni stream is read to its end and sent back
// on a new uni stream; every datagram is sent back as a datagram.
func echoHandler(ctx context.Context, c *endpoint.Conn) {
	defer c.Close()
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	wg.Go(func() { echoUni(ctx, c) })
	wg.Go(func() {
		q := c.QUIC()
		for {
			d, err := q.ReceiveDatagram(ctx)
			if err != nil {
				return
			}
			_ = q.SendDatagram(d)
		}
	})
	c.ServeStreams(ctx, func(s *quic.Stream) {
		if _, err := io.Copy(s, s); err != nil {
			s.CancelRead(1)
			s.CancelWrite(1)
			return
		}
		s.Close()
	})
}

// echoUni answers each incoming uni stream with a uni stream carrying the same bytes.
func echoUni(ctx context.Context, c *endpoint.Conn) {
	c.ServeUniStreams(ctx, func(r *quic.ReceiveStream) {
		w, err := c.OpenUniStream(ctx)
		if err != nil {
			r.CancelRead(1)
			return
		}
		if _, err := io.Copy(w, r); err != nil {
			r.CancelRead(1)
			w.CancelWrite(1)
			return
		}
		w.Close()
	})
}

// echoOnce dials a, prints the path, echoes msg once in the given mode and checks it. A text
// message (-msg) is printed back; a binary one (-file) is summarised by size and SHA-256.
func echoOnce(ctx context.Context, ep *endpoint.Endpoint, a endpoint.NodeAddr, alpn, mode string, msg []byte, binary bool, out io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	start := time.Now()
	c, err := ep.Dial(ctx, a, alpn)
	if err != nil {
		return err
	}
	defer c.Close()
	connected := time.Since(start)
	t0 := time.Now()
	var got []byte
	switch mode {
	case modeUni:
		got, err = echoUniOnce(ctx, c, msg)
	case modeDatagram:
		got, err = echoDatagram(ctx, c, msg)
	default:
		got, err = echoBidi(ctx, c, msg)
	}
	if err != nil {
		return err
	}
	took := time.Since(t0)
	if !bytes.Equal(got, msg) {
		if binary {
			return fmt.Errorf("echo mismatch (%s): sent %d bytes, got %d", mode, len(msg), len(got))
		}
		return fmt.Errorf("echo mismatch (%s): sent %q, got %q", mode, msg, got)
	}
	printPath(out, ep, c)
	what := string(got)
	if binary {
		what = fmt.Sprintf("%d bytes intact (sha256 %x)", len(got), sha256.Sum256(got))
	}
	fmt.Fprintf(out, "peer %s %s echo (connect %v, echo %v): %s\n",
		c.RemoteID(), mode, connected.Round(time.Microsecond), took.Round(time.Microsecond), what)
	return nil
}

func echoBidi(ctx context.Context, c *endpoint.Conn, msg []byte) ([]byte, error) {
	s, err := c.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	werr := make(chan error, 1)
	go func() {
		_, err := s.Write(msg)
		if err == nil {
			err = s.Close()
		}
		werr <- err
	}()
	got, err := io.ReadAll(s)
	if err := <-werr; err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	if err != nil {
		return nil, fmt.Errorf("read echo: %w", err)
	}
	return got, nil
}

func echoUniOnce(ctx context.Context, c *endpoint.Conn, msg []byte) ([]byte, error) {
	w, err := c.OpenUniStream(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(msg); err != nil {
		return nil, fmt.Errorf("write: %w", err)
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	r, err := c.AcceptUniStream(ctx)
	if err != nil {
		return nil, fmt.Errorf("accept the echo stream: %w", err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read echo: %w", err)
	}
	return got, nil
}

// echoDatagram sends msg as one QUIC datagram and waits for it to come back, sending again
// (datagrams may be lost) up to datagramAttempts times.
func echoDatagram(ctx context.Context, c *endpoint.Conn, msg []byte) ([]byte, error) {
	q := c.QUIC()
	st := q.ConnectionState().SupportsDatagrams
	if !st.Local || !st.Remote {
		return nil, fmt.Errorf("datagrams not supported (local %v, peer %v)", st.Local, st.Remote)
	}
	for range datagramAttempts {
		if err := q.SendDatagram(msg); err != nil {
			return nil, fmt.Errorf("send datagram of %d bytes: %w", len(msg), err)
		}
		wctx, cancel := context.WithTimeout(ctx, datagramWait)
		got, err := q.ReceiveDatagram(wctx)
		cancel()
		if err == nil {
			return got, nil
		}
		if ctx.Err() != nil || c.Context().Err() != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no datagram echoed after %d attempts", datagramAttempts)
}

// pathTracker notices when the path kind changes between observations.
type pathTracker struct{ last endpoint.ConnPath }

// observe records p and returns a line announcing a switch ("" if the kind is unchanged or
// this is the first observation).
func (t *pathTracker) observe(p endpoint.ConnPath) string {
	prev := t.last
	t.last = p
	if prev.Kind == "" || prev.Kind == p.Kind {
		return ""
	}
	return fmt.Sprintf("path switched: %s -> %s", prev.Kind, pathString(p))
}

// watchPath prints, every interval until ctx ends, how the endpoint reaches peer when that
// changes: "kafka-proxy path: <path>" at the first connection, then "path switched: relay ->
// direct …" (operators and the NAT test see the hole punch and the fall back to the relay).
func watchPath(ctx context.Context, ep *endpoint.Endpoint, peer key.PublicKey, interval time.Duration, out io.Writer) {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var tr pathTracker
	for {
		for _, p := range ep.Paths() {
			if p.Peer != peer {
				continue
			}
			first := tr.last.Kind == ""
			if sw := tr.observe(p); sw != "" {
				fmt.Fprintln(out, sw)
			} else if first {
				fmt.Fprintf(out, "kafka-proxy path: %s\n", pathString(p))
			}
			break
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ping dials a on the echo ALPN and does count rounds (0: until ctx ends), one every interval:
// each echoes an 8-byte sequence number on a new stream and prints the round's time and the
// current path, announcing a switch (relay to direct) when it happens. untilDirect stops at
// the first round on a direct path.
func ping(ctx context.Context, ep *endpoint.Endpoint, a endpoint.NodeAddr, alpn string, count int, interval time.Duration, untilDirect bool, out io.Writer) error {
	dctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	c, err := ep.Dial(dctx, a, alpn)
	cancel()
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Fprintf(out, "PING %s\n", c.RemoteID())
	var tr pathTracker
	tick := time.NewTicker(interval)
	defer tick.Stop()
	var buf [8]byte
	for seq := 1; count == 0 || seq <= count; seq++ {
		if seq > 1 {
			select {
			case <-ctx.Done():
				return nil
			case <-tick.C:
			}
		}
		binary.BigEndian.PutUint64(buf[:], uint64(seq))
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		t0 := time.Now()
		got, err := echoBidi(rctx, c, buf[:])
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("round %d: %w", seq, err)
		}
		if !bytes.Equal(got, buf[:]) {
			return fmt.Errorf("round %d: echo mismatch", seq)
		}
		took := time.Since(t0)
		p := ep.PathOf(c)
		if sw := tr.observe(p); sw != "" {
			fmt.Fprintln(out, sw)
		}
		fmt.Fprintf(out, "seq=%d time=%v path: %s\n", seq, took.Round(time.Microsecond), pathString(p))
		if untilDirect && p.Kind == endpoint.PathDirect {
			return nil
		}
	}
	if untilDirect {
		return errors.New("no direct path within the rounds asked for")
	}
	return nil
}
