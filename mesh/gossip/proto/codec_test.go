package proto

import (
	"bytes"
	"encoding/hex"
	"errors"
	"io"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var (
	testTopic = func() (t TopicID) {
		for i := range t {
			t[i] = byte(i)
		}
		return t
	}()
	// RFC 8032 test key 1.
	testPK = Key(unhexKey("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"))
	hiID   = MessageID(unhexKey("85052e9aab1b67b6622d94a08441b09fd5b7aca61ee360416d70de5da67d86ca"))
)

func unhexKey(s string) (k [32]byte) {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		panic("bad key hex")
	}
	copy(k[:], b)
	return k
}

func TestBlake3ID(t *testing.T) {
	if got := IDOf([]byte("hi")); got != hiID {
		t.Fatalf("blake3(hi) = %s, want %s", got, hiID)
	}
	if got := IDOf(nil).String(); !strings.HasPrefix(got, "af1349b9") || !strings.HasSuffix(got, "3262") {
		t.Fatalf("blake3(\"\") = %s", got)
	}
}

// TestGoldenFrameA is §4 A of the wire doc, confirmed byte for byte against a
// real 0.28.1 node.
func TestGoldenFrameA(t *testing.T) {
	want := unhex(t, `00 00 00 47 00 01 02 03 04 05 06 07 08 09 0a 0b
0c 0d 0e 0f 10 11 12 13 14 15 16 17 18 19 1a 1b
1c 1d 1e 1f 01 00 85 05 2e 9a ab 1b 67 b6 62 2d
94 a0 84 41 b0 9f d5 b7 ac a6 1e e3 60 41 6d 70
de 5d a6 7d 86 ca 02 68 69 00 00`)
	g := Gossip{ID: IDOf([]byte("hi")), Content: []byte("hi")}
	got, err := AppendFrame(nil, testTopic, g, DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("frame:\n got %x\nwant %x", got, want)
	}
	body, err := ReadFrame(bytes.NewReader(want), nil, DefaultMaxMessageSize)
	if err != nil {
		t.Fatal(err)
	}
	topic, m, err := DecodeMessage(body)
	if err != nil || topic != testTopic || !reflect.DeepEqual(m, g) {
		t.Fatalf("decode = %v %#v %v", topic, m, err)
	}
	// Neighbors scope and forwarded rounds change only the tail.
	g.Scope = Scope{Neighbors: true}
	got, _ = AppendFrame(nil, testTopic, g, DefaultMaxMessageSize)
	if !bytes.HasSuffix(got, unhex(t, "02 68 69 01")) || len(got) != 74 {
		t.Fatalf("neighbors tail: %x", got)
	}
	g.Scope = Scope{Round: 1}
	got, _ = AppendFrame(nil, testTopic, g, DefaultMaxMessageSize)
	if !bytes.HasSuffix(got, unhex(t, "02 68 69 00 01")) {
		t.Fatalf("round 1 tail: %x", got)
	}
}

