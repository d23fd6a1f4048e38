package main

import (
	"context"
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokermesh"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
	"github.com/meshkafka/meshkafka/mesh/key"
)

func TestMeshPeersFold(t *testing.T) {
	a, b := key.GenerateSecretKey().Public(), key.GenerateSecretKey().Public()
	got := meshPeers([]endpoint.ConnPath{
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

// The gateway's status page lists the nodes its mesh endpoint is connected to, with the path.
func TestStatusPageShowsMeshPeers(t *testing.T) {
	gw, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	peer, err := endpoint.New(endpoint.Options{BindAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	peer.Handle("/test/0", func(ctx context.Context, c *endpoint.Conn) { <-ctx.Done() })
	c, err := gw.Dial(t.Context(), peer.Addr(), "/test/0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var st atomic.Pointer[statusState]
	rec := httptest.NewRecorder()
	statusPage(options{}, &st, gw, nil).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	page := string(body)
	i := strings.Index(page, peer.NodeID().String())
	if !strings.Contains(page, "Mesh peers") || i < 0 {
		t.Fatalf("page lists no mesh peer %s", peer.NodeID())
	}
	row := page[i:]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, ">direct<") || !strings.Contains(row, peer.LocalAddr().String()) || !strings.Contains(row, "/test/0") {
		t.Fatalf("peer row %q", row)
	}
}
