package interop

import (
	"bytes"
	"context"
	"encoding/base32"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/ticket"
)

// TestTicketNodeAddrMatchesRust checks the node ticket's NodeAddr bytes against the Rust node:
// the npm binding has no NodeTicket, but its BlobTicket embeds the same postcard NodeAddr
// right after the variant byte. A Rust-made blob ticket must carry exactly our NodeAddr bytes,
// and a blob ticket we build around our NodeAddr bytes must parse in Rust to the same address.
func TestTicketNodeAddrMatchesRust(t *testing.T) {
	irohnode.RequireNamespace(t)
	d := irohnode.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	hash := strings.Repeat("ab", 32)
	hashBytes := bytes.Repeat([]byte{0xab}, 32)
	for _, a := range []endpoint.NodeAddr{
		{ID: key.GenerateSecretKey().Public()},
		{ID: key.GenerateSecretKey().Public(), RelayURL: "http://127.0.0.1:3340/", Direct: []netip.AddrPort{
			netip.MustParseAddrPort("[::1]:4433"), netip.MustParseAddrPort("127.0.0.1:1024"), netip.MustParseAddrPort("10.1.2.3:9"),
		}},
	} {
		ours := ticket.Bytes(a)[1:] // NodeAddr: node id + AddrInfo

		// Rust → Go.
		var made struct{ Ticket string }
		addrs := make([]string, len(a.Direct))
		for i, ap := range a.Direct {
			addrs[i] = ap.String()
		}
		in := irohnode.NodeAddr{NodeID: a.ID.String(), RelayURL: a.RelayURL, Addresses: addrs}
		if err := d.Call(ctx, "blobTicket", map[string]any{"addr": in, "hash": hash}, &made); err != nil {
			t.Fatal(err)
		}
		raw, err := b32.DecodeString(strings.ToUpper(strings.TrimPrefix(made.Ticket, "blob")))
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) < 1+len(ours) || !bytes.Equal(raw[1:1+len(ours)], ours) {
			t.Fatalf("Rust's NodeAddr bytes\n %x\nours\n %x", raw, ours)
		}

		// Go → Rust: our NodeAddr inside a blob ticket (format Raw = 0, then the hash).
		blob := append(append(append([]byte{0}, ours...), 0), hashBytes...)
		var parsed struct {
			NodeID, RelayURL, Hash string
			Addresses              []string
		}
		text := "blob" + strings.ToLower(b32.EncodeToString(blob))
		if err := d.Call(ctx, "parseBlobTicket", map[string]any{"ticket": text}, &parsed); err != nil {
			t.Fatalf("Rust refused our NodeAddr bytes: %v", err)
		}
		got := slices.Clone(parsed.Addresses)
		slices.Sort(got)
		want := slices.Clone(addrs)
		slices.Sort(want)
		if parsed.NodeID != a.ID.String() || parsed.RelayURL != a.RelayURL || !slices.Equal(got, want) {
			t.Fatalf("Rust read %+v, want %+v", parsed, in)
		}
	}
}
