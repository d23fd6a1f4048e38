package raftmesh

import (
	"github.com/meshkafka/meshkafka/broker/internal/meshlink"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// ErrBadAddr is wrapped by every DecodeAddr error.
var ErrBadAddr = meshlink.ErrBadAddr

// EncodeAddr encodes a as the opaque peer address bytes of quorum.Transport.AddPeer and of raft
// conf-change contexts (layout in doc.go). IPv6 zones are not kept.
func EncodeAddr(a endpoint.NodeAddr) []byte { return meshlink.EncodeAddr(a) }

// DecodeAddr decodes what EncodeAddr made. It refuses anything else: an unknown version, a
// truncated field, a relay URL over 2048 bytes, more than 64 direct addresses, an address
// family other than 4 or 6, an invalid IP or port 0, trailing bytes, a node id that is not an
// Ed25519 point.
func DecodeAddr(b []byte) (endpoint.NodeAddr, error) { return meshlink.DecodeAddr(b) }
