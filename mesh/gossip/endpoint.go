package gossip

import (
	"context"

	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/gossip/proto"
	"github.com/meshkafka/meshkafka/mesh/key"
)

// Attach starts a gossip node on a mesh endpoint and registers it for ALPN
// "/iroh-gossip/0". Unset Config fields are filled from the endpoint:
// Transport (EndpointTransport), Me (its node id) and Addr (its direct
// addresses, no relay URL: a node without a reachable relay must not
// announce one, or Rust peers try to reach it there). Close the Gossip before
// the endpoint.
func Attach(ep *endpoint.Endpoint, cfg Config) (*Gossip, error) {
	if cfg.Transport == nil {
		cfg.Transport = EndpointTransport(ep)
	}
	if cfg.Me.IsZero() {
		cfg.Me = ep.NodeID()
	}
	if cfg.Addr == nil {
		cfg.Addr = func() proto.AddrInfo { return proto.AddrInfo{Direct: ep.Addr().Direct} }
	}
	g, err := New(cfg)
	if err != nil {
		return nil, err
	}
	ep.Handle(ALPN, func(ctx context.Context, c *endpoint.Conn) {
		_ = g.HandleConn(ctx, EndpointConn(c))
	})
	return g, nil
}

// EndpointTransport adapts a mesh endpoint to Transport: Dial resolves the
// peer from the endpoint's address book, AddPeerAddr feeds it.
func EndpointTransport(ep *endpoint.Endpoint) Transport { return epTransport{ep} }

type epTransport struct{ ep *endpoint.Endpoint }

func (t epTransport) Dial(ctx context.Context, peer key.PublicKey) (Conn, error) {
	c, err := t.ep.Dial(ctx, endpoint.NodeAddr{ID: peer}, ALPN)
	if err != nil {
		return nil, err
	}
	return EndpointConn(c), nil
}

func (t epTransport) AddPeerAddr(peer key.PublicKey, info proto.AddrInfo) {
	t.ep.AddNodeAddr(endpoint.NodeAddr{ID: peer, RelayURL: info.RelayURL, Direct: info.Direct})
}

// EndpointConn adapts a mesh endpoint connection to Conn.
func EndpointConn(c *endpoint.Conn) Conn { return epConn{c} }

type epConn struct{ c *endpoint.Conn }

func (e epConn) RemoteID() key.PublicKey { return e.c.RemoteID() }

func (e epConn) OpenStream(ctx context.Context) (Stream, error) {
	s, err := e.c.OpenStream(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (e epConn) AcceptStream(ctx context.Context) (Stream, error) {
	s, err := e.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (e epConn) Close(code uint64, reason string) error { return e.c.CloseWithError(code, reason) }
