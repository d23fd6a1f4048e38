package magicsock_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"log/slog"
	"net/netip"
	"os"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/internal/meshtest/natlab"
	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/stun"
)

// lab is a natlab internet with a STUN server and an in-memory relay, for tests that run
// inside a synctest bubble: nothing touches a real socket, and every timer (heartbeat,
// 6.5 s trust, QUIC's) runs on the bubble's clock.
type lab struct {
	net      *natlab.Network
	stunAddr string
	dial     func(ctx context.Context, url string, priv ed25519.PrivateKey) (*relay.Client, error)
	relayURL string
	clock    clock.Clock // for the next peer; nil is the wall clock
	machines []*natlab.Machine
	nat      *natlab.NAT // shared by onLAN machines
}

var stunIP = netip.MustParseAddr("192.0.2.10")

func newLab(t *testing.T) *lab {
	t.Helper()
	n := natlab.New(natlab.Config{Seed: 1})
	t.Cleanup(func() { _ = n.Close() })
	pc, err := n.AddMachine("stun", stunIP).ListenPacket(3478)
	if err != nil {
		t.Fatal(err)
	}
	s := stun.NewServer(pc, nil)
	go func() { _ = s.Serve() }()
	t.Cleanup(func() { _ = s.Close(); <-s.Done() })
	_, dial := meshtest.StartMemRelay(t)
	return &lab{net: n, stunAddr: pc.LocalAddr().String(), dial: dial, relayURL: meshtest.MemRelayURL}
}

// peer starts a magicsock on m's port 41641, homed on the lab's relay, asking its STUN
// server, with QUIC on top.
func (l *lab) peer(t *testing.T, m *natlab.Machine, stunToo bool) *peer {
	t.Helper()
	sk := key.GenerateSecretKey()
	pc, err := m.ListenPacket(41641)
	if err != nil {
		t.Fatal(err)
	}
	var log *slog.Logger
	if os.Getenv("MAGICSOCK_DEBUG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", m.Name())
	}
	opts := magicsock.Options{SecretKey: sk, UDP: pc, HomeRelay: l.relayURL, DialRelay: l.dial, Logger: log, Clock: l.clock}
	if stunToo {
		opts.STUNServers = []string{l.stunAddr}
	}
	return startPeer(t, opts)
}

// TestTwoNATsRelayThenDirect: two nodes behind two different port-restricted cone NATs,
// knowing each other only by node id and relay URL, connect through the relay, learn their
// reflexive addresses by STUN, punch through both NATs with disco and move the QUIC
// connection to the direct path; when a NAT reboots mid-transfer (direct path dead) traffic
// falls back to the relay, and comes back direct once the NAT is up again. A large transfer
// across all switches arrives intact, with no stream error.
func TestTwoNATsRelayThenDirect(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t)
		natA := l.net.AddNAT("nat-a", netip.MustParseAddr("203.0.113.1"), natlab.NATConfig{PreservePort: true})
		natB := l.net.AddNAT("nat-b", netip.MustParseAddr("198.51.100.1"), natlab.NATConfig{PreservePort: true})
		a := l.peer(t, natA.AddMachine("a", netip.MustParseAddr("10.0.0.1")), true)
		b := l.peer(t, natB.AddMachine("b", netip.MustParseAddr("192.168.1.7")), true)
		serveEcho(t, b)

		c := dial(t, a, b, l.relayURL, false)
		echo(t, c, "through the relay first")

		waitDirect(t, a, b)
		pa, _ := a.ms.Path(b.sk.Public())
		pb, _ := b.ms.Path(a.sk.Public())
		pubA := netip.AddrPortFrom(natA.PublicIP(), 41641)
		pubB := netip.AddrPortFrom(natB.PublicIP(), 41641)
		if pa.Direct != pubB || pb.Direct != pubA {
			t.Fatalf("direct paths %v / %v, want the NATs' public addresses %v / %v", pa.Direct, pb.Direct, pubB, pubA)
		}
		t.Logf("hole punched: a→%v, b→%v", pa.Direct, pb.Direct)

		total := transferSize
		echoStream(t, c, 120*time.Second, total, 64<<10, func(written int, chunk []byte) {
			for i := range chunk {
				chunk[i] = byte(written>>16 + i*13)
			}
		}, func(written int) {
			switch written {
			case total / 4:
				natB.SetDown(true)
				natB.Reboot()
				t.Log("NAT b down: direct path dead")
				waitPath(t, a, b.sk.Public(), false)
				t.Log("a fell back to the relay")
			case total / 2:
				natB.SetDown(false)
				t.Log("NAT b up again")
				waitDirect(t, a, b)
				t.Log("direct again")
			}
		})
		t.Logf("%d MiB echoed intact across relay→direct→relay→direct", total>>20)
	})
}

