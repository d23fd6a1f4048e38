package gossip

import (
	"context"
	"io"

	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// ALPN is the protocol id of iroh-gossip's v0 wire (0.28 to 0.35).
const ALPN = "/iroh-gossip/0"

// Transport is what gossip needs from the mesh: dialing a peer by id, and an
// address book to feed with the addresses peers announce. FromEndpoint
// adapts a mesh endpoint; tests use an in-memory one.
type Transport interface {
	// Dial opens a gossip connection to peer, resolving its address from
	// the address book.
	Dial(ctx context.Context, peer key.PublicKey) (Conn, error)
	// AddPeerAddr records the addresses a peer announced in its PeerData.
	AddPeerAddr(peer key.PublicKey, info proto.AddrInfo)
}

// Conn is one authenticated connection to a peer.
type Conn interface {
	RemoteID() key.PublicKey
	OpenStream(ctx context.Context) (Stream, error)
	AcceptStream(ctx context.Context) (Stream, error)
	// Close closes the connection with an application error code.
	Close(code uint64, reason string) error
}

// Stream is a bidirectional stream. Close finishes our sending half (FIN);
// the peer's half stays readable until it finishes or the connection closes.
type Stream interface {
	io.Reader
	io.Writer
	Close() error
}
