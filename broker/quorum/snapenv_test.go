package quorum

import (
	"bytes"
	"maps"
	"testing"
)

func TestSnapshotEnvelopeRoundTrip(t *testing.T) {
	peers := map[uint64][]byte{1: []byte("n1"), 0xffffffffffffffff: {}, 7: bytes.Repeat([]byte{9}, 300)}
	b := encodeSnapshot(peers, []byte("state"))
	got, state, err := decodeSnapshot(b)
	if err != nil || string(state) != "state" || !maps.EqualFunc(got, peers, bytes.Equal) {
		t.Fatalf("got %v %q %v", got, state, err)
	}
	if !bytes.Equal(encodeSnapshot(got, state), b) {
		t.Fatal("encoding not deterministic")
	}
	for _, bad := range [][]byte{nil, []byte("MKQ"), []byte("XKQS\x01\x00"), []byte("MKQS\x02\x00"),
		[]byte("MKQS\x01\x01\x00\x00"), []byte("MKQS\x01\x01\x00\x00\x00\x00\x00\x00\x00\x01\x05ab"),
		[]byte("MKQS\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00"), // id 0
		[]byte("MKQS\x01\xff\xff\xff\xff\x0f")} {
		if _, _, err := decodeSnapshot(bad); err == nil {
			t.Errorf("decoded %q", bad)
		}
	}
	// Every cut inside the peer table is an error (only the state may be short).
	for i := range len(b) - len("state") {
		if _, _, err := decodeSnapshot(b[:i]); err == nil {
			t.Errorf("decoded a %d-byte prefix", i)
		}
	}
}

func FuzzDecodeSnapshot(f *testing.F) {
	f.Add(encodeSnapshot(map[uint64][]byte{1: []byte("n1"), 2: []byte("n2")}, []byte("s")))
	f.Add(encodeSnapshot(nil, nil))
	f.Add([]byte("MKQS\x01\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		peers, state, err := decodeSnapshot(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes (one encoding per value).
		if re := encodeSnapshot(peers, state); !bytes.Equal(re, b) {
			// Non-minimal uvarints decode too; the re-encoding must decode to the same value.
			p2, s2, err := decodeSnapshot(re)
			if err != nil || !bytes.Equal(s2, state) || !maps.EqualFunc(p2, peers, bytes.Equal) {
				t.Fatalf("re-encoding differs: %v", err)
			}
		}
	})
}