func TestGoldenAddrInfo(t *testing.T) {
	a := AddrInfo{
		RelayURL: "https://euw1-1.relay.iroh.network./",
		Direct: []netip.AddrPort{
			netip.MustParseAddrPort("[fe80::1]:11204"),
			netip.MustParseAddrPort("192.168.1.10:11204"),
		},
	}
	want := append([]byte{0x01, 0x23}, "https://euw1-1.relay.iroh.network./"...)
	want = append(want, unhex(t, "02 00 c0a8010a c457 01 fe800000000000000000000000000001 c457")...)
	got := EncodePeerData(a)
	if !bytes.Equal(got, want) || len(got) != 64 {
		t.Fatalf("AddrInfo:\n got %x\nwant %x", got, want)
	}
	back, err := DecodePeerData(got)
	if err != nil {
		t.Fatal(err)
	}
	if back.RelayURL != a.RelayURL || len(back.Direct) != 2 || back.Direct[0] != a.Direct[1] || back.Direct[1] != a.Direct[0] {
		t.Fatalf("decoded %+v", back)
	}
	if e := EncodePeerData(AddrInfo{}); !bytes.Equal(e, []byte{0, 0}) {
		t.Fatalf("empty AddrInfo = %x", e)
	}
	if a, err := DecodePeerData(PeerData{}); err != nil || a.RelayURL != "" || a.Direct != nil {
		t.Fatalf("empty data = %+v %v", a, err)
	}
	// §4 D: Swarm(Join(Some(C))).
	j, err := AppendMsg(nil, Join{Data: got})
	if err != nil || !bytes.Equal(j, append(unhex(t, "00 00 01 40"), want...)) {
		t.Fatalf("join = %x %v", j, err)
	}
	// A large port takes 3 varint bytes.
	e := EncodePeerData(AddrInfo{Direct: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:65535")}})
	if !bytes.Equal(e, unhex(t, "00 01 00 7f000001 ffff03")) {
		t.Fatalf("port 65535: %x", e)
	}
}

// TestGoldenControl is §4 E of the wire doc (topic::Message bodies).
func TestGoldenControl(t *testing.T) {
	pk := hex.EncodeToString(testPK[:])
	id := hex.EncodeToString(hiID[:])
	cases := []struct {
		name string
		m    Msg
		hex  string
	}{
		{"ForwardJoin", ForwardJoin[Key]{Peer: PeerInfo[Key]{ID: testPK}, TTL: 6}, "00 01" + pk + "00 06"},
		{"Shuffle", Shuffle[Key]{Origin: testPK, Nodes: []PeerInfo[Key]{{ID: testPK}}, TTL: 6}, "00 02" + pk + "01" + pk + "00 06"},
		{"ShuffleReplyEmpty", ShuffleReply[Key]{Nodes: []PeerInfo[Key]{}}, "00 03 00"},
		{"NeighborHighNone", Neighbor{Priority: High}, "00 04 00 00"},
		{"NeighborLowEmpty", Neighbor{Priority: Low, Data: PeerData{}}, "00 04 01 01 00"},
		{"Disconnect", Disconnect{Alive: true}, "00 05 01 00"},
		{"Prune", Prune{}, "01 01"},
		{"GraftSome", Graft{ID: &hiID, Round: 3}, "01 02 01" + id + "03"},
		{"GraftNone", Graft{Round: 2}, "01 02 00 02"},
		{"IHave", IHaves{{ID: hiID, Round: 1}}, "01 03 01" + id + "01"},
		{"JoinNone", Join{}, "00 00 00"},
		{"GossipRound300", Gossip{ID: hiID, Content: []byte("hi"), Scope: Scope{Round: 300}}, "01 00" + id + "02 6869 00 ac02"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			want := unhex(t, c.hex)
			got, err := AppendMsg(nil, c.m)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encode:\n got %x\nwant %x", got, want)
			}
			back, err := DecodeMsg(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, c.m) {
				t.Fatalf("decode: got %#v want %#v", back, c.m)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	pk := hex.EncodeToString(testPK[:])
	// A y coordinate that does not decompress (y = 2 is not on the curve).
	bad := "02" + strings.Repeat("00", 31)
	cases := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", ErrShort},
		{"unknown outer tag", "02 00", ErrBadTag},
		{"unknown swarm tag", "00 06", ErrBadTag},
		{"unknown gossip tag", "01 04", ErrBadTag},
		{"bad bool", "00 05 02 00", ErrBadBool},
		{"bad option", "00 00 02", ErrBadOption},
		{"bad priority", "00 04 02 00", ErrBadTag},
		{"bad key", "00 01" + bad + "00 06", ErrBadKey},
		{"truncated key", "00 01" + pk[:20], ErrShort},
		{"varint u16 overflow", "01 02 00 ff ff 04", ErrBadVarint},
		{"varint too long", "01 02 00 80 80 80 00", ErrBadVarint},
		{"length beyond input", "01 03 05", ErrShort},
		{"bad scope", "01 00" + hex.EncodeToString(hiID[:]) + "02 6869 02", ErrBadTag},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := DecodeMsg(unhex(t, c.hex))
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	// Non-canonical padding within the max length is accepted, as postcard does.
	m, err := DecodeMsg(unhex(t, "01 02 00 82 00"))
	if err != nil || m.(Graft).Round != 2 {
		t.Fatalf("padded varint: %v %v", m, err)
	}
	// Trailing bytes are ignored.
	if m, err := DecodeMsg(unhex(t, "01 01 ff ff")); err != nil || m != (Prune{}) {
		t.Fatalf("trailing: %v %v", m, err)
	}
}

func TestFrameLimits(t *testing.T) {
	// A body of exactly max-1 bytes is sent; max is refused.
	content := func(body int) []byte {
		// body = 32 topic + 2 tags + 32 id + varint(len) + len + 1 scope + 1 round
		n := body - 68 - 2
		return bytes.Repeat([]byte{'x'}, n)
	}
	for _, c := range []struct {
		body int
		ok   bool
	}{{4095, true}, {4096, false}} {
		p := content(c.body)
		g := Gossip{ID: IDOf(p), Content: p}
		f, err := AppendFrame([]byte("pre"), testTopic, g, DefaultMaxMessageSize)
		if c.ok != (err == nil) {
			t.Fatalf("body %d: err %v", c.body, err)
		}
		if err != nil {
			if string(f) != "pre" {
				t.Fatalf("failed append left %d bytes", len(f))
			}
			continue
		}
		if len(f) != 3+4+c.body {
			t.Fatalf("frame len %d", len(f))
		}
	}
	// The receiver accepts len == max and rejects max+1.
	for _, c := range []struct {
		n  int
		ok bool
	}{{4096, true}, {4097, false}} {
		f := make([]byte, 4+c.n)
		f[0], f[1], f[2], f[3] = byte(c.n>>24), byte(c.n>>16), byte(c.n>>8), byte(c.n)
		_, err := ReadFrame(bytes.NewReader(f), nil, DefaultMaxMessageSize)
		if c.ok != (err == nil) || (!c.ok && !errors.Is(err, ErrTooLarge)) {
			t.Fatalf("read len %d: %v", c.n, err)
		}
	}
	if _, err := ReadFrame(bytes.NewReader(nil), nil, 10); err != io.EOF {
		t.Fatalf("clean EOF: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0}), nil, 10); !errors.Is(err, ErrShort) {
		t.Fatalf("short header: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 5, 1}), nil, 10); !errors.Is(err, ErrShort) {
		t.Fatalf("short body: %v", err)
	}
}

// FuzzDecodeFrame: the frame decoder never panics, and whatever decodes
// re-encodes to a body that decodes to the same message.
func FuzzDecodeFrame(f *testing.F) {
	seed := func(m Msg) {
		b, err := AppendFrame(nil, testTopic, m, DefaultMaxMessageSize)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	seed(Gossip{ID: hiID, Content: []byte("hi")})
	seed(Join{Data: EncodePeerData(AddrInfo{RelayURL: "https://r./", Direct: []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:1")}})})
	seed(Shuffle[Key]{Origin: testPK, Nodes: []PeerInfo[Key]{{ID: testPK, Data: PeerData{1}}}, TTL: 6})
	seed(IHaves{{ID: hiID, Round: 1}, {ID: hiID, Round: 300}})
	seed(Graft{ID: &hiID, Round: 1})
	seed(Neighbor{Priority: Low, Data: PeerData{}})
	seed(Disconnect{Alive: true, Respond: true})
	f.Fuzz(func(t *testing.T, data []byte) {
		body, err := ReadFrame(bytes.NewReader(data), nil, DefaultMaxMessageSize)
		if err != nil {
			return
		}
		topic, m, err := DecodeMessage(body)
		if err != nil {
			return
		}
		re, err := AppendMessage(nil, topic, m)
		if err != nil {
			t.Fatalf("re-encode %#v: %v", m, err)
		}
		topic2, m2, err := DecodeMessage(re)
		if err != nil || topic2 != topic || !reflect.DeepEqual(m, m2) {
			t.Fatalf("round trip: %#v -> %x -> %#v %v", m, re, m2, err)
		}
		if j, ok := m.(Join); ok {
			_, _ = DecodePeerData(j.Data)
		}
	})
}

func FuzzDecodePeerData(f *testing.F) {
	f.Add([]byte(EncodePeerData(AddrInfo{RelayURL: "https://x./", Direct: []netip.AddrPort{netip.MustParseAddrPort("[::1]:5")}})))
	f.Add([]byte{0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := DecodePeerData(data)
		if err != nil {
			return
		}
		b, err := DecodePeerData(EncodePeerData(a))
		if err != nil || b.RelayURL != a.RelayURL || len(b.Direct) > len(a.Direct) {
			t.Fatalf("round trip %+v -> %+v %v", a, b, err)
		}
	})
}
