package meshctl

import (
	"bytes"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/key"
)

func sampleDigest(sk key.SecretKey) Digest {
	return Digest{Node: sk.Public(), Role: RoleBroker, MeshID: "meshkafka", Seq: 1_700_000_000_000_001, TimeMs: 1_700_000_000_000,
		Addrs:      []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:7070"), netip.MustParseAddrPort("[fd00::1]:7071")},
		Partitions: 12, Bytes: 1 << 30}
}

func TestDigestRoundTrip(t *testing.T) {
	sk := key.GenerateSecretKey()
	d := sampleDigest(sk)
	b, err := Encode(d, sk)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxDigestSize || len(b) > 200 {
		t.Fatalf("digest is %d bytes", len(b))
	}
	got, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, d) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, d)
	}
	// Layout spot checks (doc.go): version, node id, role, mesh id.
	id := sk.Public().Bytes()
	if b[0] != Version || !bytes.Equal(b[1:33], id[:]) || b[33] != byte(RoleBroker) || b[34] != 9 || string(b[35:44]) != "meshkafka" {
		t.Fatalf("layout: % x", b[:44])
	}
	// Maximal digest fits MaxDigestSize.
	d.MeshID = string(bytes.Repeat([]byte("m"), MaxMeshID))
	d.Addrs = nil
	for i := range MaxAddrs {
		d.Addrs = append(d.Addrs, netip.AddrPortFrom(netip.MustParseAddr("2001:db8::1"), uint16(60000+i)))
	}
	d.Seq, d.TimeMs, d.Partitions, d.Bytes = ^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)
	if b, err = Encode(d, sk); err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxDigestSize {
		t.Fatalf("max digest %d > %d", len(b), MaxDigestSize)
	}
	if _, err := Decode(b); err != nil {
		t.Fatal(err)
	}
}

func TestDigestRejects(t *testing.T) {
	sk := key.GenerateSecretKey()
	good, err := Encode(sampleDigest(sk), sk)
	if err != nil {
		t.Fatal(err)
	}
	// Any flipped bit breaks either the parse or the signature.
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x01
		if _, err := Decode(b); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	// A digest signed by someone else in our name.
	other := key.GenerateSecretKey()
	if _, err := Encode(sampleDigest(sk), other); err == nil {
		t.Fatal("encode signed with a foreign key")
	}
	forged := bytes.Clone(good[:len(good)-64])
	forged = append(forged, other.Sign(append([]byte(sigContext), forged...))...)
	if _, err := Decode(forged); !errors.Is(err, ErrSignature) {
		t.Fatalf("forged digest: %v", err)
	}
	for name, b := range map[string][]byte{
		"empty":    nil,
		"trailing": append(bytes.Clone(good[:len(good)-64]), append([]byte{0}, good[len(good)-64:]...)...),
		"short":    good[:100],
		"huge":     make([]byte, MaxDigestSize+1),
	} {
		if _, err := Decode(b); err == nil {
			t.Errorf("%s accepted", name)
		}
	}
	bad := sampleDigest(sk)
	bad.Role = 9
	if _, err := Encode(bad, sk); err == nil {
		t.Error("role 9 encoded")
	}
}

func FuzzDecodeDigest(f *testing.F) {
	sk := key.GenerateSecretKey()
	good, _ := Encode(sampleDigest(sk), sk)
	f.Add(good)
	f.Add(good[:len(good)-64])
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := Decode(b)
		if err != nil {
			return
		}
		// Whatever decodes is canonical: re-encoding with the author's key is
		// impossible here, but the body must re-encode to the same bytes.
		if len(d.Addrs) > MaxAddrs || len(d.MeshID) > MaxMeshID || (d.Role != RoleBroker && d.Role != RoleGateway) {
			t.Fatalf("decoded out-of-range digest %+v", d)
		}
		if d.Node == sk.Public() {
			again, err := Encode(d, sk)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Decode(again); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func TestParsePeers(t *testing.T) {
	a, b := key.GenerateSecretKey().Public(), key.GenerateSecretKey().Public()
	ps, err := ParsePeers(a.String() + "@127.0.0.1:1,[::1]:2, " + b.String() + "\n")
	if err != nil || len(ps) != 2 || ps[0].ID != a || len(ps[0].Direct) != 2 || ps[1].ID != b || len(ps[1].Direct) != 0 {
		t.Fatalf("%+v %v", ps, err)
	}
	if ps, err := ParsePeers(" "); err != nil || len(ps) != 0 {
		t.Fatal("empty list")
	}
	if _, err := ParsePeers("nonsense@1.2.3.4:5"); err == nil {
		t.Fatal("bad id accepted")
	}
}
