package ticket

import (
	"bytes"
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// TestRustGolden is iroh-base 0.28.1's test_ticket_base32: the same node address must give
// exactly the bytes of its hexdump, and the text must parse back.
func TestRustGolden(t *testing.T) {
	id, err := key.ParsePublicKey("ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6")
	if err != nil {
		t.Fatal(err)
	}
	a := endpoint.NodeAddr{ID: id, RelayURL: "http://derp.me./", Direct: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1024")}}
	want, _ := hex.DecodeString("00" +
		"ae58ff8833241ac82d6ff7611046ed67b5072d142c588d0063e942d9a75502b6" +
		"01" + "10" + "687474703a2f2f646572702e6d652e2f" +
		"01" + "00" + "7f000001" + "8008")
	if got := Bytes(a); !bytes.Equal(got, want) {
		t.Fatalf("bytes\n got %x\nwant %x", got, want)
	}
	s := Encode(a)
	if !strings.HasPrefix(s, "node") || strings.ToLower(s) != s {
		t.Fatalf("text %q: want lowercase with the node prefix", s)
	}
	back, err := Parse(strings.ToUpper(s[:4]) + s[4:])
	if err != nil {
		t.Fatal(err)
	}
	if back.ID != a.ID || back.RelayURL != a.RelayURL || len(back.Direct) != 1 || back.Direct[0] != a.Direct[0] {
		t.Fatalf("parsed %+v, want %+v", back, a)
	}
}

func TestParseAddrForms(t *testing.T) {
	sk := key.GenerateSecretKey()
	a := endpoint.NodeAddr{ID: sk.Public(), Direct: []netip.AddrPort{
		netip.MustParseAddrPort("[::1]:7"), netip.MustParseAddrPort("10.0.0.1:9"), netip.MustParseAddrPort("10.0.0.1:8"),
	}}
	got, err := ParseAddr(Encode(a))
	if err != nil {
		t.Fatal(err)
	}
	// Rust's set order: V4 before V6, then ip, then port.
	want := []string{"10.0.0.1:8", "10.0.0.1:9", "[::1]:7"}
	for i, ap := range got.Direct {
		if ap.String() != want[i] {
			t.Fatalf("addresses %v, want %v", got.Direct, want)
		}
	}
	for _, s := range []string{sk.Public().String(), sk.Public().String() + "@127.0.0.1:5"} {
		if b, err := ParseAddr(s); err != nil || b.ID != a.ID {
			t.Fatalf("ParseAddr(%q) = %v, %v", s, b, err)
		}
	}
	bad := []string{
		"node" + strings.Repeat("a", 60),                                                 // not base32 of a ticket
		Encode(a)[:len(Encode(a))-3],                                                     // cut
		"node" + strings.ToLower(b32.EncodeToString(append(Bytes(a), 0))),                // trailing byte
		"node" + strings.ToLower(b32.EncodeToString(append([]byte{1}, Bytes(a)[1:]...))), // unknown variant
		unusedBits(t, sk.Public()),                                                       // unused bits set in the last character
	}
	for _, s := range bad {
		if _, err := Parse(s); err == nil {
			t.Errorf("Parse(%q) accepted", s)
		}
	}
}

func FuzzParse(f *testing.F) {
	sk := key.GenerateSecretKey()
	f.Add(Encode(endpoint.NodeAddr{ID: sk.Public()}))
	f.Add(Encode(endpoint.NodeAddr{ID: sk.Public(), RelayURL: "https://relay.example./", Direct: []netip.AddrPort{netip.MustParseAddrPort("[2001:db8::1]:443")}}))
	f.Add("node")
	f.Fuzz(func(t *testing.T, s string) {
		a, err := Parse(s)
		if err != nil {
			return
		}
		s2 := Encode(a)
		if !strings.EqualFold(strings.TrimSpace(s), s2) {
			t.Fatalf("accepted %q re-encodes to %q", s, s2)
		}
	})
}

// unusedBits is a valid one-address ticket (41 bytes: the last base32 character carries two
// unused bits) with those bits set.
func unusedBits(t *testing.T, id key.PublicKey) string {
	s := Encode(endpoint.NodeAddr{ID: id, Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:9")}})
	if len(Bytes(endpoint.NodeAddr{ID: id, Direct: []netip.AddrPort{netip.MustParseAddrPort("10.0.0.1:9")}}))*8%5 == 0 {
		t.Fatal("test ticket has no unused bits")
	}
	last := strings.IndexByte("abcdefghijklmnopqrstuvwxyz234567", s[len(s)-1])
	return s[:len(s)-1] + string("abcdefghijklmnopqrstuvwxyz234567"[last|1])
}
