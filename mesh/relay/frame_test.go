package relay_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/relay"
)

func key(b byte) relay.NodeKey {
	var k relay.NodeKey
	for i := range k {
		k[i] = b + byte(i)
	}
	return k
}

func sampleFrames() []relay.Frame {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	return []relay.Frame{
		relay.NewClientInfo(priv),
		{Type: relay.FrameSendPacket, Key: key(1), Data: []byte("hello")},
		{Type: relay.FrameSendPacket, Key: key(1), Data: []byte{}},
		{Type: relay.FrameRecvPacket, Key: key(2), Data: bytes.Repeat([]byte{0xab}, relay.MaxPacketSize)},
		{Type: relay.FrameKeepAlive},
		{Type: relay.FrameNotePreferred, Preferred: true},
		{Type: relay.FrameNotePreferred, Preferred: false},
		{Type: relay.FramePeerGone, Key: key(3)},
		{Type: relay.FramePing, PingData: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}},
		{Type: relay.FramePong, PingData: [8]byte{8, 7, 6, 5, 4, 3, 2, 1}},
		{Type: relay.FrameHealth, Data: []byte("duplicate connection")},
		{Type: relay.FrameHealth, Data: []byte{}},
		{Type: relay.FrameRestarting, ReconnectIn: 1000, TryFor: 60000},
	}
}

func equalFrames(a, b relay.Frame) bool {
	return a.Type == b.Type && a.Key == b.Key && bytes.Equal(a.Data, b.Data) && a.Signature == b.Signature &&
		a.PingData == b.PingData && a.Preferred == b.Preferred && a.ReconnectIn == b.ReconnectIn && a.TryFor == b.TryFor
}

func TestFrameRoundTrip(t *testing.T) {
	for _, f := range sampleFrames() {
		t.Run(f.Type.String(), func(t *testing.T) {
			enc, err := f.AppendTo(nil)
			if err != nil {
				t.Fatal(err)
			}
			if got, want := len(enc), relay.FrameHeaderLen+f.BodyLen(); got != want {
				t.Fatalf("encoded %d bytes, want %d", got, want)
			}
			got, _, err := relay.ReadFrame(bytes.NewReader(enc), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !equalFrames(got, f) {
				t.Fatalf("round trip: got %+v, want %+v", got, f)
			}
			// Every strict prefix must fail (never a silent short frame).
			step := 1
			if len(enc) > 4096 {
				step = 997 // sample the prefixes of the 64 KiB frame
			}
			for i := 0; i < len(enc); i += step {
				if _, _, err := relay.ReadFrame(bytes.NewReader(enc[:i]), nil); err == nil {
					t.Fatalf("prefix of %d/%d bytes decoded without error", i, len(enc))
				}
			}
		})
	}
}

// TestFrameGolden pins byte layouts from iroh 0.28.1 relay/codec.rs.
func TestFrameGolden(t *testing.T) {
	tests := []struct {
		name string
		f    relay.Frame
		want string
	}{
		{"keepalive", relay.Frame{Type: relay.FrameKeepAlive}, "0600000000"},
		{"preferred", relay.Frame{Type: relay.FrameNotePreferred, Preferred: true}, "070000000101"},
		{"ping", relay.Frame{Type: relay.FramePing, PingData: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}, "0c000000080102030405060708"},
		{"pong", relay.Frame{Type: relay.FramePong, PingData: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}}, "0d000000080102030405060708"},
		{"restarting", relay.Frame{Type: relay.FrameRestarting, ReconnectIn: 10, TryFor: 20}, "0f00000008" + "0000000a" + "00000014"},
		{"health", relay.Frame{Type: relay.FrameHealth, Data: []byte("hi")}, "0e000000026869"},
		{"send", relay.Frame{Type: relay.FrameSendPacket, Key: relay.NodeKey{31: 9}, Data: []byte{0xaa}}, "0400000021" + strings.Repeat("00", 31) + "09aa"},
	}
	for _, tt := range tests {
		got, err := tt.f.AppendTo(nil)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != tt.want {
			t.Errorf("%s: got %x, want %s", tt.name, got, tt.want)
		}
	}
}

