package status

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/telemetry"
)

// fakeSource answers the page's Kafka requests with one broker and nothing else.
type fakeSource struct{}

func (fakeSource) Local(_ context.Context, req kmsg.Request) (kmsg.Response, error) {
	switch req.(type) {
	case *kmsg.MetadataRequest:
		r := kmsg.NewPtrMetadataResponse()
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = 1, "127.0.0.1", 9092
		r.Brokers = append(r.Brokers, b)
		r.ControllerID = 1
		return r, nil
	case *kmsg.ListOffsetsRequest:
		return kmsg.NewPtrListOffsetsResponse(), nil
	case *kmsg.ListGroupsRequest:
		return kmsg.NewPtrListGroupsResponse(), nil
	}
	return nil, errors.New("unexpected request")
}

func get(t *testing.T, info Info) string {
	t.Helper()
	rec := httptest.NewRecorder()
	Handler(fakeSource{}, func() Info { return info }).ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	body, _ := io.ReadAll(rec.Result().Body)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, body)
	}
	return string(body)
}

// rowOf returns the table row of the page containing s.
func rowOf(t *testing.T, page, s string) string {
	t.Helper()
	i := strings.Index(page, s)
	if i < 0 {
		t.Fatalf("%q not on the page", s)
	}
	start := strings.LastIndex(page[:i], "<tr")
	end := strings.Index(page[i:], "</tr>")
	return page[start : i+end]
}

func TestMeshPeersSection(t *testing.T) {
	calls := 0
	info := Info{Role: "gateway", Mode: "mesh", Peers: func() []MeshPeer {
		calls++
		return []MeshPeer{
			{NodeID: "zzrelayed", Name: "broker 2", ALPNs: []string{"/meshkafka/kafka/0"}, Path: "relay", Remote: "http://relay.example:3340", RTT: 31 * time.Millisecond},
			{NodeID: "aadirect", Name: "broker 1", ALPNs: []string{"/iroh-gossip/0", "/meshkafka/kafka/0"}, Path: "direct", Remote: "192.0.2.7:4433", RTT: 1500 * time.Microsecond},
			{NodeID: "mmnew", Path: "direct", Remote: "192.0.2.8:4433"},
		}
	}}
	page := get(t, info)
	if calls != 1 || !strings.Contains(page, "<h2>Mesh peers</h2>") {
		t.Fatalf("no mesh peers section (source called %d times)", calls)
	}
	d := rowOf(t, page, "aadirect")
	for _, want := range []string{"broker 1", `class="path direct">direct<`, "192.0.2.7:4433", "1.5ms", "/iroh-gossip/0, /meshkafka/kafka/0"} {
		if !strings.Contains(d, want) {
			t.Fatalf("direct peer row lacks %q: %s", want, d)
		}
	}
	r := rowOf(t, page, "zzrelayed")
	for _, want := range []string{"broker 2", `class="path relay">relay<`, "http://relay.example:3340", "31ms"} {
		if !strings.Contains(r, want) {
			t.Fatalf("relayed peer row lacks %q: %s", want, r)
		}
	}
	if n := rowOf(t, page, "mmnew"); !strings.Contains(n, "–") {
		t.Fatalf("peer without an RTT sample: %s", n)
	}
	// Sorted by node id.
	if a, m, z := strings.Index(page, "aadirect"), strings.Index(page, "mmnew"), strings.Index(page, "zzrelayed"); !(a < m && m < z) {
		t.Fatalf("peers not in node id order: %d %d %d", a, m, z)
	}
}

func TestMeshPeersSectionEmptyAndAbsent(t *testing.T) {
	page := get(t, Info{Role: "gateway", Peers: func() []MeshPeer { return nil }})
	if !strings.Contains(page, "<h2>Mesh peers</h2>") || !strings.Contains(page, "No mesh connections.") {
		t.Fatal("an endpoint with no connections should say so")
	}
	page = get(t, Info{Role: "gateway"})
	if strings.Contains(page, "Mesh peers") {
		t.Fatal("mesh peers section shown without a mesh endpoint")
	}
	if !strings.Contains(page, "127.0.0.1:9092") {
		t.Fatal("the rest of the page is missing")
	}
}

// A trace is laid out on its own timeline: the root spans the whole bar, a child starting
// halfway for a quarter of the time sits at 50% with 25% width, indented under its parent;
// a span from another process says so, and a failed one shows its error.
func TestWaterfallLayout(t *testing.T) {
	t0 := time.Unix(1000, 0)
	tv := telemetry.TraceView{ID: "t1", Start: t0, End: t0.Add(4 * time.Millisecond), Spans: []telemetry.SpanView{
		{Name: "gateway.kafka.request", SpanID: "a", Start: t0, End: t0.Add(4 * time.Millisecond), Attrs: []string{"kafka.api_key=0"}},
		{Name: "mesh.kafkaop.sent", SpanID: "b", ParentID: "a", Start: t0.Add(2 * time.Millisecond), End: t0.Add(3 * time.Millisecond), Error: "broker gone"},
		{Name: "mesh.kafkaop.handle", SpanID: "c", ParentID: "b", RemoteParent: true, Start: t0.Add(2 * time.Millisecond), End: t0.Add(3 * time.Millisecond)},
	}}
	ws := waterfalls([]telemetry.TraceView{tv, tv}, 1)
	if len(ws) != 1 {
		t.Fatalf("%d waterfalls, want the bound 1", len(ws))
	}
	w := ws[0]
	if w.Root != "gateway.kafka.request Produce" || w.Duration != "4ms" || len(w.Rows) != 3 {
		t.Fatalf("waterfall %+v", w)
	}
	if r := w.Rows[0]; r.Left != "0.00" || r.Width != "100.00" || r.Indent != 1 {
		t.Errorf("root row %+v", r)
	}
	if r := w.Rows[1]; r.Left != "50.00" || r.Width != "25.00" || r.Indent != 3 || r.Error != "broker gone" {
		t.Errorf("child row %+v", r)
	}
	if r := w.Rows[2]; r.Indent != 5 || !r.Remote {
		t.Errorf("grandchild row %+v", r)
	}
}
