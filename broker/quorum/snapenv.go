package quorum

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
)

// The snapshot data a Node hands to Storage.CreateSnapshot (and that travels in MsgSnap) is
// an envelope around the state machine's bytes that also carries the peer addresses, which
// would otherwise be lost when the conf-change entries that carried them are compacted:
//
//	"MKQS" | version u8 (1) | peers uvarint | peers × (id u64 BE | len uvarint | addr) | state…
var snapMagic = [4]byte{'M', 'K', 'Q', 'S'}

const snapVersion = 1

// maxSnapPeers bounds the peer count a decoder accepts (memory safety on bad input).
const maxSnapPeers = 1 << 16

var errBadSnapshot = errors.New("quorum: malformed snapshot envelope")

func encodeSnapshot(peers map[uint64][]byte, state []byte) []byte {
	b := make([]byte, 0, 16+len(state))
	b = append(b, snapMagic[:]...)
	b = append(b, snapVersion)
	b = binary.AppendUvarint(b, uint64(len(peers)))
	for _, id := range slices.Sorted(maps.Keys(peers)) {
		b = binary.BigEndian.AppendUint64(b, id)
		b = binary.AppendUvarint(b, uint64(len(peers[id])))
		b = append(b, peers[id]...)
	}
	return append(b, state...)
}

func decodeSnapshot(b []byte) (peers map[uint64][]byte, state []byte, err error) {
	if len(b) < 5 || [4]byte(b[:4]) != snapMagic {
		return nil, nil, fmt.Errorf("%w: no magic", errBadSnapshot)
	}
	if b[4] != snapVersion {
		return nil, nil, fmt.Errorf("%w: version %d", errBadSnapshot, b[4])
	}
	b = b[5:]
	n, k := binary.Uvarint(b)
	if k <= 0 || n > maxSnapPeers {
		return nil, nil, fmt.Errorf("%w: peer count", errBadSnapshot)
	}
	b = b[k:]
	peers = make(map[uint64][]byte, n)
	for range n {
		if len(b) < 8 {
			return nil, nil, fmt.Errorf("%w: truncated peer id", errBadSnapshot)
		}
		id := binary.BigEndian.Uint64(b)
		b = b[8:]
		l, k := binary.Uvarint(b)
		if k <= 0 || l > uint64(len(b)-k) {
			return nil, nil, fmt.Errorf("%w: peer address length", errBadSnapshot)
		}
		b = b[k:]
		if _, dup := peers[id]; dup || id == 0 {
			return nil, nil, fmt.Errorf("%w: peer id %x", errBadSnapshot, id)
		}
		peers[id] = slices.Clone(b[:l])
		b = b[l:]
	}
	return peers, b, nil
}
