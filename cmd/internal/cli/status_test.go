package cli

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMeshPeersFold(t *testing.T) {
	a, b := key.GenerateSecretKey().Public(), key.GenerateSecretKey().Public()
	got := MeshPeers([]endpoint.ConnPath{
		{Peer: a, ALPN: "/x/0", Kind: endpoint.PathDirect, Remote: netip.MustParseAddrPort("192.0.2.1:5"), RelayURL: "http://r"},
		{Peer: a, ALPN: brokermesh.ALPN, Kind: endpoint.PathDirect, Remote: netip.MustParseAddrPort("192.0.2.1:5")},
		{Peer: a, ALPN: "/y/0", Kind: endpoint.PathDirect, Remote: netip.MustParseAddrPort("192.0.2.1:5"), RTT: time.Millisecond},
		{Peer: b, ALPN: "/x/0", Kind: endpoint.PathRelay, RelayURL: "http://r", RTT: 2 * time.Millisecond},
	})
	if len(got) != 2 {
		t.Fatalf("%d rows: %+v", len(got), got)
	}
	if g := got[0]; g.NodeID != a.String() || g.Path != "direct" || g.Remote != "192.0.2.1:5" || g.RTT != time.Millisecond || strings.Join(g.ALPNs, ",") != "/x/0,"+brokermesh.ALPN+",/y/0" || g.Name != "broker" {
		t.Fatalf("direct peer %+v", g)
	}
	if g := got[1]; g.NodeID != b.String() || g.Path != "relay" || g.Remote != "http://r" || g.RTT != 2*time.Millisecond || g.Name != "" {
		t.Fatalf("relayed peer %+v", g)
	}
}
