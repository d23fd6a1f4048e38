// Package meshlinktest checks the codecs of the transports built on meshlink
// (broker/quorum/raftmesh, broker/replica/replmesh) the same way: their fuzz targets share
// CheckStream. It also holds what their transport tests share (Keys, Meet). Test-only (it
// imports testing).
package meshlinktest

import (
	"bytes"
	"errors"
	"io"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Codec is a transport's frame codec as its package exports it.
type Codec[T any] struct {
	// Malformed is the prefix of every batch decoding error ("raftmesh: malformed frame").
	Malformed string
	Decode    func(b []byte, fn func(T) error) error
	Append    func(buf []byte, items []T) ([]byte, error)
	// Equal reports whether item i of a and of b are the same message.
	Equal func(a, b T) bool
}

// CheckStream reads frames from data until it ends and checks that nothing panics, every
// error is one the codec documents, and every batch that decodes re-encodes to items that
// decode equal.
func CheckStream[T any](t *testing.T, data []byte, c Codec[T]) {
	r := bytes.NewReader(data)
	for {
		b, err := meshlink.ReadFrame(r, 1<<16, nil)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, meshlink.ErrFrameTooLarge) && !errors.Is(err, meshlink.ErrMalformed) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		var items []T
		if err := c.Decode(b, func(m T) error { items = append(items, m); return nil }); err != nil {
			if !errors.Is(err, meshlink.ErrMalformed) || !strings.HasPrefix(err.Error(), c.Malformed) {
				t.Fatalf("batch error %v", err)
			}
			continue
		}
		re, err := c.Append(nil, items)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		var again []T
		if err := c.Decode(re[meshlink.FrameHeader:], func(m T) error { again = append(again, m); return nil }); err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if len(again) != len(items) {
			t.Fatalf("%d items after re-encoding, want %d", len(again), len(items))
		}
		for i := range items {
			if !c.Equal(again[i], items[i]) {
				t.Fatalf("item %d changed in re-encoding", i)
			}
		}
	}
}

// FuzzAddr fuzzes a transport's DecodeAddr (meshlink's peer address): it never panics, its
// errors wrap meshlink.ErrBadAddr, and what it accepts encodes back to the same bytes.
func FuzzAddr(f *testing.F, encode func(endpoint.NodeAddr) []byte, decode func([]byte) (endpoint.NodeAddr, error)) {
	id := key.GenerateSecretKey().Public()
	f.Add(encode(endpoint.NodeAddr{ID: id}))
	f.Add(encode(endpoint.NodeAddr{ID: id, RelayURL: "http://r", Direct: []netip.AddrPort{
		netip.MustParseAddrPort("192.0.2.1:41641"), netip.MustParseAddrPort("[2001:db8::1]:7")}}))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := decode(b)
		if err != nil {
			if !errors.Is(err, meshlink.ErrBadAddr) {
				t.Fatalf("error %v does not wrap ErrBadAddr", err)
			}
			return
		}
		if re := encode(a); !bytes.Equal(re, b) {
			t.Fatalf("decode %x → %+v → encode %x", b, a, re)
		}
	})
}

// CheckFrameLimits checks a transport's ReadFrame on good, one whole frame: with a limit 5
// bytes short of it, it is ErrFrameTooLarge; cut short by a byte, io.ErrUnexpectedEOF.
func CheckFrameLimits(t *testing.T, good []byte, read func(r io.Reader, max int, buf []byte) ([]byte, error)) {
	t.Helper()
	if _, err := read(bytes.NewReader(good), len(good)-5, nil); !errors.Is(err, meshlink.ErrFrameTooLarge) {
		t.Fatalf("over the limit: %v", err)
	}
	if _, err := read(bytes.NewReader(good[:len(good)-1]), 1<<20, nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("cut short: %v", err)
	}
}

// Keys is a set of trusted node keys, safe for concurrent use: a test transport's Trust
// (Keys.Trusts), changed by the test while it runs. The zero Keys trusts no one.
type Keys struct {
	mu sync.Mutex
	m  map[key.PublicKey]bool
}

// Trusts reports whether k is in the set.
func (s *Keys) Trusts(k key.PublicKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[k]
}

// Set puts k in the set (trusted) or takes it out.
func (s *Keys) Set(k key.PublicKey, trusted bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[key.PublicKey]bool{}
	}
	s.m[k] = trusted
}

// Meet introduces every node to every other: introduce(a, b) makes a trust and know b.
func Meet[N comparable](nodes []N, introduce func(a, b N)) {
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				introduce(a, b)
			}
		}
	}
}
