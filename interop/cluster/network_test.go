package cluster_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// echoer is a UDP echo server inside a node's namespace that counts what it received.
type echoer struct {
	node *cluster.NetNode
	pc   net.PacketConn

	mu       sync.Mutex
	got      map[string]int // pings received, by payload
	lastFrom string         // the source of the last one
}

func (e *echoer) received(ping string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.got[ping]
}

func startEcho(t *testing.T, n *cluster.NetNode) *echoer {
	t.Helper()
	e := &echoer{node: n, got: map[string]int{}}
	if err := n.Do(func() (err error) { e.pc, err = net.ListenPacket("udp4", n.Addr.String()+":9000"); return }); err != nil {
		t.Fatalf("echo server in %s: %v", n.Name, err)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		buf := make([]byte, 64)
		for {
			k, from, err := e.pc.ReadFrom(buf)
			if err != nil {
				return
			}
			e.mu.Lock()
			e.got[string(buf[:k])]++
			e.lastFrom = from.String()
			e.mu.Unlock()
			_, _ = e.pc.WriteTo(buf[:k], from)
		}
	})
	t.Cleanup(func() { e.pc.Close(); wg.Wait() })
	return e
}

// prober sends UDP from inside a node's namespace.
type prober struct {
	name  string
	pc    net.PacketConn
	probe int // numbers each reaches call: a late echo of an earlier one is ignored
}

func newProber(t *testing.T, n *cluster.NetNode) *prober {
	t.Helper()
	p := &prober{name: n.Name}
	if err := n.Do(func() (err error) { p.pc, err = net.ListenPacket("udp4", n.Addr.String()+":0"); return }); err != nil {
		t.Fatalf("prober in %s: %v", n.Name, err)
	}
	t.Cleanup(func() { p.pc.Close() })
	return p
}

// reaches sends pings to e until one is echoed (true), or until the rules have dropped a ping
// with e having received none of them (false). The 20 s
// bound only catches a hang.
func (p *prober) reaches(t *testing.T, net_ *cluster.Network, e *echoer) bool {
	t.Helper()
	before := droppedPings(t, net_)
	to := &net.UDPAddr{IP: e.node.Addr.AsSlice(), Port: 9000}
	p.probe++
	ping := fmt.Sprintf("ping %s %d", p.name, p.probe)
	buf := make([]byte, 64)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := p.pc.WriteTo([]byte(ping), to); err != nil {
			t.Fatal(err)
		}
		_ = p.pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
		for {
			k, from, err := p.pc.ReadFrom(buf)
			if err != nil {
				if ne := (net.Error)(nil); !errors.As(err, &ne) || !ne.Timeout() {
					t.Fatal(err)
				}
				break
			}
			if string(buf[:k]) == ping && from.String() == to.String() {
				return true
			}
		}
		if droppedPings(t, net_) > before && e.received(ping) == 0 {
			return false
		}
	}
	t.Fatalf("ping to %s neither answered nor dropped within 20s", e.node.Name)
	return false
}

// countPings adds two chains to the hub's bridge table counting pings (UDP to port 9000)
// before the fault rules (priority -10) and after them (priority 10): their difference is
// the pings the rules dropped. Late echo replies, which the rules may drop too, do not count.
func countPings(t *testing.T, n *cluster.Network) {
	t.Helper()
	for _, c := range []struct{ name, prio string }{{"pings_in", "-10"}, {"pings_out", "10"}} {
		n.Hub.Run(t, "nft", fmt.Sprintf("add chain bridge qnet %s { type filter hook forward priority %s ; }", c.name, c.prio))
		n.Hub.Run(t, "nft", fmt.Sprintf("add rule bridge qnet %s udp dport 9000 counter", c.name))
	}
}

