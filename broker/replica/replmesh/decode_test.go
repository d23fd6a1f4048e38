package replmesh

import (
	"bytes"
	"testing"
	"unsafe"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/meshkafka/meshkafka/broker/replica"
)

// decodeSeeds are messages of every form the Engine sends, marshalled.
func decodeSeeds(t testing.TB) [][]byte {
	msgs := []*raftpb.Message{
		appMsg(1, 2, 5, 100),
		appMsg(1, 2, 6, 0),
		{Type: raftpb.MsgApp.Enum(), From: proto.Uint64(1), To: proto.Uint64(3), Term: proto.Uint64(4), Index: proto.Uint64(9),
			LogTerm: proto.Uint64(4), Commit: proto.Uint64(8), Entries: []*raftpb.Entry{
				{Term: proto.Uint64(4), Index: proto.Uint64(10), Type: raftpb.EntryConfChangeV2.Enum(), Data: []byte{8, 1}},
				{Term: proto.Uint64(4), Index: proto.Uint64(11), Data: []byte{}},
				{Term: proto.Uint64(4), Index: proto.Uint64(12)},
				{},
			}},
		{Type: raftpb.MsgAppResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Term: proto.Uint64(4), Index: proto.Uint64(9),
			Reject: proto.Bool(true), RejectHint: proto.Uint64(7), LogTerm: proto.Uint64(3)},
		{Type: raftpb.MsgHeartbeat.Enum(), From: proto.Uint64(1), To: proto.Uint64(2), Commit: proto.Uint64(9), Context: []byte("ctx")},
		{Type: raftpb.MsgHeartbeatResp.Enum(), From: proto.Uint64(2), To: proto.Uint64(1), Context: []byte{}},
		{Type: raftpb.MsgVote.Enum(), From: proto.Uint64(3), To: proto.Uint64(1), Term: proto.Uint64(7), Vote: proto.Uint64(3)},
		{Type: raftpb.MsgSnap.Enum(), From: proto.Uint64(1), To: proto.Uint64(2),
			Snapshot: &raftpb.Snapshot{Data: []byte("state"), Metadata: &raftpb.SnapshotMetadata{Index: proto.Uint64(4),
				ConfState: &raftpb.ConfState{Voters: []uint64{1, 2}}}}},
		{Type: raftpb.MsgStorageAppend.Enum(), Responses: []*raftpb.Message{{Type: raftpb.MsgAppResp.Enum()}}},
		{},
	}
	var out [][]byte
	for _, m := range msgs {
		b, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// within reports whether s lies inside b's backing array.
func within(s, b []byte) bool {
	if len(s) == 0 || len(b) == 0 {
		return false
	}
	p, lo := uintptr(unsafe.Pointer(unsafe.SliceData(s))), uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	return p >= lo && p+uintptr(len(s)) <= lo+uintptr(len(b))
}

// TestDecodeMessageAliases: the common forms decode without copying (entry data and context
// point into the frame, capped so an append cannot run into the next field) and equal what
// proto.Unmarshal gives; a snapshot, responses or an unknown field take proto.Unmarshal.
func TestDecodeMessageAliases(t *testing.T) {
	for i, b := range decodeSeeds(t) {
		want := new(raftpb.Message)
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeMessage(b)
		if err != nil {
			t.Fatalf("seed %d: %v", i, err)
		}
		if !proto.Equal(got, want) {
			t.Fatalf("seed %d: got %v, want %v", i, got, want)
		}
		fast := decodeFast(b) != nil
		if wantFast := want.GetSnapshot() == nil && len(want.GetResponses()) == 0; fast != wantFast {
			t.Fatalf("seed %d (%v): fast path %v, want %v", i, want.GetType(), fast, wantFast)
		}
		if !fast {
			continue
		}
		for j, e := range got.GetEntries() {
			if len(e.GetData()) > 0 && (!within(e.GetData(), b) || cap(e.GetData()) != len(e.GetData())) {
				t.Fatalf("seed %d entry %d: data copied or not capped", i, j)
			}
		}
		if len(got.GetContext()) > 0 && !within(got.GetContext(), b) {
			t.Fatalf("seed %d: context copied", i)
		}
	}
	// An unknown field (99) or a message type this raft does not know: proto.Unmarshal
	// decodes them (keeping the field as unknown, the type as its number).
	b := protowire.AppendTag(decodeSeeds(t)[0], 99, protowire.VarintType)
	b = protowire.AppendVarint(b, 1)
	unknownType := protowire.AppendVarint(protowire.AppendTag(nil, 1, protowire.VarintType), 1000)
	for i, b := range [][]byte{b, unknownType} {
		if decodeFast(b) != nil {
			t.Fatalf("case %d: fast path took it", i)
		}
		want := new(raftpb.Message)
		if err := proto.Unmarshal(b, want); err != nil {
			t.Fatal(err)
		}
		got, err := decodeMessage(b)
		if err != nil || !proto.Equal(got, want) {
			t.Fatalf("case %d: got %v (%v), want %v", i, got, err, want)
		}
	}
	if got, _ := decodeMessage(b); len(got.ProtoReflect().GetUnknown()) == 0 {
		t.Fatal("unknown field lost")
	}
}

// FuzzDecodeMessage: for any bytes, decodeMessage fails exactly when proto.Unmarshal does
// and otherwise gives an equal message, with the same presence of Data and Context.
func FuzzDecodeMessage(f *testing.F) {
	for _, b := range decodeSeeds(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		want := new(raftpb.Message)
		werr := proto.Unmarshal(bytes.Clone(b), want)
		got, err := decodeMessage(b)
		if (err != nil) != (werr != nil) {
			t.Fatalf("decodeMessage error %v, proto.Unmarshal error %v", err, werr)
		}
		if err != nil {
			return
		}
		if !proto.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
		if (got.Context == nil) != (want.Context == nil) || len(got.Entries) != len(want.Entries) {
			t.Fatalf("context presence or entry count differ")
		}
		for i := range got.Entries {
			if (got.Entries[i].Data == nil) != (want.Entries[i].Data == nil) {
				t.Fatalf("entry %d: data presence differs", i)
			}
		}
	})
}

// BenchmarkDecodeBatch: a follower's inbound frame, one MsgApp of 16 entries of 32 KiB.
func BenchmarkDecodeBatch(b *testing.B) {
	m := appMsg(1, 2, 5, 0)
	m.Entries = nil
	for i := range 16 {
		m.Entries = append(m.Entries, &raftpb.Entry{Term: proto.Uint64(1), Index: proto.Uint64(uint64(6 + i)), Data: bytes.Repeat([]byte{byte(i)}, 32<<10)})
	}
	buf, err := AppendFrame(nil, []replica.GroupMessage{{Group: group(1, 0), Msg: m}})
	if err != nil {
		b.Fatal(err)
	}
	batch := buf[4:]
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	for b.Loop() {
		if err := DecodeBatch(batch, func(replica.GroupMessage) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}
