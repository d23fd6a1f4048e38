package natlab_test

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.uber.org/goleak"

	"github.com/meshkafka/meshkafka/internal/meshtest/natlab"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	ipServer = netip.MustParseAddr("192.0.2.10")
	ipNAT1   = netip.MustParseAddr("203.0.113.1")
	ipNAT2   = netip.MustParseAddr("198.51.100.1")
	ipLAN1   = netip.MustParseAddr("10.0.0.2")
	ipLAN1b  = netip.MustParseAddr("10.0.0.3")
	ipLAN2   = netip.MustParseAddr("192.168.1.7")
)

func listen(t *testing.T, m *natlab.Machine, port uint16) *natlab.Conn {
	t.Helper()
	c, err := m.ListenPacket(port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func send(t *testing.T, c *natlab.Conn, to netip.AddrPort, msg string) {
	t.Helper()
	if _, err := c.WriteTo([]byte(msg), net.UDPAddrFromAddrPort(to)); err != nil {
		t.Fatal(err)
	}
}

// recv returns the next queued datagram, or ok=false if none arrives within a second. Tests
// run inside synctest bubbles, so the second is virtual: a queued datagram is returned at
// once, and "nothing" is decided when every goroutine is blocked, not by a wall clock.
func recv(t *testing.T, c *natlab.Conn) (msg string, from netip.AddrPort, ok bool) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 100)
	n, a, err := c.ReadFrom(buf)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return "", netip.AddrPort{}, false
		}
		t.Fatal(err)
	}
	return string(buf[:n]), a.(*net.UDPAddr).AddrPort(), true
}

func wantRecv(t *testing.T, c *natlab.Conn, msg string, from netip.AddrPort) {
	t.Helper()
	got, gotFrom, ok := recv(t, c)
	if !ok || got != msg || gotFrom != from {
		t.Fatalf("%v got %q from %v (ok %v), want %q from %v", c.Addr(), got, gotFrom, ok, msg, from)
	}
}

func wantNothing(t *testing.T, c *natlab.Conn) {
	t.Helper()
	if got, from, ok := recv(t, c); ok {
		t.Fatalf("%v got %q from %v, want nothing", c.Addr(), got, from)
	}
}

func lab(t *testing.T, f func(t *testing.T, n *natlab.Network)) {
	synctest.Test(t, func(t *testing.T) {
		n := natlab.New(natlab.Config{Seed: 1})
		t.Cleanup(func() { _ = n.Close() })
		f(t, n)
	})
}

func TestPublicToPublic(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		a := listen(t, n.AddMachine("a", ipServer), 7)
		b := listen(t, n.AddMachine("b", ipNAT2), 0)
		if b.Addr().Port() != 32768 {
			t.Fatalf("first ephemeral port %v", b.Addr())
		}
		send(t, a, b.Addr(), "hi")
		wantRecv(t, b, "hi", a.Addr())
		send(t, b, netip.MustParseAddrPort("[::ffff:192.0.2.10]:7"), "v4-mapped")
		wantRecv(t, a, "v4-mapped", b.Addr())
		send(t, a, netip.MustParseAddrPort("192.0.2.99:7"), "nobody")
		send(t, a, netip.AddrPortFrom(ipNAT2, 9), "closed port")
		if st := n.Stats(); st.Delivered != 2 || st.NoRoute != 2 || st.Sent != 4 {
			t.Fatalf("stats %+v", st)
		}
		if _, err := n.AddMachine("c", netip.MustParseAddr("192.0.2.11")).ListenPacket(0); err != nil {
			t.Fatal(err)
		}
		if _, err := n.AddMachine("d", netip.MustParseAddr("192.0.2.12")).ListenPacket(0); err != nil {
			t.Fatal(err)
		}
		m := n.AddMachine("e", netip.MustParseAddr("192.0.2.13"))
		listen(t, m, 5)
		if _, err := m.ListenPacket(5); err == nil {
			t.Fatal("port bound twice")
		}
	})
}

