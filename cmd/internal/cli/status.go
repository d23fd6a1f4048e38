package cli

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/broker/quorum/raftmesh"
	"github.com/meshkafka/meshkafka/broker/replica/replmesh"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/gateway/status"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/kafkapipe"
)

// LateServer answers the status page's Kafka requests (status.Source) once the process's
// gateway.Server exists: a broker makes its server only when the quorum has given it a Kafka
// id.
type LateServer struct {
	p atomic.Pointer[lateServer]
}

type lateServer struct {
	srv  *gateway.Server
	addr string
}

// Set makes s the server that answers from now on; addr is the host:port its Kafka clients
// are told ("" when it has no listener).
func (l *LateServer) Set(s *gateway.Server, addr string) { l.p.Store(&lateServer{s, addr}) }

// Local answers req through the server, or fails while there is none yet.
func (l *LateServer) Local(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	s := l.p.Load()
	if s == nil {
		return nil, errors.New("starting: not serving Kafka requests yet")
	}
	return s.srv.Local(ctx, req)
}

// Ready reports whether a server was set.
func (l *LateServer) Ready() bool { return l.p.Load() != nil }

// Addr is the address given to Set ("" before).
func (l *LateServer) Addr() string {
	if s := l.p.Load(); s != nil {
		return s.addr
	}
	return ""
}

// MeshPeers folds an endpoint's connections into one status-page row per peer: what it is
// (from the protocols spoken with it), its protocols, and the path, remote (UDP address when
// direct, relay URL when relayed) and RTT of its first connection (all of a peer's
// connections share the magicsock path).
func MeshPeers(paths []endpoint.ConnPath) []status.MeshPeer {
	var out []status.MeshPeer
	idx := map[string]int{}
	for _, p := range paths {
		id := p.Peer.String()
		i, ok := idx[id]
		if !ok {
			remote := p.RelayURL
			if p.Kind == endpoint.PathDirect {
				remote = p.Remote.String()
			}
			idx[id], i = len(out), len(out)
			out = append(out, status.MeshPeer{NodeID: id, Path: p.Kind, Remote: remote, RTT: p.RTT})
		}
		out[i].ALPNs = append(out[i].ALPNs, p.ALPN)
		switch p.ALPN {
		case brokermesh.ALPN, raftmesh.ALPN, replmesh.ALPN:
			if out[i].Name == "" {
				out[i].Name = "broker"
			}
		case kafkapipe.ALPN:
			if out[i].Name == "" {
				out[i].Name = "Kafka client (kafka-proxy)"
			}
		}
		if out[i].RTT == 0 {
			out[i].RTT = p.RTT
		}
	}
	return out
}
