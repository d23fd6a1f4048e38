package disco_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/disco"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestMessageGolden uses the vectors of iroh 0.28.1 disco.rs test_to_from_bytes.
func TestMessageGolden(t *testing.T) {
	nodeKey := [32]byte{190, 243, 65, 104, 37, 102, 175, 75, 243, 22, 69, 200, 167, 107, 24, 63, 216, 140, 120, 43, 4, 112, 16, 62, 117, 155, 45, 215, 72, 175, 40, 189}
	tx := [12]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	tests := []struct {
		name string
		m    disco.Message
		want string
	}{
		{"ping", &disco.Ping{TxID: tx, NodeKey: nodeKey},
			"01 00 01 02 03 04 05 06 07 08 09 0a 0b 0c be f3 41 68 25 66 af 4b f3 16 45 c8 a7 6b 18 3f d8 8c 78 2b 04 70 10 3e 75 9b 2d d7 48 af 28 bd"},
		{"pong", &disco.Pong{TxID: tx, Addr: netip.MustParseAddrPort("2.3.4.5:1234")},
			"02 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 00 00 00 00 00 00 00 00 00 00 00 ff ff 02 03 04 05 d2 04"},
		{"pongv6", &disco.Pong{TxID: tx, Addr: netip.MustParseAddrPort("[fed0::12]:6666")},
			"02 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 00 fe d0 00 00 00 00 00 00 00 00 00 00 00 00 00 12 0a 1a"},
		{"call_me_maybe", &disco.CallMeMaybe{Addrs: []netip.AddrPort{}}, "03 00"},
		{"call_me_maybe_endpoints", &disco.CallMeMaybe{Addrs: []netip.AddrPort{
			netip.MustParseAddrPort("1.2.3.4:567"), netip.MustParseAddrPort("[2001::3456]:789")}},
			"03 00 00 00 00 00 00 00 00 00 00 00 ff ff 01 02 03 04 37 02 20 01 00 00 00 00 00 00 00 00 00 00 00 00 34 56 15 03"},
		// Observed from iroh 0.28.1 over our relay: the URL's string form, trailing slash included.
		{"pong_relay", &disco.Pong{TxID: tx, RelayURL: "http://127.0.0.1:3340/"},
			"02 00 01 02 03 04 05 06 07 08 09 0a 0b 0c 01" + hex.EncodeToString([]byte("http://127.0.0.1:3340/"))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.m.AppendTo(nil)
			if want := unhex(t, tt.want); !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			back, err := disco.ParseMessage(got)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.m) {
				t.Fatalf("parse: got %+v, want %+v", back, tt.m)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"", "01", "0101" + strings.Repeat("00", 44), // version 1
		"0400", "01 00" + strings.Repeat("00", 43), // short ping
		"02 00 0102030405060708090a0b0c 00 0000", // short udp addr
		"02 00 0102030405060708090a0b0c 02 0000", // bad addr type
		"02 00 0102030405060708090a0b0c 01 2f2f", // relay url without scheme
		"03 00 00",                               // partial endpoint
	} {
		if _, err := disco.ParseMessage(unhex(t, in)); !errors.Is(err, disco.ErrMalformed) {
			t.Errorf("%q: err = %v", in, err)
		}
	}
	// A longer-than-needed ping is accepted (forward compatibility, as iroh).
	long := append((&disco.Ping{}).AppendTo(nil), 1, 2, 3)
	if _, err := disco.ParseMessage(long); err != nil {
		t.Errorf("long ping: %v", err)
	}
}

// Vectors from libsodium 1.0.18: crypto_sign_seed_keypair, crypto_sign_ed25519_{pk,sk}_to_curve25519,
// crypto_box_curve25519xchacha20poly1305_beforenm and _easy_afternm.
const (
	edA     = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	edB     = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"
	xpkA    = "1b1b58dd50ea14b60da17b790cd02754d970c9bab864ebb3c0f3016fe51d3f57"
	xpkB    = "60346e7c911a5f6ba154129174cafe75b294ac3bbd5549632f48cec6266f8410"
	xskA    = "58e86efb75fa4e2c410f46e16de9f6acae1a1703528651b69bc176c088bef36e"
	vecMsg  = "01000102030405060708090a0b0c8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"
	vecNon  = "6465666768696a6b6c6d6e6f707172737475767778797a7b"
	vecSeal = "0d40338e0530e533619b073666983931ab1aeac1949c69ca7d1e8b3ad93ea848884ac6e1b6ac3fd8639cc1b264fc606bead1398f4323bbd7630084fdc1e9"
)

func keys() (a, b ed25519.PrivateKey) {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)), ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, 32))
}

func pubOf(k ed25519.PrivateKey) [32]byte { return [32]byte(k.Public().(ed25519.PublicKey)) }

func TestCryptoGolden(t *testing.T) {
	a, b := keys()
	pa, pb := pubOf(a), pubOf(b)
	if hex.EncodeToString(pa[:]) != edA || hex.EncodeToString(pb[:]) != edB {
		t.Fatal("ed25519 keys differ from libsodium")
	}
	for _, c := range []struct {
		k    ed25519.PrivateKey
		want string
	}{{a, xpkA}, {b, xpkB}} {
		u, err := disco.X25519Public(pubOf(c.k))
		if err != nil || hex.EncodeToString(u[:]) != c.want {
			t.Fatalf("X25519Public = %x, %v; want %s", u, err, c.want)
		}
	}
	if s := disco.X25519Secret(a); hex.EncodeToString(s[:]) != xskA {
		t.Fatalf("X25519Secret = %x", s)
	}
	sh, err := disco.NewShared(a, pubOf(b))
	if err != nil {
		t.Fatal(err)
	}
	nonce := [24]byte(unhex(t, vecNon))
	got := sh.SealTo(nil, unhex(t, vecMsg), &nonce)
	want := append(unhex(t, vecSeal), nonce[:]...) // tag ‖ ct, then iroh appends the nonce
	if !bytes.Equal(got, want) {
		t.Fatalf("seal:\n got %x\nwant %x", got, want)
	}
	// b opens what a sealed.
	shB, err := disco.NewShared(b, pubOf(a))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := shB.Open(got)
	if err != nil || !bytes.Equal(pt, unhex(t, vecMsg)) {
		t.Fatalf("open: %x %v", pt, err)
	}
}

