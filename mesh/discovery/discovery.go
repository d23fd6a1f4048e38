package discovery

import (
	"context"
	"errors"
	"net/netip"

	"github.com/meshkafka/meshkafka/mesh/key"
)

// NodeAddr is what discovery knows about a node: its id, an optional relay URL and its
// direct UDP addresses.
type NodeAddr struct {
	ID       key.PublicKey
	RelayURL string
	Direct   []netip.AddrPort
}

// ErrNotFound is returned by Lookup when no address for the node could be found before the
// context ended (it wraps the context's error then).
var ErrNotFound = errors.New("discovery: node not found")

// Resolver finds the address of a node by id. Lookup blocks until an address is known or ctx
// ends.
type Resolver interface {
	Lookup(ctx context.Context, id key.PublicKey) (NodeAddr, error)
}

// Publisher announces our own address. Each call replaces the previous announcement; an addr
// with no direct addresses and no relay URL withdraws it.
type Publisher interface {
	Publish(addr NodeAddr)
}

// Discovery is a Resolver that also publishes.
type Discovery interface {
	Resolver
	Publisher
}

// Watcher is implemented by sources that learn about nodes unprompted (mDNS hears every
// announcement on the LAN). Peers returns the nodes currently known.
type Watcher interface {
	Peers() []NodeAddr
}
