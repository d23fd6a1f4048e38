package magicsock_test

import (
	"context"
	"crypto/sha256"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
	"github.com/meshkafka/meshkafka/mesh/meshtest"
	"github.com/meshkafka/meshkafka/mesh/stun"
)

// natConn puts a node behind a port-restricted cone NAT, in process: the node's socket is a
// private address nobody can reach (LocalAddr 10.x), and everything goes out through the NAT's
// one public socket (endpoint-independent mapping). An inbound datagram passes only if the
// node has sent to exactly that ip:port before (address-and-port-dependent filtering), so
// two nodes behind two such NATs reach each other directly only by punching holes at the
// same time: what disco's CallMeMaybe arranges.
type natConn struct {
	pub     net.PacketConn // the NAT's public side
	private *net.UDPAddr
	mu      sync.Mutex
	allowed map[netip.AddrPort]bool
	down    atomic.Bool // NAT reboot: drops everything and forgets its holes
}

func newNAT(t *testing.T, private string) *natConn {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &natConn{pub: pc, private: net.UDPAddrFromAddrPort(netip.MustParseAddrPort(private)), allowed: map[netip.AddrPort]bool{}}
}

func (n *natConn) public() netip.AddrPort { return n.pub.LocalAddr().(*net.UDPAddr).AddrPort() }

func (n *natConn) WriteTo(p []byte, a net.Addr) (int, error) {
	ua := a.(*net.UDPAddr)
	if n.down.Load() || !ua.IP.IsLoopback() {
		return len(p), nil // NAT down, or a private network we do not simulate
	}
	n.mu.Lock()
	n.allowed[unmap(ua.AddrPort())] = true
	n.mu.Unlock()
	return n.pub.WriteTo(p, a)
}

func (n *natConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		nb, a, err := n.pub.ReadFrom(p)
		if err != nil {
			return nb, a, err
		}
		n.mu.Lock()
		ok := n.allowed[unmap(a.(*net.UDPAddr).AddrPort())]
		n.mu.Unlock()
		if ok && !n.down.Load() {
			return nb, a, nil
		}
	}
}

func unmap(a netip.AddrPort) netip.AddrPort { return netip.AddrPortFrom(a.Addr().Unmap(), a.Port()) }

func (n *natConn) setDown(down bool) {
	n.mu.Lock()
	if down {
		clear(n.allowed)
	}
	n.mu.Unlock()
	n.down.Store(down)
}

func (n *natConn) Close() error                       { return n.pub.Close() }
func (n *natConn) LocalAddr() net.Addr                { return n.private }
func (n *natConn) SetDeadline(t time.Time) error      { return n.pub.SetDeadline(t) }
func (n *natConn) SetReadDeadline(t time.Time) error  { return n.pub.SetReadDeadline(t) }
func (n *natConn) SetWriteDeadline(t time.Time) error { return n.pub.SetWriteDeadline(t) }

func startSTUN(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := stun.NewServer(pc, nil)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Close(); <-s.Done() })
	return pc.LocalAddr().String()
}

func natPeer(t *testing.T, relayURL, stunAddr, private string) (*peer, *natConn) {
	t.Helper()
	sk := key.GenerateSecretKey()
	nat := newNAT(t, private)
	var log *slog.Logger
	if os.Getenv("MAGICSOCK_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", private)
	}
	ms, err := magicsock.New(magicsock.Options{SecretKey: sk, UDP: nat, HomeRelay: relayURL, STUNServers: []string{stunAddr}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: ms}
	t.Cleanup(func() {
		_ = tr.Close()
		_ = ms.Close()
	})
	return &peer{sk: sk, ms: ms, tr: tr}, nat
}

// TestTwoNATsRelayThenDirect: two nodes behind two different NATs, knowing each other only by
// node id and relay URL, connect through the relay, learn their reflexive addresses by STUN,
// punch through both NATs with disco and move the QUIC connection to the direct path; when a
// NAT reboots mid-transfer (direct path dead) traffic falls back to the relay, and comes back
// direct once the NAT is up again. A large transfer across all switches arrives intact, with
// no stream error.
func TestTwoNATsRelayThenDirect(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	stunAddr := startSTUN(t)
	a, natA := natPeer(t, url, stunAddr, "10.0.0.1:41641")
	b, natB := natPeer(t, url, stunAddr, "192.168.1.7:41641")
	serveEcho(t, b)

	c := dial(t, a, b, url, false)
	echo(t, c, "through the relay first")

	waitPath(t, a, b.sk.Public(), true)
	waitPath(t, b, a.sk.Public(), true)
	pa, _ := a.ms.Path(b.sk.Public())
	pb, _ := b.ms.Path(a.sk.Public())
	if pa.Direct != natB.public() || pb.Direct != natA.public() {
		t.Fatalf("direct paths %v / %v, want the NATs' public addresses %v / %v", pa.Direct, pb.Direct, natB.public(), natA.public())
	}
	t.Logf("hole punched: a→%v, b→%v", pa.Direct, pb.Direct)

	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	s, err := c.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	total := transferSize
	sent, recv := sha256.New(), sha256.New()
	var got int64
	var readErr error
	var rwg sync.WaitGroup
	rwg.Go(func() { got, readErr = io.Copy(recv, s) })
	chunk := make([]byte, 64<<10)
	for written := 0; written < total; written += len(chunk) {
		for i := range chunk {
			chunk[i] = byte(written>>16 + i*13)
		}
		switch written {
		case total / 4:
			natB.setDown(true)
			t.Log("NAT b down: direct path dead")
			waitPath(t, a, b.sk.Public(), false)
			t.Log("a fell back to the relay")
		case total / 2:
			natB.setDown(false)
			t.Log("NAT b up again")
			waitPath(t, a, b.sk.Public(), true)
			waitPath(t, b, a.sk.Public(), true)
			t.Log("direct again")
		}
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
		t.Fatal("checksum mismatch")
	}
	t.Logf("%d MiB echoed intact across relay→direct→relay→direct", total>>20)
}
