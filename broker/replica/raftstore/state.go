package raftstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"go.etcd.io/raft/v3/raftpb"
	"google.golang.org/protobuf/proto"
)

// pstate is what raftstore keeps in the log's state (wal.Log.SetState): the hard state, the
// newest snapshot's metadata and data, and the compaction point. Layout (doc.go, State).
type pstate struct {
	installing bool // ApplySnapshot: the log reset to snapNext may not have happened yet
	hs         *raftpb.HardState
	snapIndex  uint64
	snapTerm   uint64
	snapNext   int64 // Kafka offset after the snapshot's index (where the log continues)
	cs         *raftpb.ConfState
	snapData   []byte // the application's part of the snapshot data, kept inline (version 1)
	compIndex  uint64 // the entry before the first one kept (Compact, ApplySnapshot; 0: none)
	compTerm   uint64
	// The application's part of the snapshot data kept in a blob of the log (version 2;
	// blobID 0: none): the blob's id (the snapshot index), length and CRC-32C.
	blobID  uint64
	blobLen uint64
	blobCRC uint32
}

// stateVersion is the layout written; version 1 (no blob reference) is still read.
const stateVersion = 2

var errState = errors.New("raftstore: malformed state")

// base returns the index and term of the entry before the log's first one: the compaction
// point (Compact, or an installed snapshot's index).
func (p *pstate) base() (index, term uint64) { return p.compIndex, p.compTerm }

func encodeState(p *pstate) ([]byte, error) {
	b := []byte{stateVersion, 0}
	if p.installing {
		b[1] = 1
	}
	mo := proto.MarshalOptions{Deterministic: true}
	var hs, cs []byte
	var err error
	if p.hs != nil {
		if hs, err = mo.Marshal(p.hs); err != nil {
			return nil, err
		}
	}
	if p.cs != nil {
		if cs, err = mo.Marshal(p.cs); err != nil {
			return nil, err
		}
	}
	b = binary.AppendUvarint(b, uint64(len(hs)))
	b = append(b, hs...)
	b = binary.AppendUvarint(b, p.snapIndex)
	b = binary.AppendUvarint(b, p.snapTerm)
	b = binary.AppendVarint(b, p.snapNext)
	b = binary.AppendUvarint(b, uint64(len(cs)))
	b = append(b, cs...)
	b = binary.AppendUvarint(b, uint64(len(p.snapData)))
	b = append(b, p.snapData...)
	b = binary.AppendUvarint(b, p.compIndex)
	b = binary.AppendUvarint(b, p.compTerm)
	b = binary.AppendUvarint(b, p.blobID)
	b = binary.AppendUvarint(b, p.blobLen)
	b = binary.BigEndian.AppendUint32(b, p.blobCRC)
	return b, nil
}

// decodeState decodes a stored state; an empty one is the zero state (a new log).
func decodeState(b []byte) (*pstate, error) {
	p := &pstate{}
	if len(b) == 0 {
		return p, nil
	}
	if len(b) < 2 || b[0] < 1 || b[0] > stateVersion || b[1]&^1 != 0 {
		return nil, fmt.Errorf("%w: version or flags", errState)
	}
	p.installing = b[1]&1 != 0
	r := b[2:]
	uv := func() uint64 {
		v, n := binary.Uvarint(r)
		if n <= 0 {
			r = nil
			return 0
		}
		r = r[n:]
		return v
	}
	bytesField := func() ([]byte, bool) {
		n, k := binary.Uvarint(r)
		if k <= 0 || n > uint64(len(r)-k) {
			return nil, false
		}
		v := r[k : k+int(n)]
		r = r[k+int(n):]
		return v, true
	}
	var err error
	if p.hs, err = protoField[raftpb.HardState](bytesField, "hard state"); err != nil {
		return nil, err
	}
	p.snapIndex, p.snapTerm = uv(), uv()
	next, n := binary.Varint(r)
	if n <= 0 {
		return nil, fmt.Errorf("%w: snapshot offset", errState)
	}
	r = r[n:]
	p.snapNext = next
	if p.cs, err = protoField[raftpb.ConfState](bytesField, "conf state"); err != nil {
		return nil, err
	}
	data, ok := bytesField()
	if !ok {
		return nil, fmt.Errorf("%w: snapshot data", errState)
	}
	if len(data) > 0 {
		p.snapData = append([]byte(nil), data...)
	}
	if r == nil {
		return nil, fmt.Errorf("%w: truncated", errState)
	}
	p.compIndex, p.compTerm = uv(), uv()
	if r == nil {
		return nil, fmt.Errorf("%w: compaction point", errState)
	}
	if b[0] >= 2 {
		p.blobID, p.blobLen = uv(), uv()
		if len(r) < 4 { // nil too: a uvarint failed
			return nil, fmt.Errorf("%w: blob reference", errState)
		}
		p.blobCRC = binary.BigEndian.Uint32(r)
		r = r[4:]
		if p.blobID == 0 && (p.blobLen != 0 || p.blobCRC != 0) || p.blobID != 0 && (p.blobLen == 0 || len(p.snapData) > 0) {
			return nil, fmt.Errorf("%w: blob reference", errState)
		}
	}
	if len(r) != 0 || p.snapNext < 0 {
		return nil, fmt.Errorf("%w: trailing bytes or negative offset", errState)
	}
	return p, nil
}

// Snapshot data: raftstore prefixes the application's snapshot data with the Kafka offset the
// log continues at, so that a replica installing the snapshot resets its log there.
//
//	offset size field
//	     0    1 version     1
//	     1    8 nextOffset  (big-endian)
//	     9    . the application's data (CreateSnapshot's data)
const snapHeaderLen = 9

func encodeSnapData(next int64, data []byte) []byte {
	b := make([]byte, snapHeaderLen, snapHeaderLen+len(data))
	b[0] = 1
	binary.BigEndian.PutUint64(b[1:], uint64(next))
	return append(b, data...)
}

// SnapshotData splits a partition snapshot's data (raftpb.Snapshot.Data of a snapshot from
// Store.Snapshot) into the Kafka offset the log continues at and the application's data
// (what CreateSnapshot was given). A StateMachine's Restore uses it.
func SnapshotData(data []byte) (nextOffset int64, appData []byte, err error) {
	if len(data) < snapHeaderLen || data[0] != 1 {
		return 0, nil, fmt.Errorf("raftstore: snapshot data of %d bytes is not a partition snapshot", len(data))
	}
	next := int64(binary.BigEndian.Uint64(data[1:]))
	if next < 0 {
		return 0, nil, fmt.Errorf("raftstore: snapshot continues at negative offset %d", next)
	}
	return next, data[snapHeaderLen:], nil
}

// protoField decodes the next length-prefixed field of a state record (next) as a T: nil if
// the field is empty, an errState error (naming what) if it is cut short or not a T.
func protoField[T any, P interface {
	*T
	proto.Message
}](next func() ([]byte, bool), what string) (P, error) {
	v, ok := next()
	if !ok {
		return nil, fmt.Errorf("%w: %s", errState, what)
	}
	if len(v) == 0 {
		return nil, nil
	}
	m := P(new(T))
	if err := proto.Unmarshal(v, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errState, what, err)
	}
	return m, nil
}
