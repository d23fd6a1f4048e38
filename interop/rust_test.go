package interop

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
)

// TestRustToRust checks the driver itself: two Rust nodes in two drivers, every mode on bi and
// uni streams, and that the payload pattern agrees with irohnode.Pattern.
func TestRustToRust(t *testing.T) {
	ctx := nsCtx(t, 90*time.Second)
	a := rustNode(t, irohnode.NodeOptions{ALPNs: testALPNs})
	b := rustNode(t, irohnode.NodeOptions{})
	if a.ID == b.ID {
		t.Fatal("two random nodes share an id")
	}
	const n = 3<<20 + 17
	want := irohnode.PatternSHA256(n)

	t.Run("echo-bi", func(t *testing.T) {
		c := connect(ctx, t, b, a, alpnEcho)
		r, err := c.Transfer(ctx, irohnode.Transfer{Streams: 4, Bytes: n})
		if err != nil {
			t.Fatal(err)
		}
		for i, s := range r.Streams {
			if s.SentSHA256 != want || s.RecvSHA256 != want || s.RecvBytes != n {
				t.Errorf("stream %d: sent %s, got %d bytes %s; want %s", i, s.SentSHA256, s.RecvBytes, s.RecvSHA256, want)
			}
		}
		for range 4 {
			e, err := a.WaitStream(ctx, "")
			if err != nil {
				t.Fatal(err)
			}
			if e.Error != "" || e.RecvSHA256 != want || e.SentBytes != n {
				t.Errorf("server stream: %+v", e)
			}
		}
	})
	t.Run("sink-uni", func(t *testing.T) {
		c := connect(ctx, t, b, a, alpnSink)
		if _, err := c.Transfer(ctx, irohnode.Transfer{Kind: "uni", Bytes: n}); err != nil {
			t.Fatal(err)
		}
		waitUni(ctx, t, a, "", n, want)
	})
	t.Run("source-bi", func(t *testing.T) {
		c := connect(ctx, t, b, a, alpnSource)
		r, err := c.Transfer(ctx, irohnode.Transfer{Bytes: n, Request: true})
		if err != nil {
			t.Fatal(err)
		}
		if r.Streams[0].RecvSHA256 != want {
			t.Errorf("source sent %d bytes %s, want %s", r.RecvBytes, r.Streams[0].RecvSHA256, want)
		}
		if _, err := a.WaitStream(ctx, ""); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("datagrams", func(t *testing.T) {
		c, err := b.Connect(ctx, a.Direct(), alpnSink, "")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx, 0, "")
		e, err := a.WaitAccepted(ctx, alpnSink)
		if err != nil {
			t.Fatal(err)
		}
		ac := a.AcceptedConn(e)
		if err := c.SendDatagram(ctx, []byte("ping datagram")); err != nil {
			t.Fatal(err)
		}
		if got, err := ac.ReadDatagram(ctx); err != nil || string(got) != "ping datagram" {
			t.Fatalf("a read %q, %v", got, err)
		}
		if err := ac.SendDatagram(ctx, []byte("pong")); err != nil {
			t.Fatal(err)
		}
		if got, err := c.ReadDatagram(ctx); err != nil || string(got) != "pong" {
			t.Fatalf("b read %q, %v", got, err)
		}
	})
	t.Run("unserved-alpn", func(t *testing.T) {
		_, err := b.Connect(ctx, a.Direct(), "meshkafka/not-served/0", "")
		if err == nil {
			t.Fatal("connect on an ALPN the peer does not serve succeeded")
		}
		if !strings.Contains(err.Error(), "error 120") {
			t.Errorf("want TLS alert 120 (no application protocol), got %v", err)
		}
	})
}

// connect dials to from from on alpn and checks both sides see the right node id.
func connect(ctx context.Context, t testing.TB, from, to *irohnode.Node, alpn string) *irohnode.Conn {
	t.Helper()
	c, err := from.Connect(ctx, to.Direct(), alpn, "")
	if err != nil {
		t.Fatal(err)
	}
	if c.Remote != to.ID {
		t.Fatalf("dialer sees %s, want %s", c.Remote, to.ID)
	}
	e, err := to.WaitAccepted(ctx, alpn)
	if err != nil {
		t.Fatal(err)
	}
	if e.Remote != from.ID {
		t.Fatalf("acceptor sees %s, want %s", e.Remote, from.ID)
	}
	t.Cleanup(func() {
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = c.Close(cctx, 0, "done")
	})
	return c
}

// subscribeVia subscribes the Rust node a to topic alone, then b through a (b told a's direct
// address first).
func subscribeVia(ctx context.Context, t *testing.T, a, b *irohnode.Node, topic [32]byte) (sa, sb *irohnode.Sub) {
	t.Helper()
	if err := b.AddNodeAddr(ctx, a.Direct()); err != nil {
		t.Fatal(err)
	}
	sa, err := a.Subscribe(ctx, topic, nil)
	if err != nil {
		t.Fatal(err)
	}
	sb, err = b.Subscribe(ctx, topic, []string{a.ID})
	if err != nil {
		t.Fatal(err)
	}
	return sa, sb
}

// TestRustGossipThroughDriver checks the driver's gossip commands and events between two Rust
// nodes: subscribe with a bootstrap peer, joined/neighborUp, broadcast and broadcastNeighbors,
// and that each node receives the other's messages with the right sender.
func TestRustGossipThroughDriver(t *testing.T) {
	ctx := nsCtx(t, 60*time.Second)
	a := rustNode(t, irohnode.NodeOptions{})
	b := rustNode(t, irohnode.NodeOptions{})
	var topic [32]byte
	copy(topic[:], "meshkafka interop gossip topic")
	sa, sb := subscribeVia(ctx, t, a, b, topic)
	// A subscription's first neighbour set arrives as one joined event (on both sides).
	j, err := sb.WaitEvent(ctx, "joined", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Peers) != 1 || j.Peers[0] != a.ID {
		t.Fatalf("b joined with %v, want [%s]", j.Peers, a.ID)
	}
	if _, err := sa.WaitEvent(ctx, "", func(e *irohnode.Event) bool {
		return e.Type == "joined" && slices.Contains(e.Peers, b.ID) || e.Type == "neighborUp" && e.Peer == b.ID
	}); err != nil {
		t.Fatal(err)
	}
	if err := sb.Broadcast(ctx, []byte("from b")); err != nil {
		t.Fatal(err)
	}
	if err := sa.BroadcastNeighbors(ctx, []byte("from a")); err != nil {
		t.Fatal(err)
	}
	got, err := sa.WaitEvent(ctx, "received", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Content) != "from b" || got.From != b.ID {
		t.Errorf("a received %q from %s, want %q from %s", got.Content, got.From, "from b", b.ID)
	}
	got, err = sb.WaitEvent(ctx, "received", nil)
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Content) != "from a" || got.From != a.ID {
		t.Errorf("b received %q from %s, want %q from %s", got.Content, got.From, "from a", a.ID)
	}
	if err := sb.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := sb.Close(ctx); err == nil {
		t.Error("closing a subscription twice succeeded")
	}
}