func TestPacketRoundTripAndTamper(t *testing.T) {
	a, b := keys()
	shA, _ := disco.NewShared(a, pubOf(b))
	shB, _ := disco.NewShared(b, pubOf(a))
	ping := &disco.Ping{TxID: [12]byte{9}, NodeKey: pubOf(a)}
	pkt := disco.Encode(pubOf(a), shA, ping)
	// iroh 0.28 observed size of a Ping packet: 124 bytes.
	if len(pkt) != 124 {
		t.Fatalf("ping packet is %d bytes, want 124", len(pkt))
	}
	if !disco.LooksLikeDisco(pkt) || disco.LooksLikeDisco(pkt[:disco.HeaderLen-1]) {
		t.Fatal("LooksLikeDisco")
	}
	lookup := func(sender [32]byte) (*disco.Shared, error) {
		if sender != pubOf(a) {
			return nil, errors.New("unknown sender")
		}
		return shB, nil
	}
	from, m, err := disco.Decode(pkt, lookup)
	if err != nil || from != pubOf(a) || !reflect.DeepEqual(m, ping) {
		t.Fatalf("decode: %x %+v %v", from[:4], m, err)
	}
	for i := disco.HeaderLen; i < len(pkt); i++ {
		bad := bytes.Clone(pkt)
		bad[i] ^= 0x01
		if _, _, err := disco.Decode(bad, lookup); !errors.Is(err, disco.ErrOpen) {
			t.Fatalf("flipping byte %d: %v", i, err)
		}
	}
	// Sizes observed from iroh: Pong over UDP 111 bytes, CallMeMaybe with 2 addresses 116.
	pong := disco.Encode(pubOf(b), shB, &disco.Pong{Addr: netip.MustParseAddrPort("127.0.0.1:5")})
	cmm := disco.Encode(pubOf(b), shB, &disco.CallMeMaybe{Addrs: make([]netip.AddrPort, 2)})
	if len(pong) != 111 || len(cmm) != 116 {
		t.Fatalf("pong %d bytes, call-me-maybe %d bytes", len(pong), len(cmm))
	}
}

func TestBadKeys(t *testing.T) {
	a, _ := keys()
	// y = 2 is not on the curve (x² is not a square).
	var bad [32]byte
	bad[0] = 2
	if _, err := disco.NewShared(a, bad); !errors.Is(err, disco.ErrBadKey) {
		t.Fatalf("off-curve key: %v", err)
	}
	// y ≥ p is not canonical.
	var big [32]byte
	for i := range big {
		big[i] = 0xff
	}
	big[31] = 0x7f
	if _, err := disco.X25519Public(big); !errors.Is(err, disco.ErrBadKey) {
		t.Fatalf("non-canonical key: %v", err)
	}
	// The identity (y = 1) is low order: X25519 yields zero, which is refused.
	var id [32]byte
	id[0] = 1
	if _, err := disco.NewShared(a, id); !errors.Is(err, disco.ErrBadKey) {
		t.Fatalf("identity key: %v", err)
	}
}

// FuzzDisco: parsing arbitrary plaintexts and packets never panics; accepted messages
// re-encode to the same bytes (except the lax ping tail); packets never open without the key.
func FuzzDisco(f *testing.F) {
	a, b := keys()
	shA, _ := disco.NewShared(a, pubOf(b))
	shB, _ := disco.NewShared(b, pubOf(a))
	for _, m := range []disco.Message{
		&disco.Ping{NodeKey: pubOf(a)},
		&disco.Pong{Addr: netip.MustParseAddrPort("[::1]:9")},
		&disco.Pong{RelayURL: "http://127.0.0.1:1/"},
		&disco.CallMeMaybe{Addrs: []netip.AddrPort{netip.MustParseAddrPort("1.2.3.4:5")}},
	} {
		f.Add(m.AppendTo(nil))
		f.Add(disco.Encode(pubOf(a), shA, m))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		if m, err := disco.ParseMessage(in); err == nil {
			out := m.AppendTo(nil)
			if _, isPing := m.(*disco.Ping); isPing {
				if !bytes.HasPrefix(in, out) {
					t.Fatalf("ping re-encodes to %x, not a prefix of %x", out, in)
				}
			} else if p, ok := m.(*disco.Pong); ok && p.RelayURL == "" && !bytes.Equal(out, in) {
				// An IPv4-mapped zone-free address re-encodes identically.
				t.Fatalf("pong re-encodes to %x from %x", out, in)
			} else if !ok && !bytes.Equal(out, in) {
				t.Fatalf("re-encodes to %x from %x", out, in)
			}
		}
		_, m, err := disco.Decode(in, func([32]byte) (*disco.Shared, error) { return shB, nil })
		if err == nil && m == nil {
			t.Fatal("nil message without error")
		}
		if pt, err := shB.Open(in); err == nil {
			// Only inputs sealed by a (the seeds) can open; re-sealing with the same nonce
			// reproduces them.
			nonce := [24]byte(in[len(in)-24:])
			if !bytes.Equal(shA.SealTo(nil, pt, &nonce), in) {
				t.Fatal("opened box does not re-seal to itself")
			}
		}
	})
}
