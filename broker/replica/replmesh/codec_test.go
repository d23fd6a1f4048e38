package replmesh

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/internal/meshlink/meshlinktest"
	"github.com/meshkafka/meshkafka/broker/replica"
)

func group(b byte, p int32) replica.GroupID {
	var g replica.GroupID
	g.Topic[0], g.Topic[15] = b, ^b
	g.Partition = p
	return g
}

func appMsg(from, to, idx uint64, size int) *raftpb.Message {
	return &raftpb.Message{
		Type: raftpb.MsgApp.Enum(), From: proto.Uint64(from), To: proto.Uint64(to), Term: proto.Uint64(1),
		Index: proto.Uint64(idx), LogTerm: proto.Uint64(1), Commit: proto.Uint64(idx),
		Entries: []*raftpb.Entry{{Term: proto.Uint64(1), Index: proto.Uint64(idx + 1), Data: bytes.Repeat([]byte{byte(idx)}, size)}},
	}
}

func testMsgs() []replica.GroupMessage {
	g1, g2 := group(1, 0), group(2, -7)
	return []replica.GroupMessage{
		{Group: g1, Msg: appMsg(1, 2, 5, 100)},
		{Group: g1, Msg: &raftpb.Message{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Commit: proto.Uint64(9)}},
		{Group: g2, Msg: &raftpb.Message{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
			Snapshot: &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(4)}}}},
		{Group: g1, Msg: appMsg(1, 2, 6, 0)},
	}
}

func decodeAll(t *testing.T, b []byte) []replica.GroupMessage {
	t.Helper()
	var got []replica.GroupMessage
	if err := DecodeBatch(b, func(m replica.GroupMessage) error { got = append(got, m); return nil }); err != nil {
		t.Fatal(err)
	}
	return got
}

func equalMsgs(a, b []replica.GroupMessage) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Group != b[i].Group || !proto.Equal(a[i].Msg, b[i].Msg) {
			return false
		}
	}
	return true
}

// TestFrameRoundTrip: frames carry messages of several groups in order; consecutive messages
// of one group share one run header.
func TestFrameRoundTrip(t *testing.T) {
	msgs := testMsgs()
	var stream []byte
	stream, err := AppendFrame(stream, msgs)
	if err != nil {
		t.Fatal(err)
	}
	stream, _ = AppendFrame(stream, msgs[:1])
	r := bytes.NewReader(stream)
	b, err := ReadFrame(r, 1<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeAll(t, b); !equalMsgs(got, msgs) {
		t.Fatalf("round trip: got %v", got)
	}
	// Three runs: g1 (2 messages), g2, g1.
	size := 0
	for _, m := range msgs {
		n := proto.Size(m.Msg)
		size += len(appendUvarint(n)) + n
	}
	if want := size + 3*runHeader; len(b) != want {
		t.Fatalf("batch is %d bytes, want %d (three runs)", len(b), want)
	}
	b, err = ReadFrame(r, 1<<20, nil)
	if err != nil || !equalMsgs(decodeAll(t, b), msgs[:1]) {
		t.Fatalf("second frame: %v", err)
	}
	if _, err := ReadFrame(r, 1<<20, nil); err != io.EOF {
		t.Fatalf("after the last frame: %v", err)
	}
}

func appendUvarint(n int) []byte {
	var b []byte
	for v := uint64(n); ; v >>= 7 {
		if v < 0x80 {
			return append(b, byte(v))
		}
		b = append(b, byte(v)|0x80)
	}
}

func TestFrameErrors(t *testing.T) {
	good, _ := AppendFrame(nil, testMsgs())
	meshlinktest.CheckFrameLimits(t, good, ReadFrame)
	hdr := make([]byte, runHeader)
	for name, b := range map[string][]byte{
		"empty":          nil,
		"short header":   hdr[:10],
		"zero count":     hdr,
		"missing msg":    append(bytes.Clone(hdr[:20]), 0, 1),
		"bad length":     append(append(bytes.Clone(hdr[:20]), 0, 1), 0xff, 0xff, 0xff),
		"overrun":        append(append(bytes.Clone(hdr[:20]), 0, 1), 10, 1, 2),
		"bad proto":      append(append(bytes.Clone(hdr[:20]), 0, 1), 2, 0xff, 0xff),
		"count too high": append(append(bytes.Clone(hdr[:20]), 0, 2), 0),
	} {
		err := DecodeBatch(b, func(replica.GroupMessage) error { return nil })
		if !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: %v", name, err)
		}
	}
	stop := errors.New("stop")
	n := 0
	if err := DecodeBatch(good[4:], func(replica.GroupMessage) error { n++; return stop }); err != stop || n != 1 {
		t.Fatalf("fn's error: %v after %d", err, n)
	}
}

// FuzzFrame: the frame reader and batch decoder never panic on any byte stream; every batch
// they accept re-encodes to messages that decode equal.
func FuzzFrame(f *testing.F) {
	good, _ := AppendFrame(nil, testMsgs())
	f.Add(good)
	f.Add(append(bytes.Clone(good), good...))
	f.Add(append([]byte{0, 0, 0, runHeader + 1}, append(make([]byte, 21), 1, 0)...))
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		meshlinktest.CheckStream(t, data, meshlinktest.Codec[replica.GroupMessage]{Malformed: "replmesh: malformed frame",
			Decode: DecodeBatch, Append: AppendFrame, Equal: func(a, b replica.GroupMessage) bool { return a.Group == b.Group && proto.Equal(a.Msg, b.Msg) }})
	})
}
