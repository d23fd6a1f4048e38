package meshlink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// errTransportClosed stops delivering a batch when the transport closes.
var errTransportClosed = errors.New("meshlink: transport closed")

// errSpoofed wraps the reason a message was refused for its From.
var errSpoofed = errors.New("spoofed sender")

// serveConn is the ALPN handler: it serves one inbound connection, one goroutine per uni
// stream the peer opens, until the connection ends or the transport closes.
func (t *Transport[T]) serveConn(ctx context.Context, c *endpoint.Conn) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		_ = c.CloseWithError(uint64(ErrCodeClosing), t.cfg.Name+" transport closed")
		return
	}
	t.inbound[c] = struct{}{}
	t.wg.Add(1)
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		delete(t.inbound, c)
		t.mu.Unlock()
		t.wg.Done()
	}()
	var streams sync.WaitGroup
	defer streams.Wait()
	defer c.Close()

	node := c.RemoteID()
	if !t.cfg.Trust(node) {
		t.refuse(c, node, ErrCodeUntrusted, "node "+node.String()+" is not trusted by this "+t.cfg.Name+" node")
		return
	}
	for {
		st, err := c.AcceptUniStream(ctx)
		if err != nil {
			return
		}
		streams.Go(func() { t.readStream(c, node, st) })
	}
}

// readStream reads frames from one stream and delivers their items in order. A frame that
// is too large or malformed, an item whose From the sender may not use, or a sender no
// longer trusted closes the connection.
func (t *Transport[T]) readStream(c *endpoint.Conn, node key.PublicKey, st *quic.ReceiveStream) {
	var buf []byte
	for {
		b, err := ReadFrame(st, t.cfg.MaxFrame, buf)
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return
		case errors.Is(err, ErrFrameTooLarge):
			t.refuse(c, node, ErrCodeTooLarge, err.Error())
			return
		case errors.Is(err, ErrMalformed):
			t.refuse(c, node, ErrCodeMalformed, err.Error())
			return
		default:
			st.CancelRead(0)
			return
		}
		if cap(b) <= chunk && !t.cfg.RetainFrames {
			buf = b[:0] // keep small buffers; let a snapshot's go
		}
		if !t.cfg.Trust(node) {
			t.refuse(c, node, ErrCodeUntrusted, "node "+node.String()+" is not trusted by this "+t.cfg.Name+" node")
			return
		}
		codec := t.cfg.Codec
		err = codec.DecodeBatch(b, func(m T) error {
			if t.ctx.Err() != nil {
				return errTransportClosed
			}
			if err := t.CheckFrom(node, codec.From(m)); err != nil {
				return err
			}
			if t.cfg.ID != 0 && codec.To(m) != t.cfg.ID {
				t.ignored.Add(1)
				return nil
			}
			t.cfg.Deliver(m)
			t.delivered.Add(1)
			return nil
		})
		switch {
		case err == nil:
		case err == errTransportClosed:
			return
		case errors.Is(err, errSpoofed):
			t.refuse(c, node, ErrCodeSpoofed, err.Error())
			return
		default:
			t.refuse(c, node, ErrCodeMalformed, err.Error())
			return
		}
	}
}

// CheckFrom says whether node may send a message From raft id from: not if from is 0, not if
// raft ids were added for node and from is not one of them, not if from was added for
// another NodeId.
func (t *Transport[T]) CheckFrom(node key.PublicKey, from uint64) error {
	if from == 0 {
		return fmt.Errorf("%w: node %s sent a message from raft id 0", errSpoofed, node)
	}
	t.mu.RLock()
	ids := t.raftIDs[node]
	_, mine := ids[from]
	owner, owned := t.peers[from]
	var list []uint64
	if !mine && len(ids) > 0 {
		list = slices.Sorted(maps.Keys(ids))
	}
	t.mu.RUnlock()
	if list != nil {
		return fmt.Errorf("%w: node %s is raft id %v and may not speak for raft id %d", errSpoofed, node, list, from)
	}
	if owned && owner != node {
		return fmt.Errorf("%w: node %s may not speak for raft id %d (node %s)", errSpoofed, node, from, owner)
	}
	return nil
}

// refuse closes c with code and reason, counting and logging it (at Warn once per NodeId and
// code per refusalLogEvery).
func (t *Transport[T]) refuse(c *endpoint.Conn, node key.PublicKey, code quic.ApplicationErrorCode, reason string) {
	t.refused.Add(1)
	t.logRefusal(node, code, t.cfg.Name+" transport: refusing peer", "code", uint64(code), "reason", reason)
	_ = c.CloseWithError(uint64(code), reason)
}