// TestPortRestrictedCone: endpoint-independent mapping, address-and-port-dependent
// filtering. A server sees the NAT's public address, the same for every destination, and
// can answer; other hosts (or the server from another port) cannot get in until the LAN
// machine has sent to exactly them.
func TestPortRestrictedCone(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		srv := n.AddMachine("srv", ipServer)
		s1, s2 := listen(t, srv, 3478), listen(t, srv, 3479)
		nat := n.AddNAT("home", ipNAT1, natlab.NATConfig{})
		c := listen(t, nat.AddMachine("laptop", ipLAN1), 41641)
		if _, ok := nat.Mapped(c.Addr(), s1.Addr()); ok {
			t.Fatal("mapping before any traffic")
		}
		send(t, c, s1.Addr(), "stun?")
		pub, ok := nat.Mapped(c.Addr(), s1.Addr())
		if !ok || pub.Addr() != ipNAT1 || pub.Port() != 49152 {
			t.Fatalf("mapping %v %v", pub, ok)
		}
		wantRecv(t, s1, "stun?", pub)
		send(t, s1, pub, "you are "+pub.String())
		wantRecv(t, c, "you are "+pub.String(), s1.Addr())
		send(t, s2, pub, "other port")
		wantNothing(t, c)
		send(t, c, s2.Addr(), "now you")
		wantRecv(t, s2, "now you", pub) // same public port for another destination
		send(t, s2, pub, "other port, after")
		wantRecv(t, c, "other port, after", s2.Addr())
		send(t, s1, c.Addr(), "to the private address")
		wantNothing(t, c)
		if st := n.Stats(); st.Blocked != 1 || st.NoRoute != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestFilteringKinds(t *testing.T) {
	for _, tc := range []struct {
		f                       natlab.Filtering
		samePort, otherPort, ip bool // what gets in after sending to s1
	}{
		{natlab.EndpointIndependent, true, true, true},
		{natlab.AddressDependent, true, true, false},
		{natlab.AddressAndPortDependent, true, false, false},
	} {
		lab(t, func(t *testing.T, n *natlab.Network) {
			srv := n.AddMachine("srv", ipServer)
			s1, s2 := listen(t, srv, 1), listen(t, srv, 2)
			s3 := listen(t, n.AddMachine("other", ipNAT2), 1)
			nat := n.AddNAT("nat", ipNAT1, natlab.NATConfig{Filtering: tc.f})
			c := listen(t, nat.AddMachine("m", ipLAN1), 5)
			send(t, c, s1.Addr(), "out")
			pub, _ := nat.Mapped(c.Addr(), s1.Addr())
			for _, probe := range []struct {
				from *natlab.Conn
				want bool
			}{{s1, tc.samePort}, {s2, tc.otherPort}, {s3, tc.ip}} {
				send(t, probe.from, pub, "in")
				_, _, ok := recv(t, c)
				if ok != probe.want {
					t.Errorf("filtering %d: from %v got in: %v, want %v", tc.f, probe.from.Addr(), ok, probe.want)
				}
			}
		})
	}
}

// TestSymmetricNAT: endpoint-dependent mapping gives each destination its own public port,
// so the address a STUN server reports is useless to a peer.
func TestSymmetricNAT(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		s1 := listen(t, n.AddMachine("stun", ipServer), 3478)
		peer := listen(t, n.AddMachine("peer", ipNAT2), 1)
		nat := n.AddNAT("nat", ipNAT1, natlab.NATConfig{Mapping: natlab.EndpointDependent, Filtering: natlab.AddressAndPortDependent})
		c := listen(t, nat.AddMachine("m", ipLAN1), 5)
		send(t, c, s1.Addr(), "a")
		send(t, c, peer.Addr(), "b")
		_, fromS, _ := recv(t, s1)
		_, fromP, _ := recv(t, peer)
		if fromS == fromP || fromS.Addr() != ipNAT1 || fromP.Addr() != ipNAT1 {
			t.Fatalf("symmetric NAT used %v for the server and %v for the peer", fromS, fromP)
		}
		send(t, peer, fromS, "to the STUN-reported address")
		wantNothing(t, c)
		send(t, peer, fromP, "to the address it saw")
		wantRecv(t, c, "to the address it saw", peer.Addr())
	})
}

// TestHolePunch: two machines behind two port-restricted cone NATs reach each other only
// once both have sent to the other's public address (the first packet is dropped by the
// far NAT, and opens the hole in the near one).
func TestHolePunch(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		stun := listen(t, n.AddMachine("stun", ipServer), 3478)
		nat1 := n.AddNAT("n1", ipNAT1, natlab.NATConfig{PreservePort: true})
		nat2 := n.AddNAT("n2", ipNAT2, natlab.NATConfig{PreservePort: true})
		a := listen(t, nat1.AddMachine("a", ipLAN1), 41641)
		b := listen(t, nat2.AddMachine("b", ipLAN2), 41641)
		send(t, a, stun.Addr(), "?")
		send(t, b, stun.Addr(), "?")
		_, pubA, _ := recv(t, stun)
		_, pubB, _ := recv(t, stun)
		if pubA != netip.AddrPortFrom(ipNAT1, 41641) || pubB != netip.AddrPortFrom(ipNAT2, 41641) {
			t.Fatalf("preserved ports: %v %v", pubA, pubB)
		}
		send(t, a, pubB, "punch from a") // dropped by n2, opens n1
		wantNothing(t, b)
		send(t, b, pubA, "punch from b") // passes n1
		wantRecv(t, a, "punch from b", pubB)
		send(t, a, pubB, "through")
		wantRecv(t, b, "through", pubA)
	})
}

