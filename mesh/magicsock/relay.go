package magicsock

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock/internal/nodemap"
	"github.com/meshkafka/meshkafka/mesh/relay"
)

func (c *Conn) relayLocked(url string) *relayConn {
	rc, ok := c.relays[url]
	if ok {
		return rc
	}
	rc = c.newRelayLocked(url, false)
	c.relays[url] = rc
	return rc
}

func (c *Conn) newRelayLocked(url string, home bool) *relayConn {
	rc := &relayConn{url: url, home: home, sendq: make(chan relayOut, relayQueueDepth)}
	c.wg.Go(func() { c.runRelay(rc) })
	return rc
}

// sendRelayLocked queues one datagram to dst over the relay url, dialing it if needed. It
// never blocks: when the queue is full the datagram is dropped.
func (c *Conn) sendRelayLocked(url string, dst key.PublicKey, b []byte) {
	rc := c.relayLocked(url)
	select {
	case rc.sendq <- relayOut{dst: dst, data: slices.Clone(b)}:
	default:
		c.log.Debug("magicsock: relay queue full, dropping", "relay", url)
	}
}

// runRelay dials the relay, runs a writer for its queue and reads until the connection
// fails, then starts over with backoff (10 ms doubling to 5 s, as iroh's home relay) until
// Close. Like iroh 0.28 (whose idle check never fires), relay connections are kept for the
// Conn's life.
func (c *Conn) runRelay(rc *relayConn) {
	backoff := 10 * time.Millisecond
	for {
		cl, err := c.opts.DialRelay(c.ctx, rc.url, c.priv)
		if err == nil {
			backoff = 10 * time.Millisecond
			if rc.home {
				_ = cl.NotePreferred(true)
			}
			done := make(chan struct{})
			var w sync.WaitGroup
			w.Go(func() { c.relayWriter(rc, cl, done) })
			stop := context.AfterFunc(c.ctx, func() { _ = cl.Close() })
			c.readRelay(rc, cl)
			stop()
			_ = cl.Close()
			close(done)
			w.Wait()
		} else {
			c.log.Debug("magicsock: relay dial failed", "relay", rc.url, "err", err)
		}
		t := c.clock.NewTimer(backoff)
		select {
		case <-c.closed:
			t.Stop()
			return
		case <-t.C():
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// relayWriter sends queued datagrams until done. Like iroh's magicsock it packs every
// datagram already queued for the same destination into one SendPacket payload (each with
// its u16-LE length, up to 64 KiB − 32 bytes). Besides saving frames, this matters for
// interop: iroh 0.28.1's relay client stalls for good when more than 64 received frames
// queue up between its connection actor and its relay actor (the relay actor awaits an
// is_connected round trip to the connection actor, which is itself blocked handing it the
// 65th frame), and one frame per QUIC packet in a burst gets there. Batching makes that
// unlikely, not impossible (a busy Rust node can fall 65 frames behind anyway); our relay
// server rules it out by keeping at most relayserver.Window frames unconfirmed per client.
func (c *Conn) relayWriter(rc *relayConn, cl *relay.Client, done <-chan struct{}) {
	var (
		payload []byte
		pending *relayOut
	)
	for {
		var first relayOut
		if pending != nil {
			first, pending = *pending, nil
		} else {
			select {
			case first = <-rc.sendq:
			case <-done:
				return
			}
		}
		payload, _ = relay.AppendDatagram(payload[:0], first.data)
	batch:
		for len(payload) < relay.MaxDatagramsPayload {
			select {
			case o := <-rc.sendq:
				if o.dst != first.dst || len(payload)+2+len(o.data) > relay.MaxDatagramsPayload {
					pending = &o
					break batch
				}
				payload, _ = relay.AppendDatagram(payload, o.data)
			default:
				break batch
			}
		}
		if err := cl.Send(first.dst.Bytes(), payload); err != nil {
			c.log.Debug("magicsock: relay send failed", "relay", rc.url, "err", err)
			_ = cl.Close()
			return
		}
	}
}

func (c *Conn) readRelay(rc *relayConn, cl *relay.Client) {
	var items [][]byte
	for {
		f, err := cl.Recv()
		if err != nil {
			return
		}
		if f.Type != relay.FrameRecvPacket {
			continue
		}
		from, err := key.PublicKeyFromBytes(f.Key[:])
		if err != nil {
			continue
		}
		items, err = relay.SplitDatagrams(f.Data, items[:0])
		if err != nil {
			c.log.Debug("magicsock: truncated relay payload", "from", from.ShortString(), "err", err)
		}
		for _, it := range items {
			if disco.LooksLikeDisco(it) {
				c.handleDisco(it, netip.AddrPort{}, rc.url, from)
				continue
			}
			c.mu.Lock()
			mapped, _ := c.handleLocked(nodemap.RecvRelay{RelayURL: rc.url, From: from}, it, nil)
			c.mu.Unlock()
			if mapped != nil {
				c.deliver(mapped, slices.Clone(it))
			}
		}
	}
}
