package interop

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os/exec"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/interop/cluster"
	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
	"github.com/meshkafka/meshkafka/mesh/stun"
)

// link joins a and b with a veth pair and gives each end an address.
func link(t *testing.T, a *cluster.Netns, aIf, aAddr string, b *cluster.Netns, bIf, bAddr string) {
	t.Helper()
	out, err := exec.Command("ip", "link", "add", aIf, "type", "veth", "peer", "name", bIf).CombinedOutput()
	if err != nil {
		t.Fatalf("veth %s-%s: %v: %s", aIf, bIf, err, out)
	}
	for _, e := range []struct {
		ns        *cluster.Netns
		ifc, addr string
	}{{a, aIf, aAddr}, {b, bIf, bAddr}} {
		if out, err := exec.Command("ip", "link", "set", e.ifc, "netns", e.ns.Pid()).CombinedOutput(); err != nil {
			t.Fatalf("move %s: %v: %s", e.ifc, err, out)
		}
		e.ns.Run(t, "ip", "addr", "add", e.addr, "dev", e.ifc)
		e.ns.Run(t, "ip", "link", "set", e.ifc, "up")
	}
}

func natNode(t *testing.T, ns *cluster.Netns, bind, relayURL, stunAddr string) (*relayPeer, *magicsock.Conn) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() (err error) { pc, err = net.ListenPacket("udp4", bind); return }); err != nil {
		t.Fatal(err)
	}
	sk := key.GenerateSecretKey()
	p := startRelayPeer(t, magicsock.Options{
		SecretKey: sk, UDP: pc, HomeRelay: relayURL, STUNServers: []string{stunAddr},
		DialRelay: func(ctx context.Context, url string, priv ed25519.PrivateKey) (*relay.Client, error) {
			var c *relay.Client
			err := ns.Do(func() (err error) { c, err = relayhttp.Dial(ctx, url, priv, relayhttp.Options{}); return })
			return c, err
		},
	})
	return p, p.ms
}

