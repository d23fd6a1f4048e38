package meshlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// addrVersion is the first byte of an encoded peer address.
const addrVersion = 1

// Limits on a decoded peer address.
const (
	maxRelayURL = 2048
	maxDirect   = 64
)

// ErrBadAddr is wrapped by every DecodeAddr error.
var ErrBadAddr = errors.New("bad peer address")

// EncodeAddr encodes a as the opaque peer address bytes of Transport.AddPeer (and of the raft
// transports' AddPeer and the quorum's conf-change contexts; layout in doc.go). IPv6 zones are
// not kept.
func EncodeAddr(a endpoint.NodeAddr) []byte {
	b := make([]byte, 0, 1+32+1+len(a.RelayURL)+1+len(a.Direct)*19)
	b = append(b, addrVersion)
	id := a.ID.Bytes()
	b = append(b, id[:]...)
	b = binary.AppendUvarint(b, uint64(len(a.RelayURL)))
	b = append(b, a.RelayURL...)
	b = binary.AppendUvarint(b, uint64(len(a.Direct)))
	for _, ap := range a.Direct {
		ip := ap.Addr().WithZone("")
		if ip.Is4() {
			b = append(b, 4)
		} else {
			b = append(b, 6)
		}
		b = append(b, ip.AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, ap.Port())
	}
	return b
}

// DecodeAddr decodes what EncodeAddr made. It refuses anything else: an unknown version, a
// truncated field, a relay URL over 2048 bytes, more than 64 direct addresses, an address
// family other than 4 or 6, an invalid IP or port 0, trailing bytes, a node id that is not an Ed25519 point.
func DecodeAddr(b []byte) (endpoint.NodeAddr, error) {
	var a endpoint.NodeAddr
	if len(b) == 0 {
		return a, fmt.Errorf("%w: empty", ErrBadAddr)
	}
	if b[0] != addrVersion {
		return a, fmt.Errorf("%w: version %d, want %d", ErrBadAddr, b[0], addrVersion)
	}
	b = b[1:]
	if len(b) < key.Size {
		return a, fmt.Errorf("%w: node id truncated", ErrBadAddr)
	}
	id, err := key.PublicKeyFromBytes(b[:key.Size])
	if err != nil {
		return a, fmt.Errorf("%w: %v", ErrBadAddr, err)
	}
	a.ID = id
	b = b[key.Size:]
	n, w := minimalUvarint(b)
	if w <= 0 || n > maxRelayURL || uint64(len(b)-w) < n {
		return endpoint.NodeAddr{}, fmt.Errorf("%w: relay URL length", ErrBadAddr)
	}
	a.RelayURL = string(b[w : w+int(n)])
	b = b[w+int(n):]
	n, w = minimalUvarint(b)
	if w <= 0 || n > maxDirect {
		return endpoint.NodeAddr{}, fmt.Errorf("%w: direct address count", ErrBadAddr)
	}
	b = b[w:]
	for range n {
		if len(b) < 1 {
			return endpoint.NodeAddr{}, fmt.Errorf("%w: direct address truncated", ErrBadAddr)
		}
		var size int
		switch b[0] {
		case 4:
			size = 4
		case 6:
			size = 16
		default:
			return endpoint.NodeAddr{}, fmt.Errorf("%w: address family %d", ErrBadAddr, b[0])
		}
		if len(b) < 1+size+2 {
			return endpoint.NodeAddr{}, fmt.Errorf("%w: direct address truncated", ErrBadAddr)
		}
		ip, _ := netip.AddrFromSlice(b[1 : 1+size])
		port := binary.BigEndian.Uint16(b[1+size:])
		if port == 0 || ip.IsUnspecified() {
			return endpoint.NodeAddr{}, fmt.Errorf("%w: direct address %v port %d", ErrBadAddr, ip, port)
		}
		a.Direct = append(a.Direct, netip.AddrPortFrom(ip, port))
		b = b[1+size+2:]
	}
	if len(b) != 0 {
		return endpoint.NodeAddr{}, fmt.Errorf("%w: %d trailing bytes", ErrBadAddr, len(b))
	}
	return a, nil
}

// minimalUvarint reads an unsigned LEB128 varint like binary.Uvarint, and refuses (w == 0) one
// that is not in its shortest form (a padded 0x80 0x00 for 0): every encoding decodes from
// exactly one byte string, so a decoded address re-encodes to the bytes it came from.
func minimalUvarint(b []byte) (uint64, int) {
	n, w := binary.Uvarint(b)
	if w > 1 && b[w-1] == 0 {
		return 0, 0
	}
	return n, w
}