func TestLANAndHairpin(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		nat := n.AddNAT("nat", ipNAT1, natlab.NATConfig{Filtering: natlab.EndpointIndependent})
		a := listen(t, nat.AddMachine("a", ipLAN1), 1)
		b := listen(t, nat.AddMachine("b", ipLAN1b), 1)
		send(t, a, b.Addr(), "lan")
		wantRecv(t, b, "lan", a.Addr())
		srv := listen(t, n.AddMachine("srv", ipServer), 1)
		send(t, b, srv.Addr(), "out")
		pubB, _ := nat.Mapped(b.Addr(), srv.Addr())
		send(t, a, pubB, "hairpin")
		wantNothing(t, b)
	})
}

// TestDownAndReboot: a NAT that is down drops everything but keeps its mappings; a reboot
// forgets them (and the holes), and with PreservePort the next mapping gets the same port.
func TestDownAndReboot(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		srv := listen(t, n.AddMachine("srv", ipServer), 1)
		nat := n.AddNAT("nat", ipNAT1, natlab.NATConfig{PreservePort: true})
		c := listen(t, nat.AddMachine("m", ipLAN1), 41641)
		send(t, c, srv.Addr(), "out")
		pub, _ := nat.Mapped(c.Addr(), srv.Addr())
		wantRecv(t, srv, "out", pub)
		nat.SetDown(true)
		send(t, srv, pub, "while down")
		send(t, c, srv.Addr(), "while down")
		wantNothing(t, c)
		wantNothing(t, srv)
		nat.SetDown(false)
		send(t, srv, pub, "up again")
		wantRecv(t, c, "up again", srv.Addr())
		nat.Reboot()
		if _, ok := nat.Mapped(c.Addr(), srv.Addr()); ok {
			t.Fatal("mapping survived the reboot")
		}
		send(t, srv, pub, "after reboot")
		wantNothing(t, c)
		send(t, c, srv.Addr(), "out again")
		wantRecv(t, srv, "out again", pub)

		// Without PreservePort a reboot changes the public port.
		nat2 := n.AddNAT("nat2", ipNAT2, natlab.NATConfig{})
		d := listen(t, nat2.AddMachine("m", ipLAN2), 41641)
		send(t, d, srv.Addr(), "1")
		p1, _ := nat2.Mapped(d.Addr(), srv.Addr())
		nat2.Reboot()
		send(t, d, srv.Addr(), "2")
		p2, _ := nat2.Mapped(d.Addr(), srv.Addr())
		if p1 == p2 {
			t.Fatalf("port %v reused after reboot without PreservePort", p1)
		}
	})
}

func TestFirewall(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		m := n.AddMachine("fw", ipNAT1)
		m.SetFirewall(natlab.AddressAndPortDependent)
		c := listen(t, m, 1)
		other := listen(t, m, 2)
		peer := listen(t, n.AddMachine("peer", ipServer), 9)
		send(t, peer, c.Addr(), "unsolicited")
		wantNothing(t, c)
		send(t, c, peer.Addr(), "out")
		wantRecv(t, peer, "out", c.Addr())
		send(t, peer, c.Addr(), "reply")
		wantRecv(t, c, "reply", peer.Addr())
		send(t, peer, other.Addr(), "to the other socket")
		wantNothing(t, other)
		m.SetFirewall(0)
		send(t, peer, other.Addr(), "no firewall")
		wantRecv(t, other, "no firewall", peer.Addr())
	})
}

