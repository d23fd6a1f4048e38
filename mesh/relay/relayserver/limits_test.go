package relayserver_test

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

// TestConnectionsPerIPAreCapped: one address may hold MaxConnsPerIP connections, counted from
// the upgrade (so connections that never authenticate count too); the next is refused with
// 429 before it is upgraded, and a slot freed by a hang-up can be used again.
func TestConnectionsPerIPAreCapped(t *testing.T) {
	const max = 3
	r := newRelay(t, relayserver.Config{MaxConnsPerIP: max})
	ka := newKey()
	a := dial(t, r, ka) // an authenticated client
	// Two connections that upgrade and then say nothing.
	silent1, _ := rawConn(t, r)
	_, _ = rawConn(t, r)

	_, err := relayhttp.Dial(context.Background(), r.url, newKey(), relayhttp.Options{})
	if err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("fourth connection from one address: err = %v, want a 429 refusal", err)
	}
	if got := r.srv.Stats().RefusedPerIP; got != 1 {
		t.Fatalf("RefusedPerIP = %d, want 1", got)
	}
	// The refused client did not disturb the connected one.
	if err := a.SendPing([8]byte{7}); err != nil {
		t.Fatal(err)
	}
	recvType(t, a, relay.FramePong)

	// A slot comes back when a connection ends.
	_ = silent1.Close()
	kb := newKey()
	var b *relay.Client
	meshtest.WaitFor(t, func() bool {
		c, err := relayhttp.Dial(context.Background(), r.url, kb, relayhttp.Options{})
		if err != nil {
			return false
		}
		b = c
		return true
	})
	t.Cleanup(func() { _ = b.Close() })
	meshtest.WaitFor(t, func() bool { return r.srv.IsConnected(pub(kb)) })
	if err := a.Send(pub(kb), []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if f := recvType(t, b, relay.FrameRecvPacket); string(f.Data) != "hello" {
		t.Fatalf("got %q", f.Data)
	}
}

// TestConnectionsPerIPAcceptPath: Accept (no HTTP in front) applies the same cap and returns
// ErrTooManyConns.
func TestConnectionsPerIPAcceptPath(t *testing.T) {
	srv := relayserver.New(relayserver.Config{MaxConnsPerIP: 1, HandshakeTimeout: time.Minute})
	t.Cleanup(func() { _ = srv.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	results := make(chan error, 2)
	go func() {
		for range 2 {
			c, err := ln.Accept()
			if err != nil {
				results <- err
				return
			}
			go func() { results <- srv.Accept(context.Background(), c, nil) }()
		}
	}()
	// Two connections from one address: one holds the only slot (waiting in its handshake),
	// the other is refused at once.
	for range 2 {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	select {
	case err := <-results:
		if err != relayserver.ErrTooManyConns {
			t.Fatalf("connection past the cap: %v, want ErrTooManyConns", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a second connection from one address was not refused")
	}
	if got := srv.Stats().RefusedPerIP; got != 1 {
		t.Fatalf("RefusedPerIP = %d, want 1", got)
	}
	_ = srv.Close() // ends the one in its handshake
	if err := <-results; err == nil || err == relayserver.ErrTooManyConns {
		t.Fatalf("the connection holding the slot: %v, want a handshake error", err)
	}
}

// TestIPRateLimitIsSharedAcrossKeys: node keys cost nothing, so a host's clients share one
// budget. Client a spends the whole per-IP burst; client b, another key on the same address,
// is then held exactly as long as its bytes take at the per-IP rate, on the injected clock.
func TestIPRateLimitIsSharedAcrossKeys(t *testing.T) {
	fake := clock.NewFake(time.Unix(1000, 0))
	r := newRelay(t, relayserver.Config{IPRateLimit: 1000, IPRateBurst: 2000, Clock: fake})
	ka, kb, kc := newKey(), newKey(), newKey()
	a, b, c := dial(t, r, ka), dial(t, r, kb), dial(t, r, kc)
	const tickers = 3 // one keep-alive ticker per client
	meshtest.WaitFor(t, func() bool { return fake.Waiting() == tickers })
	spendBurst(t, a, c, kc) // the address's whole burst
	const held = "another key, same address: held"
	if err := b.Send(pub(kc), []byte(held)); err != nil {
		t.Fatal(err)
	}
	meshtest.WaitFor(t, func() bool { return r.srv.Stats().IPRateLimited == 1 && fake.Waiting() == tickers+1 })
	if s := r.srv.Stats(); s.RateLimited != 0 {
		t.Fatalf("per-key limiter fired without a per-key limit: %+v", s)
	}
	releasedWhenEarned(t, fake, tickers, c, held, "per-IP")
}

// TestTooManyRequestsIsPlainHTTP: the 429 is an ordinary HTTP answer a person can read.
func TestTooManyRequestsIsPlainHTTP(t *testing.T) {
	r := newRelay(t, relayserver.Config{MaxConnsPerIP: 1})
	_, _ = rawConn(t, r)
	req, _ := http.NewRequest(http.MethodGet, r.url+relay.HTTPPath, nil)
	req.Header.Set("Upgrade", relay.UpgradeProtocol)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("status %s, want 429", resp.Status)
	}
}
