package interop

import (
	"context"
	"crypto/rand"
	"slices"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest"
	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/disco"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/relay"
	"github.com/meshkafka/meshkafka/mesh/relay/relayhttp"
	"github.com/meshkafka/meshkafka/mesh/relay/relayserver"
)

// startGoRelay runs our relay server (the code cmd/relay serves) on plain HTTP on loopback and
// returns it with its URL, http://127.0.0.1:PORT.
func startGoRelay(t testing.TB) (*relayserver.Server, string) { return meshtest.StartRelay(t) }

// relayItem is one datagram a relay client received, with its source.
type relayItem struct {
	from relay.NodeKey
	data []byte
}

// relayReader reads every frame of c on its own goroutine (stopped at cleanup) and delivers
// the datagrams inside RecvPacket payloads, split on iroh's u16-LE length prefixes.
func relayReader(t testing.TB, c *relay.Client) <-chan relayItem {
	t.Helper()
	out := make(chan relayItem, 256)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			f, err := c.Recv()
			if err != nil {
				return
			}
			if f.Type != relay.FrameRecvPacket {
				continue
			}
			items, err := relay.SplitDatagrams(f.Data, nil)
			if err != nil {
				t.Errorf("payload from %x does not split into datagrams: %v", f.Key[:4], err)
			}
			for _, it := range items {
				select {
				case out <- relayItem{from: f.Key, data: slices.Clone(it)}:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		_ = c.Close()
		<-done
	})
	return out
}

// TestRelayRustNodeThroughGoRelay: an unmodified Rust node given only our node id and our
// relay's http:// URL connects to our relay server (its ClientInfo is verified by our
// server), sends us a disco Ping, a CallMeMaybe and QUIC Initials in iroh's datagram
// framing, all of which we open; it answers our sealed disco Ping over the relay with a Pong
// we open, without ever having been told about us; and it records our relay as our path.
func TestRelayRustNodeThroughGoRelay(t *testing.T) {
	ctx := nsCtx(t, 60*time.Second)
	srv, relayURL := startGoRelay(t)

	goKey := key.GenerateSecretKey()
	goID := goKey.Public()
	gc, err := relayhttp.Dial(ctx, relayURL, goKey.Ed25519(), relayhttp.Options{})
	if err != nil {
		t.Fatal(err)
	}
	items := relayReader(t, gc)

	rust := rustNode(t, irohnode.NodeOptions{ALPNs: testALPNs})
	rustID, err := key.ParsePublicKey(rust.ID)
	if err != nil {
		t.Fatal(err)
	}
	shared, err := disco.NewShared(goKey.Ed25519(), rustID.Bytes())
	if err != nil {
		t.Fatal(err)
	}

	// The Rust node dials our node id knowing nothing but the relay URL. We never complete
	// QUIC here, so the dial fails after its timeout; cancel it at the end.
	dialCtx, cancelDial := context.WithTimeout(ctx, 30*time.Second)
	dialDone := make(chan error, 1)
	go func() {
		_, err := rust.Connect(dialCtx, irohnode.NodeAddr{NodeID: goID.String(), RelayURL: relayURL, Addresses: []string{}}, alpnEcho, "")
		dialDone <- err
	}()
	defer func() {
		cancelDial()
		<-dialDone
	}()

	var (
		ping    *disco.Ping
		cmm     *disco.CallMeMaybe
		initial bool
	)
	lookup := func(from [32]byte) (*disco.Shared, error) {
		if from != rustID.Bytes() {
			t.Fatalf("disco from unexpected sender %x", from[:4])
		}
		return shared, nil
	}
	deadline := time.After(20 * time.Second)
	for ping == nil || cmm == nil || !initial {
		select {
		case it := <-items:
			if it.from != rustID.Bytes() {
				t.Fatalf("packet from unexpected node %x", it.from[:4])
			}
			if !disco.LooksLikeDisco(it.data) {
				// QUIC long header, padded to 1200 bytes: the Initial.
				if len(it.data) >= 1200 && it.data[0]&0x80 != 0 {
					initial = true
				}
				continue
			}
			_, m, err := disco.Decode(it.data, lookup)
			if err != nil {
				t.Fatalf("cannot open the Rust node's disco packet: %v", err)
			}
			switch m := m.(type) {
			case *disco.Ping:
				ping = m
			case *disco.CallMeMaybe:
				cmm = m
			}
		case <-deadline:
			t.Fatalf("from the Rust node: ping %v, call-me-maybe %v, QUIC initial %v", ping != nil, cmm != nil, initial)
		}
	}
	if st := srv.Stats(); st.Accepted != 2 || st.HandshakeFailed != 0 {
		t.Fatalf("relay stats %+v: want the Go and the Rust client accepted, no refusal", st)
	}
	if ping.NodeKey != rustID.Bytes() {
		t.Fatalf("ping carries node key %x", ping.NodeKey[:4])
	}
	if len(cmm.Addrs) == 0 {
		t.Fatal("call-me-maybe without addresses")
	}
	for _, a := range cmm.Addrs {
		if !slices.Contains(rust.Addr.Addresses, a.String()) {
			t.Errorf("call-me-maybe address %v is not one of the node's %v", a, rust.Addr.Addresses)
		}
	}
	t.Logf("Rust node: ping tx %x, call-me-maybe %v, QUIC initial seen", ping.TxID, cmm.Addrs)

	// Answer its ping, then ping it ourselves; both sealed by us, over the relay.
	pong := disco.Encode(goID.Bytes(), shared, &disco.Pong{TxID: ping.TxID, RelayURL: relayURL + "/"})
	if err := gc.SendDatagram(rustID.Bytes(), pong); err != nil {
		t.Fatal(err)
	}
	myPing := &disco.Ping{NodeKey: goID.Bytes()}
	_, _ = rand.Read(myPing.TxID[:])
	if err := gc.SendDatagram(rustID.Bytes(), disco.Encode(goID.Bytes(), shared, myPing)); err != nil {
		t.Fatal(err)
	}
	var got *disco.Pong
	deadline = time.After(15 * time.Second)
	for got == nil {
		select {
		case it := <-items:
			if !disco.LooksLikeDisco(it.data) {
				continue
			}
			_, m, err := disco.Decode(it.data, lookup)
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := m.(*disco.Pong); ok && p.TxID == myPing.TxID {
				got = p
			}
		case <-deadline:
			t.Fatal("the Rust node did not answer our disco ping over the relay")
		}
	}
	// The Rust node saw our ping come in over our relay and says so.
	if got.RelayURL != relayURL+"/" {
		t.Fatalf("pong observed source %q / %v, want relay %s/", got.RelayURL, got.Addr, relayURL)
	}

	infos, err := rust.RemoteInfos(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ri := range infos {
		if ri.NodeID == goID.String() {
			found = true
			if ri.RelayURL != relayURL+"/" {
				t.Errorf("Rust node has relay %q for us, want %s/", ri.RelayURL, relayURL)
			}
			t.Logf("Rust node's view of us: %+v", ri)
		}
	}
	if !found {
		t.Errorf("Rust node does not list us: %+v", infos)
	}
}