// TestLossAndDrop: random loss is reproducible from the seed; the drop rule sees the
// translated source.
func TestLossAndDrop(t *testing.T) {
	lost := func(seed uint64) (int, int) {
		var got, st int
		synctest.Test(t, func(t *testing.T) {
			n := natlab.New(natlab.Config{Seed: seed, Loss: 0.3, QueueLen: 1000})
			defer n.Close()
			a := listen(t, n.AddMachine("a", ipServer), 1)
			b := listen(t, n.AddMachine("b", ipNAT2), 1)
			for range 1000 {
				send(t, a, b.Addr(), "x")
			}
			for {
				if _, _, ok := recv(t, b); !ok {
					break
				}
				got++
			}
			st = n.Stats().Lost
		})
		return got, st
	}
	got1, lost1 := lost(7)
	got2, lost2 := lost(7)
	if got1 != got2 || lost1 != lost2 || got1+lost1 != 1000 {
		t.Fatalf("seed 7 twice: %d/%d and %d/%d delivered/lost", got1, lost1, got2, lost2)
	}
	if lost1 < 200 || lost1 > 400 {
		t.Fatalf("lost %d of 1000 at 30%%", lost1)
	}

	lab(t, func(t *testing.T, n *natlab.Network) {
		nat := n.AddNAT("nat", ipNAT1, natlab.NATConfig{})
		c := listen(t, nat.AddMachine("m", ipLAN1), 5)
		srv := listen(t, n.AddMachine("srv", ipServer), 1)
		var seen []natlab.Packet
		n.SetDrop(func(p natlab.Packet) bool {
			seen = append(seen, natlab.Packet{Src: p.Src, Dst: p.Dst})
			return string(p.Data) == "drop me"
		})
		send(t, c, srv.Addr(), "drop me")
		send(t, c, srv.Addr(), "keep me")
		pub, _ := nat.Mapped(c.Addr(), srv.Addr())
		wantRecv(t, srv, "keep me", pub)
		wantNothing(t, srv)
		if len(seen) != 2 || seen[0].Src != pub || seen[0].Dst != srv.Addr() {
			t.Fatalf("drop rule saw %+v, want src %v", seen, pub)
		}
		n.SetDrop(nil)
		send(t, c, srv.Addr(), "drop me")
		wantRecv(t, srv, "drop me", pub)
		if st := n.Stats(); st.Filtered != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

func TestQueueFull(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := natlab.New(natlab.Config{QueueLen: 2})
		defer n.Close()
		a := listen(t, n.AddMachine("a", ipServer), 1)
		b := listen(t, n.AddMachine("b", ipNAT2), 1)
		for _, m := range []string{"1", "2", "3"} {
			send(t, a, b.Addr(), m)
		}
		wantRecv(t, b, "1", a.Addr())
		wantRecv(t, b, "2", a.Addr())
		wantNothing(t, b)
		if st := n.Stats(); st.QueueFull != 1 {
			t.Fatalf("stats %+v", st)
		}
	})
}

// TestDeadlinesAndClose: a read deadline ends a blocked read with a timeout error; moving
// it wakes the reader; Close ends reads and writes; Network.Close closes every socket.
func TestDeadlinesAndClose(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		m := n.AddMachine("a", ipServer)
		c := listen(t, m, 1)
		start := time.Now()
		_ = c.SetReadDeadline(start.Add(3 * time.Second))
		_, _, err := c.ReadFrom(make([]byte, 1))
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() || time.Since(start) != 3*time.Second {
			t.Fatalf("read past deadline: %v after %v", err, time.Since(start))
		}
		_ = c.SetReadDeadline(time.Time{})
		errc := make(chan error, 1)
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 1))
			errc <- err
		}()
		synctest.Wait()
		_ = c.SetReadDeadline(time.Now().Add(time.Second)) // wakes the reader, which waits anew
		if err := <-errc; !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read after the deadline moved: %v", err)
		}
		_ = c.SetReadDeadline(time.Time{})
		go func() {
			_, _, err := c.ReadFrom(make([]byte, 1))
			errc <- err
		}()
		synctest.Wait()
		_ = c.Close()
		if err := <-errc; !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after close: %v", err)
		}
		if _, err := c.WriteTo([]byte("x"), c.LocalAddr()); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("write after close: %v", err)
		}
		if _, err := m.ListenPacket(1); err != nil {
			t.Fatalf("port not freed by Close: %v", err)
		}
		d := listen(t, m, 2)
		_ = n.Close()
		if _, _, err := d.ReadFrom(make([]byte, 1)); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("read after Network.Close: %v", err)
		}
		if _, err := m.ListenPacket(3); !errors.Is(err, net.ErrClosed) {
			t.Fatalf("listen after Network.Close: %v", err)
		}
	})
}

// TestConcurrentUse: many writers and readers at once (run with -race).
func TestConcurrentUse(t *testing.T) {
	lab(t, func(t *testing.T, n *natlab.Network) {
		nat := n.AddNAT("nat", ipNAT1, natlab.NATConfig{Filtering: natlab.EndpointIndependent})
		srv := listen(t, n.AddMachine("srv", ipServer), 1)
		var wg sync.WaitGroup
		const machines, each = 8, 50
		for i := range machines {
			c := listen(t, nat.AddMachine("m", netip.AddrFrom4([4]byte{10, 0, 1, byte(i + 1)})), 1)
			wg.Go(func() {
				for range each {
					send(t, c, srv.Addr(), "x")
				}
			})
		}
		got := 0
		wg.Go(func() {
			buf := make([]byte, 10)
			for got < machines*each {
				if _, _, err := srv.ReadFrom(buf); err != nil {
					return
				}
				got++
			}
		})
		wg.Wait()
		if got != machines*each {
			t.Fatalf("received %d of %d", got, machines*each)
		}
	})
}
