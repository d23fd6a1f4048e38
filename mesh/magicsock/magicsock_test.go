package magicsock_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/quic-go/quic-go"
	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/internal/meshtest/natlab"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const alpn = "meshkafka/test/magicsock/0"

type peer struct {
	sk key.SecretKey
	ms *magicsock.Conn
	tr *quic.Transport
}

func newPeer(t testing.TB, relayURL string, disableDirect bool) *peer {
	t.Helper()
	sk := key.GenerateSecretKey()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return startPeer(t, magicsock.Options{SecretKey: sk, UDP: pc, HomeRelay: relayURL, DisableDirect: disableDirect})
}

// startPeer opens a magicsock with opts and a QUIC transport over it, both closed when the
// test ends.
func startPeer(t testing.TB, opts magicsock.Options) *peer {
	t.Helper()
	ms, err := magicsock.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: ms}
	t.Cleanup(func() {
		_ = tr.Close()
		_ = ms.Close()
	})
	return &peer{sk: opts.SecretKey, ms: ms, tr: tr}
}

var quicConf = &quic.Config{KeepAlivePeriod: time.Second, MaxIdleTimeout: 30 * time.Second, HandshakeIdleTimeout: 10 * time.Second}

// serveEcho accepts connections on p and echoes every bidirectional stream.
func serveEcho(t *testing.T, p *peer) { meshtest.ServeEcho(t, p.tr, p.sk, alpn, quicConf) }

func dial(t *testing.T, from, to *peer, relayURL string, withDirect bool) *quic.Conn {
	t.Helper()
	var direct []netip.AddrPort
	if withDirect {
		direct = to.ms.DirectAddrs()
	}
	addr := from.ms.AddNodeAddr(to.sk.Public(), relayURL, direct)
	cert, err := meshtls.GenerateCertificate(from.sk)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := from.tr.Dial(ctx, addr, meshtls.ClientConfig(cert, to.sk.Public(), alpn), quicConf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseWithError(0, "") })
	return c
}

func echo(t *testing.T, c *quic.Conn, msg string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var got []byte
	var rerr error
	var wg sync.WaitGroup
	wg.Go(func() { got, rerr = io.ReadAll(s) })
	if _, err := s.Write([]byte(msg)); err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
	wg.Wait()
	if rerr != nil || string(got) != msg {
		t.Fatalf("echo: %d bytes, want %d, err %v", len(got), len(msg), rerr)
	}
}

func TestQUICOverRelayOnly(t *testing.T) {
	srv, url := meshtest.StartRelay(t)
	a, b := newPeer(t, url, true), newPeer(t, url, true)
	serveEcho(t, b)
	c := dial(t, a, b, url, false)
	echo(t, c, "hello over the relay")
	big := string(make([]byte, 4<<20))
	echo(t, c, big)
	if id, ok := meshtlsPeer(c); !ok || id != b.sk.Public() {
		t.Fatalf("peer id %v", id)
	}
	if pi, _ := a.ms.Path(b.sk.Public()); pi.Direct.IsValid() {
		t.Fatalf("direct path %v with direct disabled", pi.Direct)
	}
	if srv.Stats().PacketsSent == 0 {
		t.Fatal("nothing went through the relay")
	}
}

func meshtlsPeer(c *quic.Conn) (key.PublicKey, bool) {
	id, err := meshtls.PeerID(c.ConnectionState().TLS)
	return id, err == nil
}

// TestUpgradeAndFallback: a connection that starts on the relay (the dialer knows only the
// relay URL) moves to the direct path found by disco, survives blocking the direct path by
// falling back to the relay, and a transfer across both switches arrives intact. Both nodes
// are on the (natlab) internet, in a synctest bubble.
func TestUpgradeAndFallback(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t)
		ipB := netip.MustParseAddr("198.51.100.20")
		a := l.peer(t, l.net.AddMachine("a", netip.MustParseAddr("192.0.2.20")), false)
		b := l.peer(t, l.net.AddMachine("b", ipB), false)
		var blocked atomic.Bool // while set, every datagram to or from b's socket is dropped
		l.net.SetDrop(func(p natlab.Packet) bool {
			return blocked.Load() && (p.Src.Addr() == ipB || p.Dst.Addr() == ipB)
		})
		serveEcho(t, b)
		c := dial(t, a, b, l.relayURL, false)
		echo(t, c, "first contact")

		waitDirect(t, a, b)
		pi, _ := a.ms.Path(b.sk.Public())
		t.Logf("direct path %v (latency %v)", pi.Direct, pi.Latency)

		// A long echo transfer while the direct path is blocked and unblocked.
		const total = 8 << 20
		echoStream(t, c, 60*time.Second, total, 32<<10, func(written int, chunk []byte) {
			for i := range chunk {
				chunk[i] = byte(written + i*7)
			}
		}, func(written int) {
			if written == total/4 {
				blocked.Store(true)
				t.Log("direct path blocked")
				waitPath(t, a, b.sk.Public(), false)
				t.Log("fell back to the relay")
			}
		})
		// Unblocked, the direct path comes back.
		blocked.Store(false)
		waitPath(t, a, b.sk.Public(), true)
		echo(t, c, "direct again")
	})
}

// echoStream opens a stream on c, whose peer echoes it, and writes total bytes to it in chunks
// of chunkSize filled by fill, calling before(written) ahead of each chunk; it closes the
// stream and checks that everything came back, unchanged, within timeout.
func echoStream(t *testing.T, c *quic.Conn, timeout time.Duration, total, chunkSize int, fill func(written int, chunk []byte), before func(written int)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sent, recv := sha256.New(), sha256.New()
	var got int64
	var readErr error
	var rwg sync.WaitGroup
	rwg.Go(func() { got, readErr = io.Copy(recv, s) })
	chunk := make([]byte, chunkSize)
	for written := 0; written < total; written += len(chunk) {
		fill(written, chunk)
		before(written)
		sent.Write(chunk)
		if _, err := s.Write(chunk); err != nil {
			t.Fatalf("write after %d bytes: %v", written, err)
		}
	}
	_ = s.Close()
	rwg.Wait()
	if readErr != nil || got != int64(total) {
		t.Fatalf("echoed %d of %d bytes, err %v", got, total, readErr)
	}
	if string(sent.Sum(nil)) != string(recv.Sum(nil)) {
		t.Fatal("checksum mismatch: the echo differs from what was sent")
	}
}

// waitDirect waits until a and b both use a direct path to each other.
func waitDirect(t *testing.T, a, b *peer) {
	t.Helper()
	waitPath(t, a, b.sk.Public(), true)
	waitPath(t, b, a.sk.Public(), true)
}

func waitPath(t *testing.T, p *peer, id key.PublicKey, direct bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		pi, _ := p.ms.Path(id)
		if pi.Direct.IsValid() == direct {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("path never became direct=%v: %+v", direct, pi)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestReadDeadlineAndClose(t *testing.T) {
	p := newPeer(t, "", false)
	_ = p.ms.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	_, _, err := p.ms.ReadFrom(make([]byte, 10))
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past deadline: %v", err)
	}
	_ = p.ms.SetReadDeadline(time.Time{})
	done := make(chan error, 1)
	go func() {
		_, _, err := p.ms.ReadFrom(make([]byte, 10))
		done <- err
	}()
	_ = p.ms.Close()
	if err := <-done; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("read after close: %v", err)
	}
	// Garbage to a closed conn is refused; unknown destinations are dropped before that.
	if _, err := p.ms.WriteTo([]byte("x"), &net.UDPAddr{IP: net.IPv6loopback, Port: 1}); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}
