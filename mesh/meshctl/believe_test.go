package meshctl

import (
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Digests of nodes Believe refuses change nothing (300 phantom brokers: no directory entry,
// no OnChange, no address-book entry), and the directory never holds more than MaxNodes
// nodes however many fresh keys announce themselves; expired entries make room again.
func TestBelieveAndMaxNodes(t *testing.T) {
	ep := magicep.Loopback(t)
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	members := map[key.PublicKey]bool{}
	var changes []Change
	n := &Node{ep: ep, dir: NewDirectory("m", time.Minute), cfg: Config{Role: RoleGateway, MeshID: "m", Staleness: time.Minute,
		MaxNodes: 3, Clock: clk, Logger: slog.New(slog.DiscardHandler),
		Believe:  func(d Digest) bool { return members[d.Node] },
		OnChange: func(c Change) { changes = append(changes, c) }}}
	seq := uint64(1)
	announce := func(sk key.SecretKey) {
		seq++
		b, err := Encode(Digest{Node: sk.Public(), Role: RoleBroker, MeshID: "m", Seq: seq,
			Addrs: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:9")}}, sk)
		if err != nil {
			t.Fatal(err)
		}
		n.receive(b)
	}
	for range 300 {
		announce(key.GenerateSecretKey())
	}
	if n.dir.Len() != 0 || len(changes) != 0 {
		t.Fatalf("phantoms: %d entries, %d changes", n.dir.Len(), len(changes))
	}
	if st := n.Stats(); st.NotBelieved != 300 || st.Believed != 0 {
		t.Fatalf("stats after 300 phantoms: %+v", st)
	}
	n.receive([]byte("not a digest"))
	if st := n.Stats(); st.Malformed != 1 {
		t.Fatalf("stats after a garbage frame: %+v", st)
	}
	var keys []key.SecretKey
	for range 5 {
		sk := key.GenerateSecretKey()
		members[sk.Public()] = true
		keys = append(keys, sk)
		announce(sk)
	}
	if n.dir.Len() != 3 || len(changes) != 3 {
		t.Fatalf("members past MaxNodes: %d entries, %d changes", n.dir.Len(), len(changes))
	}
	if st := n.Stats(); st.Believed != 3 || st.DirectoryFull != 2 {
		t.Fatalf("stats after 5 members with room for 3: %+v", st)
	}
	announce(keys[0]) // a known node still updates
	clk.Advance(time.Minute)
	announce(keys[4]) // the others expired: room again
	if _, ok := n.dir.Get(clk.Now(), keys[4].Public()); !ok || n.dir.Len() != 1 {
		t.Fatalf("after expiry: %d entries, member 4 known: %v", n.dir.Len(), ok)
	}
}
