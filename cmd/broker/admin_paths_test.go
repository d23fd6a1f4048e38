package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/internal/meshtest/magicep"
	"github.com/meshkafka/meshkafka/mesh/endpoint"
)

// TestAdminMeshPaths: GET /mesh/paths on the admin API lists the broker's live mesh
// connections with the peer's NodeId, ALPN and path (two endpoints on loopback: direct, with
// the peer's UDP address), and every other path still reaches the controller's handler.
func TestAdminMeshPaths(t *testing.T) {
	const alpn = "/test/paths/0"
	a, b := magicep.Connected(t, alpn)
	ctl := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "controller "+r.URL.Path) })
	srv := httptest.NewServer(adminHandler(ctl, a))
	defer srv.Close()

	get := func(path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, body
	}
	code, body := get("/mesh/paths")
	if code != http.StatusOK {
		t.Fatalf("GET /mesh/paths: %d %s", code, body)
	}
	var paths []MeshPath
	if err := json.Unmarshal(body, &paths); err != nil {
		t.Fatalf("%v: %s", err, body)
	}
	if len(paths) != 1 {
		t.Fatalf("want the one connection, got %s", body)
	}
	p := paths[0]
	if p.NodeID != b.NodeID().String() || p.ALPN != alpn || p.Path != endpoint.PathDirect || p.Remote != b.LocalAddr().String() || p.Relay != "" {
		t.Fatalf("path %+v: want direct to %s at %s over %s", p, b.NodeID(), b.LocalAddr(), alpn)
	}
	if code, body := get("/quorum/status"); code != http.StatusOK || string(body) != "controller /quorum/status" {
		t.Fatalf("GET /quorum/status: %d %q: want the controller's handler", code, body)
	}
	if code, _ := get("/mesh/nothing"); code != http.StatusOK {
		t.Fatalf("other paths must reach the controller's handler (its own 404s): got %d", code)
	}
}

// TestMeshPathsRelay: a relayed connection is reported with its relay URL and no remote.
func TestMeshPathsRelay(t *testing.T) {
	got := meshPaths([]endpoint.ConnPath{{ALPN: "x", Kind: endpoint.PathRelay, RelayURL: "http://10.99.0.1:3340", RTT: 1500 * time.Microsecond}})
	if len(got) != 1 || got[0].Path != "relay" || got[0].Relay != "http://10.99.0.1:3340" || got[0].Remote != "" || got[0].RTTMs != 1.5 {
		t.Fatalf("meshPaths: %+v", got)
	}
}
