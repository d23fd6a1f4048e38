package endpoint

import (
	"net/netip"
	"slices"
	"time"

	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/magicsock"
)

// Path kinds reported by ConnPath.Kind.
const (
	PathDirect  = "direct"  // UDP straight to the peer
	PathRelay   = "relay"   // through the peer's relay
	PathUnknown = "unknown" // a PathConn that cannot say (neither trusted direct nor relay)
)

// ConnPath is how one live connection reaches its peer right now: read-only, for
// operators (mesh echo/ping, the status page).
type ConnPath struct {
	Peer key.PublicKey
	ALPN string
	Kind string // PathDirect, PathRelay or PathUnknown
	// Remote is the peer's real UDP address when Kind is PathDirect (never a magicsock
	// mapped placeholder); zero otherwise.
	Remote netip.AddrPort
	// RelayURL is the relay the packets go through when Kind is PathRelay (and, over a
	// magicsock, the peer's relay when known).
	RelayURL string
	// RTT is quic-go's smoothed round-trip time of the connection (0 before any sample).
	RTT time.Duration
	// DiscoLatency is the magicsock's disco ping latency of the direct path (0 if none
	// or no magicsock).
	DiscoLatency time.Duration
}

// pather is implemented by a PathConn that can tell the current path to a node
// (mesh/magicsock.Conn).
type pather interface {
	Path(id key.PublicKey) (magicsock.PathInfo, bool)
}

// PathOf reports the current path of c, a connection of this endpoint.
func (e *Endpoint) PathOf(c *Conn) ConnPath {
	p := ConnPath{Peer: c.remote, ALPN: c.alpn, RTT: c.qc.ConnectionStats().SmoothedRTT}
	if e.paths == nil {
		p.Kind, p.Remote = PathDirect, addrPortOf(c.qc.RemoteAddr())
		return p
	}
	p.Kind = PathUnknown
	pt, ok := e.paths.(pather)
	if !ok {
		return p
	}
	pi, ok := pt.Path(c.remote)
	if !ok {
		return p
	}
	p.RelayURL, p.DiscoLatency = pi.RelayURL, pi.Latency
	switch {
	case pi.Direct.IsValid():
		p.Kind, p.Remote = PathDirect, pi.Direct
	case pi.RelayURL != "":
		p.Kind = PathRelay
	}
	return p
}

// Paths reports the path of every live connection, ordered by peer id then ALPN.
func (e *Endpoint) Paths() []ConnPath {
	e.mu.Lock()
	conns := make([]*Conn, 0, len(e.conns))
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()
	out := make([]ConnPath, 0, len(conns))
	for _, c := range conns {
		out = append(out, e.PathOf(c))
	}
	slices.SortFunc(out, func(a, b ConnPath) int {
		ab, bb := a.Peer.Bytes(), b.Peer.Bytes()
		if c := slices.Compare(ab[:], bb[:]); c != 0 {
			return c
		}
		switch {
		case a.ALPN < b.ALPN:
			return -1
		case a.ALPN > b.ALPN:
			return 1
		}
		return 0
	})
	return out
}