func droppedPings(t *testing.T, n *cluster.Network) int64 {
	t.Helper()
	count := func(chain string) int64 {
		out, err := n.Hub.Output("nft", "list", "chain", "bridge", "qnet", chain)
		if err != nil {
			t.Fatalf("nft list chain %s: %v: %s", chain, err, out)
		}
		f := strings.Fields(string(out))
		for i := 0; i+2 < len(f); i++ {
			if f[i] == "counter" && f[i+1] == "packets" {
				v, err := strconv.ParseInt(f[i+2], 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				return v
			}
		}
		t.Fatalf("no counter in chain %s: %s", chain, out)
		return 0
	}
	return count("pings_in") - count("pings_out")
}

// TestNetworkFaults: the bridge's nftables rules isolate a node, split a majority from a
// minority, heal, and drop UDP between nodes while the hub stays reachable (relay-only).
func TestNetworkFaults(t *testing.T) {
	n := cluster.NewNetwork(t)
	countPings(t, n)
	nodes := []*cluster.NetNode{n.Attach("n0", 10), n.Attach("n1", 11), n.Attach("n2", 12)}
	echo := make([]*echoer, len(nodes))
	probe := make([]*prober, len(nodes))
	for i, x := range nodes {
		echo[i], probe[i] = startEcho(t, x), newProber(t, x)
	}
	// want[i][j]: node i reaches node j.
	check := func(what string, want [3][3]bool) {
		t.Helper()
		for i := range nodes {
			for j := range nodes {
				if i == j {
					continue
				}
				if got := probe[i].reaches(t, n, echo[j]); got != want[i][j] {
					t.Errorf("%s: %s → %s reachable %v, want %v\n%s", what, nodes[i].Name, nodes[j].Name, got, want[i][j], n.Rules())
				}
			}
		}
	}
	all := [3][3]bool{{true, true, true}, {true, true, true}, {true, true, true}}
	check("start", all)

	n.Isolate(nodes[0])
	check("n0 isolated", [3][3]bool{{true, false, false}, {false, true, true}, {false, true, true}})
	n.Heal()
	check("healed", all)

	n.Partition([]*cluster.NetNode{nodes[0], nodes[1]}, []*cluster.NetNode{nodes[2]})
	check("majority n0+n1 | minority n2", [3][3]bool{{true, true, false}, {true, true, false}, {false, false, true}})
	n.Heal()
	check("healed again", all)

	// Relay-only: no UDP between nodes, but the hub (where the relay runs) answers TCP.
	n.RelayOnly(true)
	check("relay only", [3][3]bool{{true, false, false}, {false, true, false}, {false, false, true}})
	var ln net.Listener
	if err := n.Hub.Do(func() (err error) { ln, err = net.Listen("tcp4", n.HubAddr().String()+":0"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	wg.Go(func() {
		if c, err := ln.Accept(); err == nil {
			c.Close()
		}
	})
	c, err := nodes[1].DialContext(t.Context(), "tcp4", ln.Addr().String())
	if err != nil {
		t.Fatalf("relay-only: node → hub TCP: %v", err)
	}
	c.Close()
	wg.Wait()
	n.RelayOnly(false)
	check("direct again", all)
}

// TestNetworkNAT: a node behind its own NAT router (AttachNAT) reaches the bridge with its
// router's address, unsolicited packets to that address are dropped by the router, a mapping
// its own packet opened lets the answer (and later packets from that peer) in, and the fault
// rules match its public address.
func TestNetworkNAT(t *testing.T) {
	n := cluster.NewNetwork(t)
	countPings(t, n)
	pub, priv := n.Attach("pub", 20), n.AttachNAT("priv", 21)
	if priv.Public != netip.MustParseAddr("10.99.0.21") || priv.Addr != netip.MustParseAddr("10.121.0.2") || priv.NAT == nil {
		t.Fatalf("NAT node: addr %v public %v", priv.Addr, priv.Public)
	}
	pubEcho, privEcho := startEcho(t, pub), startEcho(t, priv)

	// Outbound: the echo server sees the router's address.
	probe := newProber(t, priv)
	if !probe.reaches(t, n, pubEcho) {
		t.Fatal("the NAT'd node does not reach a node on the bridge")
	}
	var from string
	pubEcho.mu.Lock()
	from = pubEcho.lastFrom
	pubEcho.mu.Unlock()
	if host, _, _ := net.SplitHostPort(from); host != priv.Public.String() {
		t.Fatalf("the bridge saw the NAT'd node's packet from %s, want its router's %s", from, priv.Public)
	}

	// Unsolicited inbound to the router's address: dropped there, never delivered.
	var pc net.PacketConn
	if err := pub.Do(func() (err error) { pc, err = net.ListenPacket("udp4", pub.Addr.String()+":9100"); return }); err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	to := &net.UDPAddr{IP: priv.Public.AsSlice(), Port: 9000}
	natDrops := func() int64 {
		out, err := priv.NAT.Output("nft", "list", "table", "ip", "filter")
		if err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		var total int64
		f := strings.Fields(string(out))
		for i := 0; i+2 < len(f); i++ {
			if f[i] == "counter" && f[i+1] == "packets" {
				v, _ := strconv.ParseInt(f[i+2], 10, 64)
				total += v
			}
		}
		return total
	}
	before := natDrops()
	cluster.WaitFor(t, "the router dropping an unsolicited packet", 20*time.Second, func() (bool, string) {
		if _, err := pc.WriteTo([]byte("unsolicited"), to); err != nil {
			t.Fatal(err)
		}
		return natDrops() > before, ""
	})
	if privEcho.received("unsolicited") != 0 {
		t.Fatal("an unsolicited packet went through the NAT")
	}

	// Hole punching: the NAT'd node's echo socket sends to pub:9100 first; pub's packets to the
	// mapping (the same port: masquerade keeps it) then arrive.
	if _, err := privEcho.pc.WriteTo([]byte("punch"), &net.UDPAddr{IP: pub.Addr.AsSlice(), Port: 9100}); err != nil {
		t.Fatal(err)
	}
	cluster.WaitFor(t, "a packet through the punched mapping", 20*time.Second, func() (bool, string) {
		if _, err := pc.WriteTo([]byte("through"), to); err != nil {
			t.Fatal(err)
		}
		time.Sleep(50 * time.Millisecond)
		return privEcho.received("through") > 0, ""
	})

	// The fault rules match the public address.
	n.Isolate(priv)
	if probe.reaches(t, n, pubEcho) {
		t.Fatalf("isolated NAT'd node still reaches the bridge\n%s", n.Rules())
	}
	n.Heal()
	if !probe.reaches(t, n, pubEcho) {
		t.Fatal("healed NAT'd node does not reach the bridge")
	}
}
