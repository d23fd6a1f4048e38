package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/ticket"
)

// pathLine returns the "path: …" line of out, failing the test if there is none.
func pathLine(t *testing.T, out string) string {
	t.Helper()
	for l := range strings.Lines(out) {
		if strings.HasPrefix(l, "path: ") {
			return strings.TrimSpace(l)
		}
	}
	t.Fatalf("no path line in %q", out)
	return ""
}

// Echo on loopback prints a direct path at the server's real address.
func TestEchoPrintsDirectPath(t *testing.T) {
	addr := serve(t)
	_, hostport, _ := strings.Cut(addr, "@")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"echo", addr, "-msg", "ping"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := pathLine(t, out.String()); !strings.HasPrefix(got, "path: direct "+hostport+" rtt ") {
		t.Fatalf("path line %q, want direct %s", got, hostport)
	}
}

// Echo through the relay only prints the relay path, not magicsock's placeholder address.
func TestEchoPrintsRelayPath(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	addr := serve(t, "-relay", url)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"echo", addr, "-relay", url, "-peer-relay", url, "-relay-only", "-msg", "x"}, &out); err != nil {
		t.Fatal(err)
	}
	if got := pathLine(t, out.String()); !strings.HasPrefix(got, "path: relay "+url+" rtt ") {
		t.Fatalf("path line %q, want relay %s", got, url)
	}
}

func TestEchoUniAndDatagram(t *testing.T) {
	addr := serve(t)
	for _, mode := range []string{"uni", "datagram"} {
		var out bytes.Buffer
		msg := "over " + mode
		if err := run(t.Context(), []string{"echo", addr, "-" + mode, "-msg", msg}, &out); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if !strings.Contains(out.String(), " "+mode+" echo ") || !strings.HasSuffix(strings.TrimSpace(out.String()), ": "+msg) {
			t.Fatalf("%s echo output %q", mode, out.String())
		}
	}
	if err := run(t.Context(), []string{"echo", addr, "-uni", "-datagram"}, &bytes.Buffer{}); err == nil {
		t.Fatal("-uni with -datagram accepted")
	}
	// A datagram larger than a QUIC packet is refused with an error, not lost silently.
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, make([]byte, 4000), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := run(t.Context(), []string{"echo", addr, "-datagram", "-file", big}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "datagram") {
		t.Fatalf("oversized datagram: %v", err)
	}
}

// Uni and datagram echo also work through the relay.
func TestEchoUniAndDatagramViaRelay(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	addr := serve(t, "-relay", url)
	for _, mode := range []string{"uni", "datagram"} {
		var out bytes.Buffer
		if err := run(t.Context(), []string{"echo", addr, "-" + mode, "-peer-relay", url, "-relay-only", "-msg", "r"}, &out); err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		if got := pathLine(t, out.String()); !strings.HasPrefix(got, "path: relay "+url) {
			t.Fatalf("%s path %q", mode, got)
		}
	}
}

// Binary payloads from stdin (-file -) and from a file come back intact in every mode.
func TestEchoBinaryPayload(t *testing.T) {
	addr := serve(t)
	payload := make([]byte, 300<<10)
	rand.Read(payload)
	payload[0], payload[1], payload[2] = 0, '\n', 0xff
	file := filepath.Join(t.TempDir(), "blob")
	if err := os.WriteFile(file, payload, 0o600); err != nil {
		t.Fatal(err)
	}
	small := payload[:900]
	cases := []struct {
		args []string
		in   []byte
		want []byte
	}{
		{[]string{"-file", "-"}, payload, payload},
		{[]string{"-file", "-", "-uni"}, payload, payload},
		{[]string{"-file", file}, nil, payload},
		{[]string{"-file", "-", "-datagram"}, small, small},
	}
	for _, c := range cases {
		var out bytes.Buffer
		err := runIO(t.Context(), append([]string{"echo", addr}, c.args...), bytes.NewReader(c.in), &out)
		if err != nil {
			t.Fatalf("%v: %v", c.args, err)
		}
		want := fmt.Sprintf("%d bytes intact (sha256 %x)", len(c.want), sha256.Sum256(c.want))
		if !strings.HasSuffix(strings.TrimSpace(out.String()), want) {
			t.Fatalf("%v: output %q, want it to end %q", c.args, out.String(), want)
		}
	}
}

