package raftmesh

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/netip"
	"runtime"
	"slices"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink/meshlinktest"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestAddrRoundTrip(t *testing.T) {
	id := key.GenerateSecretKey().Public()
	for _, a := range []endpoint.NodeAddr{
		{ID: id},
		{ID: id, RelayURL: "https://relay.example.invalid"},
		{ID: id, RelayURL: "http://r", Direct: []netip.AddrPort{
			netip.MustParseAddrPort("192.0.2.1:41641"), netip.MustParseAddrPort("[2001:db8::1]:7"),
			netip.MustParseAddrPort("[::ffff:10.0.0.1]:9"),
		}},
	} {
		b := EncodeAddr(a)
		got, err := DecodeAddr(b)
		if err != nil {
			t.Fatalf("%+v: %v", a, err)
		}
		if got.ID != a.ID || got.RelayURL != a.RelayURL || !slices.Equal(got.Direct, a.Direct) {
			t.Fatalf("round trip %+v → %+v", a, got)
		}
	}
	// A zone is dropped.
	z := endpoint.NodeAddr{ID: id, Direct: []netip.AddrPort{netip.MustParseAddrPort("[fe80::1%eth0]:5")}}
	got, err := DecodeAddr(EncodeAddr(z))
	if err != nil || got.Direct[0] != netip.MustParseAddrPort("[fe80::1]:5") {
		t.Fatalf("zoned: %+v %v", got, err)
	}
}

func TestDecodeAddrRefuses(t *testing.T) {
	id := key.GenerateSecretKey().Public()
	good := EncodeAddr(endpoint.NodeAddr{ID: id, RelayURL: "http://r", Direct: []netip.AddrPort{netip.MustParseAddrPort("192.0.2.1:1")}})
	mut := func(f func(b []byte) []byte) []byte { return f(bytes.Clone(good)) }
	idb := id.Bytes()
	for name, b := range map[string][]byte{
		"empty":          nil,
		"version":        mut(func(b []byte) []byte { b[0] = 2; return b }),
		"short id":       good[:20],
		"not a point":    append([]byte{1}, bytes.Repeat([]byte{0xff}, 40)...),
		"url overrun":    mut(func(b []byte) []byte { b[33] = 100; return b }),
		"truncated":      good[:len(good)-1],
		"trailing":       append(bytes.Clone(good), 0),
		"family":         mut(func(b []byte) []byte { b[33+1+8+1] = 5; return b }),
		"port 0":         mut(func(b []byte) []byte { b[len(b)-1], b[len(b)-2] = 0, 0; return b }),
		"too many":       append(append(append([]byte{1}, idb[:]...), 0), binary.AppendUvarint(nil, 65)...),
		"huge url":       append(append(append([]byte{1}, idb[:]...), binary.AppendUvarint(nil, 4096)...), make([]byte, 4097)...),
		"unspecified ip": append(append(append([]byte{1}, idb[:]...), 0, 1, 4, 0, 0, 0, 0), 0, 1),
	} {
		if _, err := DecodeAddr(b); !errors.Is(err, ErrBadAddr) {
			t.Errorf("%s: err %v, want ErrBadAddr", name, err)
		}
	}
}

// FuzzDecodeAddr: DecodeAddr never panics, and what it accepts encodes back to the same bytes.
func FuzzDecodeAddr(f *testing.F) { meshlinktest.FuzzAddr(f, EncodeAddr, DecodeAddr) }

func testMsgs() []*raftpb.Message {
	return []*raftpb.Message{
		msg(1, 2, 5, 100),
		{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Commit: proto.Uint64(9)},
		{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
			Snapshot: &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(4)}}},
	}
}

func TestFrameRoundTrip(t *testing.T) {
	msgs := testMsgs()
	var stream []byte
	var err error
	for range 3 {
		if stream, err = AppendFrame(stream, msgs); err != nil {
			t.Fatal(err)
		}
	}
	r := bytes.NewReader(stream)
	var buf []byte
	for f := range 3 {
		b, err := ReadFrame(r, 1<<20, buf)
		if err != nil {
			t.Fatalf("frame %d: %v", f, err)
		}
		var got []*raftpb.Message
		if err := DecodeBatch(b, func(m *raftpb.Message) error { got = append(got, m); return nil }); err != nil {
			t.Fatal(err)
		}
		checkInOrder(t, "frame", got, msgs)
		buf = b[:0]
	}
	if _, err := ReadFrame(r, 1<<20, nil); err != io.EOF {
		t.Fatalf("after the last frame: %v, want io.EOF", err)
	}
}

func TestFrameErrors(t *testing.T) {
	good, _ := AppendFrame(nil, testMsgs())
	meshlinktest.CheckFrameLimits(t, good, ReadFrame)
	if _, err := ReadFrame(bytes.NewReader(good[:2]), 1<<20, nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("header cut short: %v", err)
	}
	if _, err := ReadFrame(bytes.NewReader([]byte{0, 0, 0, 0}), 1<<20, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty frame: %v", err)
	}
	// A big length prefix with few bytes behind it fails without allocating the length.
	huge := binary.BigEndian.AppendUint32(nil, 400<<20)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := ReadFrame(bytes.NewReader(append(huge, 1, 2, 3)), 512<<20, nil); err != io.ErrUnexpectedEOF {
		t.Fatalf("huge prefix: %v", err)
	}
	runtime.ReadMemStats(&after)
	if d := after.TotalAlloc - before.TotalAlloc; d > 4<<20 {
		t.Fatalf("a 400 MiB length prefix with 3 bytes behind it allocated %d bytes", d)
	}
	for name, b := range map[string][]byte{
		"bad length": {0xff, 0xff, 0xff},
		"overrun":    {10, 1, 2},
		"bad proto":  {2, 0xff, 0xff},
	} {
		if err := DecodeBatch(b, func(*raftpb.Message) error { return nil }); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := DecodeBatch(good[4:], func(*raftpb.Message) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("fn's error: %v after %d", err, n)
	}
}

// FuzzFrame: the frame reader and batch decoder never panic on any byte stream; every batch
// they accept re-encodes to messages that decode equal.
func FuzzFrame(f *testing.F) {
	good, _ := AppendFrame(nil, testMsgs())
	f.Add(good)
	f.Add(append(bytes.Clone(good), good...))
	f.Add([]byte{0, 0, 0, 3, 1, 8, 3})
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		meshlinktest.CheckStream(t, data, meshlinktest.Codec[*raftpb.Message]{Malformed: "raftmesh: malformed frame",
			Decode: DecodeBatch, Append: AppendFrame, Equal: func(a, b *raftpb.Message) bool { return proto.Equal(a, b) }})
	})
}