// TestClockDrivesTrust: path decisions and the heartbeat run on Options.Clock. With a
// manual clock on a, moving it 7 s past the last Pong ends the direct path's trust at once,
// and fires the heartbeat tick that sends a full ping, with no bubble time passing; once the
// pings can be answered, the next move restores the direct path.
func TestClockDrivesTrust(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLab(t)
		ipA := netip.MustParseAddr("192.0.2.20")
		var blocked atomic.Bool
		var discoFromA atomic.Int64
		l.net.SetDrop(func(p natlab.Packet) bool {
			if p.Src.Addr() == ipA && bytes.HasPrefix(p.Data, []byte(disco.Magic)) {
				discoFromA.Add(1)
			}
			return blocked.Load() && (p.Src.Addr() == ipA || p.Dst.Addr() == ipA)
		})
		clk := clock.NewFake(time.Now())
		l.clock = clk
		a := l.peer(t, l.net.AddMachine("a", ipA), false)
		l.clock = nil
		b := l.peer(t, l.net.AddMachine("b", netip.MustParseAddr("198.51.100.20")), false)
		serveEcho(t, b)
		c := dial(t, a, b, l.relayURL, false)
		echo(t, c, "hello")
		waitPath(t, a, b.sk.Public(), true)
		pi, _ := a.ms.Path(b.sk.Public())

		blocked.Store(true) // no pong can reach a now
		synctest.Wait()
		start, pingsBefore := time.Now(), discoFromA.Load()
		clk.Advance(7 * time.Second)
		if now, _ := a.ms.Path(b.sk.Public()); now.Direct.IsValid() {
			t.Fatalf("still direct 7 s (by a's clock) after the last pong: %+v", now)
		}
		synctest.Wait()
		if discoFromA.Load() == pingsBefore || !time.Now().Equal(start) {
			t.Fatalf("after the clock moved: %d disco packets from a (before %d), %v of bubble time",
				discoFromA.Load(), pingsBefore, time.Since(start))
		}

		blocked.Store(false)
		clk.Advance(5 * time.Second) // the next full ping is due
		synctest.Wait()
		if now, _ := a.ms.Path(b.sk.Public()); now.Direct != pi.Direct || !time.Now().Equal(start) {
			t.Fatalf("path %+v after the next full ping (was %v), %v of bubble time", now, pi.Direct, time.Since(start))
		}
	})
}