// ping prints path and round per line; through the relay only, every round is relayed.
func TestPingRelayOnly(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	addr := serve(t, "-relay", url)
	var out bytes.Buffer
	if err := run(t.Context(), []string{"ping", addr, "-peer-relay", url, "-relay-only", "-count", "3", "-interval", "1ms"}, &out); err != nil {
		t.Fatal(err)
	}
	var rounds int
	for l := range strings.Lines(out.String()) {
		if strings.HasPrefix(l, "seq=") {
			rounds++
			if !strings.Contains(l, "path: relay "+url+" rtt ") {
				t.Fatalf("round line %q, want relay", l)
			}
		}
		if strings.HasPrefix(l, "path switched") {
			t.Fatalf("relay-only ping switched path: %q", l)
		}
	}
	if rounds != 3 {
		t.Fatalf("%d rounds in %q", rounds, out.String())
	}
}

// Dialed by NodeId and relay URL only (a ticket without direct addresses), ping goes on until
// the magicsock finds the direct path (the server's addresses come through the relay in disco
// CallMeMaybe); every change of path kind on the way is announced, and the last round is
// direct at the server's address. (On loopback the upgrade usually completes during the
// handshake, so the first round is often direct already; TestPathTracker covers the switch
// line itself.)
func TestPingUntilDirect(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	addr := serve(t, "-relay", url)
	id, hostport, _ := strings.Cut(addr, "@")
	pk, err := key.ParsePublicKey(id)
	if err != nil {
		t.Fatal(err)
	}
	tk := ticket.Encode(endpoint.NodeAddr{ID: pk, RelayURL: url})
	var out bytes.Buffer
	if err := run(t.Context(), []string{"ping", tk, "-relay", url, "-count", "0", "-interval", "5ms", "-until-direct"}, &out); err != nil {
		t.Fatal(err)
	}
	t.Log(out.String())
	var kinds []string
	var switches int
	for l := range strings.Lines(out.String()) {
		switch {
		case strings.HasPrefix(l, "seq="):
			_, p, _ := strings.Cut(l, "path: ")
			k, _, _ := strings.Cut(p, " ")
			kinds = append(kinds, k)
		case strings.HasPrefix(l, "path switched: "):
			switches++
			if !strings.Contains(l, "-> direct "+hostport) {
				t.Fatalf("switch line %q", l)
			}
		}
	}
	if len(kinds) == 0 || kinds[len(kinds)-1] != "direct" {
		t.Fatalf("ping did not end on a direct path: %q", out.String())
	}
	want := 0
	for i := 1; i < len(kinds); i++ {
		if kinds[i] != kinds[i-1] {
			want++
		}
	}
	if switches != want {
		t.Fatalf("%d switch lines for %d changes in %q", switches, want, out.String())
	}
	if !strings.Contains(out.String(), "path: direct "+hostport+" rtt ") {
		t.Fatalf("direct path not at %s: %q", hostport, out.String())
	}
}

// The switch detection itself, on a relay -> direct -> relay sequence.
func TestPathTracker(t *testing.T) {
	var tr pathTracker
	relay := endpoint.ConnPath{Kind: endpoint.PathRelay, RelayURL: "http://r"}
	direct := endpoint.ConnPath{Kind: endpoint.PathDirect, Remote: netip.MustParseAddrPort("192.0.2.1:7")}
	got := []string{tr.observe(relay), tr.observe(relay), tr.observe(direct), tr.observe(direct), tr.observe(relay)}
	want := []string{"", "", "path switched: relay -> direct 192.0.2.1:7 rtt 0s", "", "path switched: direct -> relay http://r rtt 0s"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("observation %d: %q, want %q", i, got[i], want[i])
		}
	}
}

