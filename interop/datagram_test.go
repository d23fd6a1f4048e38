package interop

import (
	"testing"
	"time"
)

// TestDatagramsGoRust: QUIC datagrams flow both ways between our endpoint and Rust iroh.
func TestDatagramsGoRust(t *testing.T) {
	ctx, rust := rustPeer(t, 60*time.Second)
	g := newGoNode(t, nil)
	if err := rust.AddNodeAddr(ctx, irohAddr(g.ep)); err != nil {
		t.Fatal(err)
	}
	c, err := g.ep.Dial(ctx, meshAddr(t, rust), alpnSink)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	e, err := rust.WaitAccepted(ctx, alpnSink)
	if err != nil {
		t.Fatal(err)
	}
	rc := rust.AcceptedConn(e)
	if err := c.QUIC().SendDatagram([]byte("go to rust")); err != nil {
		t.Fatal(err)
	}
	if got, err := rc.ReadDatagram(ctx); err != nil || string(got) != "go to rust" {
		t.Fatalf("Rust read %q, %v", got, err)
	}
	if err := rc.SendDatagram(ctx, []byte("rust to go")); err != nil {
		t.Fatalf("Rust send: %v", err)
	}
	if got, err := c.QUIC().ReceiveDatagram(ctx); err != nil || string(got) != "rust to go" {
		t.Fatalf("Go read %q, %v", got, err)
	}
}
