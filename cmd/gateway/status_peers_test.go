package main

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
)

// The gateway's status page lists the nodes its mesh endpoint is connected to, with the path.
func TestStatusPageShowsMeshPeers(t *testing.T) {
	gw, peer := magicep.Connected(t, "/test/0")
	var st cli.LateServer
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