func TestClientInfo(t *testing.T) {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	f := relay.NewClientInfo(priv)
	enc, err := f.AppendTo(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Observed from iroh 0.28.1: body of 106 = 9 magic + 32 key + 64 signature + 1 (postcard 3).
	if len(enc) != 5+106 {
		t.Fatalf("client info frame is %d bytes, want 111", len(enc))
	}
	if hex.EncodeToString(enc[:14]) != "020000006a52454c4159f09f9491" {
		t.Fatalf("header/magic %x", enc[:14])
	}
	if enc[len(enc)-1] != 3 {
		t.Fatalf("message byte %x, want 03", enc[len(enc)-1])
	}
	if !bytes.Equal(enc[14:46], priv.Public().(ed25519.PublicKey)) {
		t.Fatal("key not after magic")
	}
	if v, err := relay.VerifyClientInfo(&f); err != nil || v != 3 {
		t.Fatalf("verify: %d %v", v, err)
	}

	bad := f
	bad.Signature[0] ^= 1
	if _, err := relay.VerifyClientInfo(&bad); !errors.Is(err, relay.ErrBadSignature) {
		t.Fatalf("flipped signature: %v", err)
	}
	other := f
	other.Key = key(5)
	if _, err := relay.VerifyClientInfo(&other); !errors.Is(err, relay.ErrBadSignature) {
		t.Fatalf("foreign key: %v", err)
	}
	// A correctly signed but wrong version.
	v2 := relay.Frame{Type: relay.FrameClientInfo, Key: f.Key, Data: []byte{2}}
	copy(v2.Signature[:], ed25519.Sign(priv, v2.Data))
	if _, err := relay.VerifyClientInfo(&v2); !errors.Is(err, relay.ErrBadVersion) {
		t.Fatalf("version 2: %v", err)
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
	}{
		{"unknown type", "0900000000"},
		{"server key (removed in v3)", "0100000000"},
		{"keepalive with body", "060000000100"},
		{"preferred 2", "070000000102"},
		{"short ping", "0c000000020102"},
		{"peer gone short", "0800000001aa"},
		{"send short key", "0400000002aaaa"},
		{"client info bad magic", "02000000" + "6a" + strings.Repeat("00", 106)},
		{"client info short", "0200000004" + "52454c41"},
		{"restarting short", "0f0000000400000001"},
	}
	for _, tt := range tests {
		in, _ := hex.DecodeString(tt.in)
		if _, _, err := relay.ReadFrame(bytes.NewReader(in), nil); !errors.Is(err, relay.ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", tt.name, err)
		}
	}
	// Oversized frame header is refused before reading the body.
	big := []byte{4, 0x00, 0x10, 0x00, 0x01}
	if _, _, err := relay.ReadFrame(bytes.NewReader(big), nil); !errors.Is(err, relay.ErrFrameTooLarge) {
		t.Errorf("1 MiB+1 frame: %v", err)
	}
	// Packet payload over 64 KiB inside an acceptable frame.
	f := relay.Frame{Type: relay.FrameSendPacket, Data: make([]byte, relay.MaxPacketSize+1)}
	if _, err := f.AppendTo(nil); !errors.Is(err, relay.ErrFrameTooLarge) {
		t.Errorf("encode oversize packet: %v", err)
	}
	body := make([]byte, relay.KeyLen+relay.MaxPacketSize+1)
	if _, err := relay.DecodeFrame(relay.FrameRecvPacket, body); !errors.Is(err, relay.ErrFrameTooLarge) {
		t.Errorf("decode oversize packet: %v", err)
	}
	if _, err := (&relay.Frame{Type: 99}).AppendTo(nil); err == nil {
		t.Error("encoding an unknown type succeeded")
	}
	if _, _, err := relay.ReadFrame(bytes.NewReader(nil), nil); err != io.EOF {
		t.Errorf("empty input: %v, want io.EOF", err)
	}
}

func TestReadFrameReusesBuffer(t *testing.T) {
	var stream []byte
	for _, f := range sampleFrames() {
		stream, _ = f.AppendTo(stream)
	}
	r := bytes.NewReader(stream)
	var buf []byte
	n := 0
	for {
		var err error
		_, buf, err = relay.ReadFrame(r, buf)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != len(sampleFrames()) {
		t.Fatalf("read %d frames, want %d", n, len(sampleFrames()))
	}
	allocs := testing.AllocsPerRun(100, func() {
		f := relay.Frame{Type: relay.FramePing}
		b, _ := f.AppendTo(buf[:0])
		_, _, _ = relay.ReadFrame(bytes.NewReader(b), buf)
	})
	if allocs > 1 { // the bytes.Reader
		t.Errorf("ReadFrame+AppendTo allocate %.1f times per frame", allocs)
	}
}

func TestDatagrams(t *testing.T) {
	var p []byte
	var err error
	items := [][]byte{[]byte("a"), {}, bytes.Repeat([]byte{1}, 1200), []byte("TS\xf0\x9f\x92\xac...")}
	for _, it := range items {
		if p, err = relay.AppendDatagram(p, it); err != nil {
			t.Fatal(err)
		}
	}
	// The 1200-byte QUIC Initial observed from iroh: prefix b0 04 (little-endian).
	one, _ := relay.AppendDatagram(nil, make([]byte, 1200))
	if one[0] != 0xb0 || one[1] != 0x04 {
		t.Fatalf("prefix %x, want b004", one[:2])
	}
	got, err := relay.SplitDatagrams(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(items) {
		t.Fatalf("split into %d items, want %d", len(got), len(items))
	}
	for i := range items {
		if !bytes.Equal(got[i], items[i]) {
			t.Fatalf("item %d differs", i)
		}
	}
	// Truncated: the complete items before are returned with an error.
	got, err = relay.SplitDatagrams(p[:len(p)-1], nil)
	if err == nil || len(got) != 3 {
		t.Fatalf("truncated batch: %d items, err %v", len(got), err)
	}
	if _, err := relay.AppendDatagram(nil, make([]byte, 70000)); err == nil {
		t.Fatal("oversized datagram accepted")
	}
}

// FuzzReadFrame: decoding never panics, never returns more than MaxFrameSize of body, and
// every frame it accepts re-encodes to exactly the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	for _, fr := range sampleFrames() {
		if fr.Type == relay.FrameRecvPacket {
			continue // keep the corpus small
		}
		b, _ := fr.AppendTo(nil)
		f.Add(b)
	}
	f.Add([]byte{4, 0, 0, 0, 32})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		r := bytes.NewReader(in)
		var buf []byte
		for {
			before := r.Len()
			fr, nb, err := relay.ReadFrame(r, buf)
			buf = nb
			if err != nil {
				return
			}
			consumed := in[len(in)-before : len(in)-r.Len()]
			if len(consumed)-relay.FrameHeaderLen > relay.MaxFrameSize {
				t.Fatalf("accepted a %d-byte body", len(consumed))
			}
			out, err := fr.AppendTo(nil)
			if err != nil {
				t.Fatalf("accepted frame %v does not re-encode: %v", fr.Type, err)
			}
			if !bytes.Equal(out, consumed) {
				t.Fatalf("re-encoding differs:\n in %x\nout %x", consumed, out)
			}
		}
	})
}

func FuzzSplitDatagrams(f *testing.F) {
	f.Add([]byte{2, 0, 'h', 'i', 0, 0})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, in []byte) {
		items, err := relay.SplitDatagrams(in, nil)
		var out []byte
		for _, it := range items {
			out, _ = relay.AppendDatagram(out, it)
		}
		if err == nil && !bytes.Equal(out, in) {
			t.Fatalf("re-encoding differs")
		}
		if err != nil && !bytes.HasPrefix(in, out) {
			t.Fatalf("items returned with an error are not a prefix of the input")
		}
	})
}
