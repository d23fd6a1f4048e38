package proto

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRustCapturedFrames: frames written by a real iroh-gossip 0.28.1 node
// (captured by interop/gossip_test.go with UPDATE_GOLDEN=1, one per message
// kind, in testdata/rust-frames/<Kind>.bin) decode to the kind in their name
// and re-encode to the same bytes.
func TestRustCapturedFrames(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "rust-frames", "*.bin"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 10 {
		t.Fatalf("only %d captured frames in testdata/rust-frames", len(files))
	}
	for _, f := range files {
		kind := strings.TrimSuffix(filepath.Base(f), ".bin")
		t.Run(kind, func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			body, err := ReadFrame(bytes.NewReader(raw), nil, DefaultMaxMessageSize)
			if err != nil {
				t.Fatal(err)
			}
			topic, m, err := DecodeMessage(body)
			if err != nil {
				t.Fatal(err)
			}
			if m.Kind().String() != kind {
				t.Fatalf("decoded %v, file says %s", m.Kind(), kind)
			}
			again, err := AppendFrame(nil, topic, m, DefaultMaxMessageSize)
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("re-encoded differently:\nrust %x\nours %x (%v)", raw, again, err)
			}
			// Data the Rust node attaches is a valid AddrInfo with its
			// loopback addresses.
			var data PeerData
			switch m := m.(type) {
			case Join:
				data = m.Data
			case Neighbor:
				data = m.Data
			case ForwardJoin[Key]:
				data = m.Peer.Data
			}
			if data != nil {
				a, err := DecodePeerData(data)
				if err != nil || len(a.Direct) == 0 {
					t.Fatalf("peer data %x: %+v %v", data, a, err)
				}
				if !bytes.Equal(EncodePeerData(a), data) {
					t.Fatalf("AddrInfo re-encodes differently: %x vs %x", EncodePeerData(a), data)
				}
				t.Logf("%s carries %+v", kind, a)
			}
		})
	}
}