// TestRelayNATTopology builds a small internet in network namespaces: a public network with
// our relay and STUN server, and two private networks behind two NAT routers (nftables
// masquerade). Two Go nodes that know each other only by node id and relay URL connect
// through the relay, punch through both NATs with STUN + disco and move to the direct path;
// then UDP between the NATs is blocked mid-transfer, the connection falls back to the relay
// with no stream error, comes back direct when unblocked, and a 64 MiB echo arrives intact.
func TestRelayNATTopology(t *testing.T) {
	irohnode.RequireNamespace(t)
	cluster.RequireNamespaces(t) // root, nft, nsenter, unshare and ip for natTopology
	inet, ha, hb := natTopology(t)

	// Relay and STUN on the public side.
	srv := relayserver.New(relayserver.Config{})
	var ln net.Listener
	var spc net.PacketConn
	if err := inet.Do(func() (err error) {
		if ln, err = net.Listen("tcp4", "100.64.1.1:0"); err != nil {
			return err
		}
		spc, err = net.ListenPacket("udp4", "100.64.1.1:3478")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 5 * time.Second}
	stunSrv := stun.NewServer(spc, nil)
	var swg sync.WaitGroup
	swg.Go(func() { _ = hs.Serve(ln) })
	swg.Go(func() { _ = stunSrv.Serve() })
	t.Cleanup(func() {
		_ = hs.Close()
		_ = srv.Close()
		_ = stunSrv.Close()
		swg.Wait()
	})
	relayURL := "http://" + ln.Addr().String()

	a, msA := natNode(t, ha, "10.0.1.2:0", relayURL, "100.64.1.1:3478")
	b, msB := natNode(t, hb, "10.0.2.2:0", relayURL, "100.64.1.1:3478")
	meshtest.ServeEcho(t, b.tr, b.sk, alpnEcho, relayQUICConf)

	ctx := ctxFor(t, 180*time.Second)
	aCert, _ := meshtls.GenerateCertificate(a.sk)
	addr := msA.AddNodeAddr(b.sk.Public(), relayURL, nil)
	conn, err := a.tr.Dial(ctx, addr, meshtls.ClientConfig(aCert, b.sk.Public(), alpnEcho), relayQUICConf)
	if err != nil {
		t.Fatalf("dial through the relay: %v", err)
	}
	defer conn.CloseWithError(0, "")
	echoFromGo(ctx, t, conn, 64<<10)

	waitDirect := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			pa, _ := msA.Path(b.sk.Public())
			pb, _ := msB.Path(a.sk.Public())
			if pa.Direct.IsValid() == want && (!want || pb.Direct.IsValid()) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("direct=%v not reached: a sees %+v, b sees %+v; a's addrs %v, b's %v", want, pa, pb, msA.DirectAddrs(), msB.DirectAddrs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitDirect(true)
	pa, _ := msA.Path(b.sk.Public())
	pb, _ := msB.Path(a.sk.Public())
	if pa.Direct.Addr() != netip.MustParseAddr("100.64.2.2") || pb.Direct.Addr() != netip.MustParseAddr("100.64.1.2") {
		t.Fatalf("direct paths %v / %v: want the NATs' public addresses", pa.Direct, pb.Direct)
	}
	t.Logf("punched through both NATs: a→%v, b→%v (a advertises %v)", pa.Direct, pb.Direct, msA.DirectAddrs())

	s, err := conn.OpenStreamSync(ctx)
	if err != nil {
		t.Fatal(err)
	}
	const total = 64 << 20
	sent, recv := sha256.New(), sha256.New()
	var got int64
	var readErr error
	var rwg sync.WaitGroup
	rwg.Go(func() { got, readErr = io.Copy(recv, s) })
	chunk := make([]byte, 64<<10)
	start := time.Now()
	for written := 0; written < total; written += len(chunk) {
		for i := range chunk {
			chunk[i] = byte(written>>16 + i*31)
		}
		switch written {
		case total / 4:
			inet.Run(t, "nft", "add rule inet fw filt meta l4proto udp drop")
			t.Log("UDP between the NATs blocked")
			waitDirect(false)
			t.Logf("fell back to the relay after %v", time.Since(start).Round(time.Millisecond))
		case total / 2:
			inet.Run(t, "nft", "flush chain inet fw filt")
			t.Log("UDP unblocked")
			waitDirect(true)
			t.Log("direct again")
		}
		sent.Write(chunk)
		if _, err := s.Write(chunk); err != nil {
			t.Fatalf("write after %d bytes: %v", written, err)
		}
	}
	_ = s.Close()
	rwg.Wait()
	if readErr != nil || got != total || !slices.Equal(sent.Sum(nil), recv.Sum(nil)) {
		t.Fatalf("echo: %d of %d bytes, err %v, checksum match %v", got, total, readErr, slices.Equal(sent.Sum(nil), recv.Sum(nil)))
	}
	t.Logf("64 MiB echoed intact across relay→direct→relay→direct in %v; relay stats %+v", time.Since(start).Round(time.Millisecond), srv.Stats())
}

// natTopology builds two hosts behind two home-router NATs on a small "internet" namespace:
// host-a 10.0.1.2 behind nat-a (public 100.64.1.2), host-b 10.0.2.2 behind nat-b (public
// 100.64.2.2); the internet side is 100.64.1.1 (reachable by both) and drops nothing until a
// test adds rules to its inet fw filt chain. Each NAT drops unsolicited inbound traffic.
func natTopology(t *testing.T) (inet, ha, hb *cluster.Netns) {
	t.Helper()
	inet = cluster.NewNetns(t, "internet")
	ra, rb := cluster.NewNetns(t, "nat-a"), cluster.NewNetns(t, "nat-b")
	ha, hb = cluster.NewNetns(t, "host-a"), cluster.NewNetns(t, "host-b")
	link(t, inet, "i-a", "100.64.1.1/24", ra, "ra-wan", "100.64.1.2/24")
	link(t, inet, "i-b", "100.64.2.1/24", rb, "rb-wan", "100.64.2.2/24")
	link(t, ra, "ra-lan", "10.0.1.1/24", ha, "ha-eth", "10.0.1.2/24")
	link(t, rb, "rb-lan", "10.0.2.1/24", hb, "hb-eth", "10.0.2.2/24")
	for _, r := range []struct {
		ns       *cluster.Netns
		gw, wan  string
		lanRange string
	}{{ra, "100.64.1.1", "ra-wan", "10.0.1.0/24"}, {rb, "100.64.2.1", "rb-wan", "10.0.2.0/24"}} {
		r.ns.Run(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		r.ns.Run(t, "ip", "route", "add", "default", "via", r.gw)
		r.ns.Run(t, "nft", "add table ip nat")
		r.ns.Run(t, "nft", "add chain ip nat post { type nat hook postrouting priority 100 ; }")
		r.ns.Run(t, "nft", "add rule ip nat post ip saddr "+r.lanRange+" oifname "+r.wan+" masquerade")
		// Like a home router, drop unsolicited inbound traffic. Dropping it before conntrack
		// confirms the flow also keeps a peer's early ping from occupying the tuple our own
		// outbound mapping needs (which would make masquerade pick another port).
		r.ns.Run(t, "nft", "add table ip filter")
		r.ns.Run(t, "nft", "add chain ip filter in { type filter hook input priority 0 ; }")
		r.ns.Run(t, "nft", "add rule ip filter in iifname "+r.wan+" ct state new drop")
	}
	inet.Run(t, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	ha.Run(t, "ip", "route", "add", "default", "via", "10.0.1.1")
	hb.Run(t, "ip", "route", "add", "default", "via", "10.0.2.1")
	inet.Run(t, "nft", "add table inet fw")
	inet.Run(t, "nft", "add chain inet fw filt { type filter hook forward priority 0 ; }")
	return inet, ha, hb
}
