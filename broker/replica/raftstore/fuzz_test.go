package raftstore

import (
	"bytes"
	"errors"
	"testing"

	"go.etcd.io/raft/v3/raftpb"

	"github.com/meshkafka/meshkafka/broker/internal/brokertest"
)

// FuzzDecodeControl feeds arbitrary bytes to the control-entry decoder. It never panics; it
// fails only with errControl; what it accepts re-encodes to the same bytes (baseOffset aside,
// which the broker stamps), so a stored control entry has exactly one meaning.
func FuzzDecodeControl(f *testing.F) {
	for _, c := range []struct {
		typ  raftpb.EntryType
		term uint64
		data []byte
	}{
		{raftpb.EntryType_EntryNormal, 1, nil},
		{raftpb.EntryType_EntryConfChange, 7, []byte("conf change bytes")},
		{raftpb.EntryType_EntryConfChangeV2, 1<<31 - 1, bytes.Repeat([]byte{0xab}, 300)},
		{raftpb.EntryType_EntryConfChangeV2, 3, nil},
		{raftpb.EntryType_EntryNormal, 4, AppEntry([]byte("app payload"))},
		{raftpb.EntryType_EntryNormal, 5, AppEntry(nil)},
	} {
		b, err := encodeControl(c.typ, c.term, c.data)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:len(b)-1])
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		typ, term, data, err := decodeControl(b)
		if err != nil {
			if !errors.Is(err, errControl) {
				t.Fatalf("error %v is not errControl", err)
			}
			return
		}
		re, err := encodeControl(typ, term, data)
		if err != nil {
			t.Fatalf("decoded %v term %d but cannot re-encode: %v", typ, term, err)
		}
		if !bytes.Equal(re[8:], b[8:]) {
			t.Fatalf("accepted bytes do not re-encode to themselves:\n got %x\nwant %x", b, re)
		}
	})
}

// FuzzDecodeState feeds arbitrary bytes as a stored state: never a panic, and what decodes
// re-encodes to a state that decodes the same.
func FuzzDecodeState(f *testing.F) {
	for _, p := range []*pstate{
		{},
		{installing: true, hs: &raftpb.HardState{Term: new(uint64(3)), Vote: new(uint64(1)), Commit: new(uint64(9))},
			snapIndex: 5, snapTerm: 2, snapNext: 100, cs: &raftpb.ConfState{Voters: []uint64{1, 2, 3}},
			snapData: []byte("app"), compIndex: 4, compTerm: 2},
		{snapIndex: 9, snapTerm: 3, snapNext: 40, cs: &raftpb.ConfState{Voters: []uint64{1, 2}},
			compIndex: 9, compTerm: 3, blobID: 9, blobLen: 70000, blobCRC: 0xdeadbeef},
	} {
		b, err := encodeState(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	// The state round-trips: it re-encodes to the bytes it was decoded from.
	brokertest.FuzzReDecodes(f, decodeState, encodeState, func(p, q *pstate) bool {
		re, _ := encodeState(p)
		re2, _ := encodeState(q)
		return bytes.Equal(re, re2)
	})
}

// TestControlBatchIsKafka: the control batch's fixed fields are what Kafka clients check (magic
// 2, control attribute, one record, the CRC over attributes..end) and decode back.
func TestControlBatchIsKafka(t *testing.T) {
	b, err := encodeControl(raftpb.EntryType_EntryConfChangeV2, 42, []byte("cc"))
	if err != nil {
		t.Fatal(err)
	}
	if b[offMagic] != 2 || b[offAttributes+1]&attrControl == 0 || b[offRecordCount+3] != 1 {
		t.Fatalf("not a control batch of one record: %x", b)
	}
	if int(int32(beUint32(b[offBatchLength:])))+lengthOverhead != len(b) {
		t.Fatal("batch length does not cover the batch")
	}
	typ, term, data, err := decodeControl(b)
	if err != nil || typ != raftpb.EntryType_EntryConfChangeV2 || term != 42 || string(data) != "cc" {
		t.Fatalf("decoded %v %d %q %v", typ, term, data, err)
	}
	if _, err := encodeControl(raftpb.EntryType_EntryNormal, 1, []byte("data")); err == nil {
		t.Fatal("a normal entry with data encoded as a control batch")
	}
}

func beUint32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// A version-1 state (inline snapshot data, no blob reference) still decodes, and version 2
// rejects a blob reference that contradicts itself.
func TestStateVersions(t *testing.T) {
	p := &pstate{snapIndex: 5, snapTerm: 2, snapNext: 100, snapData: []byte("app"), compIndex: 5, compTerm: 2}
	b, err := encodeState(p)
	if err != nil {
		t.Fatal(err)
	}
	v1 := append([]byte{1}, b[1:len(b)-6]...) // version 1: no blob id, length, CRC
	q, err := decodeState(v1)
	if err != nil || q.snapIndex != 5 || string(q.snapData) != "app" || q.blobID != 0 {
		t.Fatalf("version 1 state: %+v, %v", q, err)
	}
	bad := &pstate{snapIndex: 5, snapData: []byte("app"), blobID: 5, blobLen: 3}
	if b, _ := encodeState(bad); b != nil {
		if _, err := decodeState(b); err == nil {
			t.Fatal("inline data and a blob reference both accepted")
		}
	}
}