// TestTopologies: natlab topologies, tailscale-style: where a direct path must be found
// (and at which address), and where only the relay can work. In every case a QUIC echo
// works from the start over the relay.
func TestTopologies(t *testing.T) {
	var (
		ipA, ipB   = netip.MustParseAddr("192.0.2.20"), netip.MustParseAddr("198.51.100.20")
		natIPA     = netip.MustParseAddr("203.0.113.1")
		natIPB     = netip.MustParseAddr("203.0.113.2")
		lanA, lanB = netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
		cone       = natlab.NATConfig{PreservePort: true}
		symmetric  = natlab.NATConfig{Mapping: natlab.EndpointDependent}
		onInternet = func(ip netip.Addr) func(*lab) *natlab.Machine {
			return func(l *lab) *natlab.Machine { return l.net.AddMachine(ip.String(), ip) }
		}
		behind = func(natIP netip.Addr, cfg natlab.NATConfig, ip netip.Addr) func(*lab) *natlab.Machine {
			return func(l *lab) *natlab.Machine {
				return l.net.AddNAT(natIP.String(), natIP, cfg).AddMachine(ip.String(), ip)
			}
		}
		onLAN = func(ip netip.Addr) func(*lab) *natlab.Machine {
			return func(l *lab) *natlab.Machine {
				if l.nat == nil {
					l.nat = l.net.AddNAT("shared", natIPA, cone)
				}
				return l.nat.AddMachine(ip.String(), ip)
			}
		}
	)
	for _, tc := range []struct {
		name string
		a, b func(*lab) *natlab.Machine
		// setup runs after both machines exist (same-LAN and blocking cases).
		setup func(l *lab)
		// want is b's address as a's direct path; zero: the path must stay on the relay.
		want netip.AddrPort
	}{
		{name: "both public", a: onInternet(ipA), b: onInternet(ipB), want: netip.AddrPortFrom(ipB, 41641)},
		{name: "a behind a cone NAT", a: behind(natIPA, cone, lanA), b: onInternet(ipB), want: netip.AddrPortFrom(ipB, 41641)},
		{name: "b behind a cone NAT", a: onInternet(ipA), b: behind(natIPB, cone, lanB), want: netip.AddrPortFrom(natIPB, 41641)},
		{name: "both behind cone NATs", a: behind(natIPA, cone, lanA), b: behind(natIPB, cone, lanB), want: netip.AddrPortFrom(natIPB, 41641)},
		{name: "a behind a symmetric NAT, b public", a: behind(natIPA, symmetric, lanA), b: onInternet(ipB), want: netip.AddrPortFrom(ipB, 41641)},
		{name: "a behind a symmetric NAT, b behind a cone NAT", a: behind(natIPA, symmetric, lanA), b: behind(natIPB, cone, lanB)},
		{name: "both behind symmetric NATs", a: behind(natIPA, symmetric, lanA), b: behind(natIPB, symmetric, lanB)},
		{name: "same LAN behind one NAT", a: onLAN(lanA), b: onLAN(lanB), want: netip.AddrPortFrom(lanB, 41641)},
		{
			name: "UDP between the nodes blocked", a: onInternet(ipA), b: onInternet(ipB),
			setup: func(l *lab) {
				l.net.SetDrop(func(p natlab.Packet) bool { return p.Src.Addr() != stunIP && p.Dst.Addr() != stunIP })
			},
		},
		{
			name: "b firewalled (stateful, address and port)", a: onInternet(ipA), b: onInternet(ipB),
			setup: func(l *lab) { l.machines[1].SetFirewall(natlab.AddressAndPortDependent) },
			want:  netip.AddrPortFrom(ipB, 41641),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newLab(t)
				ma, mb := tc.a(l), tc.b(l)
				l.machines = []*natlab.Machine{ma, mb}
				if tc.setup != nil {
					tc.setup(l)
				}
				a, b := l.peer(t, ma, true), l.peer(t, mb, true)
				serveEcho(t, b)
				c := dial(t, a, b, l.relayURL, false)
				echo(t, c, "over the relay first")
				if tc.want.IsValid() {
					waitPath(t, a, b.sk.Public(), true)
					if pi, _ := a.ms.Path(b.sk.Public()); pi.Direct != tc.want {
						t.Fatalf("direct path %v, want %v", pi.Direct, tc.want)
					}
					waitPath(t, b, a.sk.Public(), true)
				} else {
					// 30 s of (virtual) time with traffic: full pings every 5 s, STUN, and
					// never a direct path.
					for range 60 {
						time.Sleep(500 * time.Millisecond)
						if pi, _ := a.ms.Path(b.sk.Public()); pi.Direct.IsValid() {
							t.Fatalf("direct path %v where none can work", pi.Direct)
						}
						if pi, _ := b.ms.Path(a.sk.Public()); pi.Direct.IsValid() {
							t.Fatalf("b has a direct path %v where none can work", pi.Direct)
						}
					}
				}
				echo(t, c, "and still")
			})
		})
	}
}
