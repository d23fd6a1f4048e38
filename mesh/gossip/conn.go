package gossip

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
)

// pconn is one connection to a peer: a writer (run) and a reader goroutine.
type pconn struct {
	g      *Gossip
	id     proto.Key
	c      Conn
	dialed bool

	sendq chan []byte // frames to write; closed by finish (actor only)

	stopOnce sync.Once
	stop     chan struct{} // closed when the reader ends or on abort
	done     chan struct{} // closed when both goroutines are done

	finished bool // actor only: sendq closed
}

// finish asks for a polite close: flush, FIN, wait for the peer, close.
// Actor only.
func (pc *pconn) finish() {
	if !pc.finished {
		pc.finished = true
		close(pc.sendq)
	}
}

// abort closes the connection at once (e.g. a peer too slow to drain its
// queue). The reader and writer then end and the peer is reported
// disconnected.
func (pc *pconn) abort(reason string) {
	_ = pc.c.Close(1, reason)
	pc.stopOnce.Do(func() { close(pc.stop) })
}

func (pc *pconn) run(first [][]byte) {
	g := pc.g
	defer g.wg.Done()
	defer g.connWG.Done()
	defer close(pc.done)
	var st Stream
	var err error
	if pc.dialed {
		st, err = pc.c.OpenStream(g.ctx)
	} else {
		st, err = pc.c.AcceptStream(g.ctx)
	}
	if err != nil {
		_ = pc.c.Close(0, "no stream")
		_ = g.post(g.ctx, func() { g.connEnded(pc, err) })
		return
	}
	readErr := make(chan error, 1)
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		err := pc.readLoop(st)
		pc.stopOnce.Do(func() { close(pc.stop) })
		readErr <- err
	}()

	werr := pc.writeLoop(st, first)
	var rerr error
	if werr == nil {
		// Polite close: FIN our half, give the peer a moment to finish its
		// half (or close), then close the connection.
		_ = st.Close()
		grace := g.clk.NewTimer(g.cfg.CloseGrace)
		select {
		case rerr = <-readErr:
			readErr <- rerr
		case <-grace.C():
		case <-g.ctx.Done():
		}
		grace.Stop()
	}
	_ = pc.c.Close(0, "close from disconnect")
	rerr = <-readErr
	if werr == nil || errors.Is(werr, errStopped) {
		werr = rerr
	}
	if errors.Is(werr, io.EOF) {
		werr = nil
	}
	_ = g.post(g.ctx, func() { g.connEnded(pc, werr) })
}

var errStopped = errors.New("reader stopped")

// tryNext takes the next queued frame without waiting: queued is false when none is queued,
// ok false when the queue is closed.
func (pc *pconn) tryNext() (f []byte, ok, queued bool) {
	select {
	case f, ok = <-pc.sendq:
		return f, ok, true
	default:
		return nil, true, false
	}
}

// writeLoop writes frames until finish (nil), the reader stops (errStopped),
// the node closes or a write fails.
func (pc *pconn) writeLoop(st Stream, first [][]byte) error {
	w := bufio.NewWriterSize(st, 16<<10)
	for _, f := range first {
		if _, err := w.Write(f); err != nil {
			return err
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	for {
		select {
		case f, ok := <-pc.sendq:
			// Write f and, batched with it, whatever else is queued; then flush once. A
			// closed queue (finish) ends the loop after the flush.
			for ok {
				if _, err := w.Write(f); err != nil {
					return err
				}
				var queued bool
				if f, ok, queued = pc.tryNext(); !queued {
					break
				}
			}
			if err := w.Flush(); err != nil || !ok {
				return err
			}
		case <-pc.stop:
			return errStopped
		case <-pc.g.ctx.Done():
			return pc.g.ctx.Err()
		}
	}
}

// readLoop reads frames and hands them to the actor. A frame that is too
// large or does not decode ends the connection, as in Rust.
func (pc *pconn) readLoop(st Stream) error {
	g := pc.g
	r := bufio.NewReaderSize(st, 16<<10)
	var buf []byte
	for {
		body, err := proto.ReadFrame(r, buf, g.cfg.Proto.MaxMessageSize)
		if err != nil {
			if err != io.EOF {
				_ = pc.c.Close(0, "bad frame")
			}
			return err
		}
		buf = body[:0]
		if ok, drops := g.lim.allow(pc.id, len(body)); !ok {
			if drops > 0 {
				g.log.Warn("gossip: dropping inbound frames over the per-peer or total rate limit", "dropped", drops, "peer", fmt.Sprintf("%x", pc.id[:5]))
			}
			continue
		}
		topic, m, err := proto.DecodeMessage(body)
		if err != nil {
			_ = pc.c.Close(0, "bad frame")
			return fmt.Errorf("decode: %w", err)
		}
		if err := g.post(g.ctx, func() { g.recv(pc, topic, m) }); err != nil {
			return err
		}
	}
}

// recv is a decoded frame on the actor.
func (g *Gossip) recv(pc *pconn, topic proto.TopicID, m proto.Msg) {
	g.handle(proto.RecvMessage[proto.Key]{From: pc.id, Topic: topic, Msg: m})
}