// With -mdns on both sides (an in-memory LAN), echo reaches the server by bare NodeId, and
// id -mdns lists the server.
func TestEchoByNodeIDOverMDNS(t *testing.T) {
	var lan meshtest.Link
	mdnsConns = lan.MDNSConns
	t.Cleanup(func() { mdnsConns = nil })
	addr := serve(t, "-mdns")
	id, _, _ := strings.Cut(addr, "@")
	var out bytes.Buffer
	if err := run(t.Context(), []string{"echo", id, "-mdns", "-bind", "127.0.0.1:0", "-msg", "lan"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(out.String()), ": lan") || !strings.Contains(out.String(), "path: direct 127.0.0.1:") {
		t.Fatalf("echo output %q", out.String())
	}
	out.Reset()
	if err := run(t.Context(), []string{"id", "-mdns", "-bind", "127.0.0.1:0", "-mdns-wait", "20s"}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "lan:     "+id+" ") {
		t.Fatalf("id -mdns did not list %s: %q", id, out.String())
	}
	// Without -mdns a bare NodeId is no address.
	if err := run(t.Context(), []string{"echo", id}, &bytes.Buffer{}); err == nil {
		t.Fatal("bare NodeId accepted without -mdns")
	}
}

// gatedUDP drops every packet written while its gate is closed (a firewall on the direct
// path); reads pass.
type gatedUDP struct {
	net.PacketConn
	open atomic.Bool
}

func (g *gatedUDP) WriteTo(b []byte, addr net.Addr) (int, error) {
	if !g.open.Load() {
		return len(b), nil
	}
	return g.PacketConn.WriteTo(b, addr)
}

// lineTrigger calls fn once, when a written line starts with prefix.
type lineTrigger struct {
	mu     sync.Mutex
	b      bytes.Buffer
	prefix string
	fn     func()
}

func (w *lineTrigger) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if w.fn != nil {
		for l := range strings.Lines(w.b.String()) {
			if strings.HasPrefix(l, w.prefix) {
				w.fn()
				w.fn = nil
				break
			}
		}
	}
	return len(p), nil
}

// With the client's direct UDP blocked, ping's first rounds go through the relay; once the
// block is lifted (after round 2 is printed) the magicsock finds the direct path, ping prints
// the switch and stops on the first direct round.
func TestPingSwitchesRelayToDirect(t *testing.T) {
	_, url := meshtest.StartRelay(t)
	addr := serve(t, "-relay", url)
	_, hostport, _ := strings.Cut(addr, "@")
	gate := make(chan *gatedUDP, 1)
	udpHook = func(pc net.PacketConn) net.PacketConn {
		g := &gatedUDP{PacketConn: pc}
		gate <- g
		return g
	}
	t.Cleanup(func() { udpHook = nil })
	out := &lineTrigger{prefix: "seq=2 ", fn: func() { (<-gate).open.Store(true) }}
	if err := run(t.Context(), []string{"ping", addr, "-relay", url, "-peer-relay", url, "-count", "0", "-interval", "100ms", "-until-direct"}, out); err != nil {
		t.Fatal(err)
	}
	text := out.b.String()
	t.Log(text)
	var kinds []string
	for l := range strings.Lines(text) {
		if strings.HasPrefix(l, "seq=") {
			_, p, _ := strings.Cut(l, "path: ")
			k, _, _ := strings.Cut(p, " ")
			kinds = append(kinds, k)
		}
	}
	if len(kinds) < 3 || kinds[0] != "relay" || kinds[1] != "relay" || kinds[len(kinds)-1] != "direct" {
		t.Fatalf("want relay rounds, then direct: %q", kinds)
	}
	if !strings.Contains(text, "path switched: relay -> direct "+hostport+" rtt ") || strings.Count(text, "path switched") != 1 {
		t.Fatalf("switch not announced once: %q", text)
	}
}
