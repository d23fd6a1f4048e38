package statuspage

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/meshkafka/meshkafka/interop/cluster"
)

func TestMain(m *testing.M) { cluster.Main(m) }

// statusAddr is where the gateway serves /metrics and the status page, inside its own
// network namespace (a fresh one: the port is free).
const statusAddr = "127.0.0.1:9464"

// peerRow is what the page's "Mesh peers" table shows for one peer, as rendered text.
type peerRow struct {
	What   string `json:"what"`
	Path   string `json:"path"`
	Remote string `json:"remote"`
	RTT    string `json:"rtt"`
}

// TestStatusPageRelayAfterDirectBlocked: a gateway and a broker, each in a namespace of its own
// on a bridge, with cmd/relay on the hub. In headless Chromium the gateway's status page first
// shows the broker as a mesh peer on the direct path (its UDP address and an RTT); then UDP
// between the two namespaces is dropped and the page, reloaded until it changes, shows the
// same peer on the relay path, with the relay's URL. Both views are kept as screenshots.
func TestStatusPageRelayAfterDirectBlocked(t *testing.T) {
	cluster.RequireNamespaces(t)
	browser := cluster.Chromium(t)
	c := cluster.New(t, cluster.Options{Brokers: 1, Gateways: 1, Netns: true, Relay: true,
		GatewayArgs: func(*cluster.Gateway) []string { return []string{"-metrics", statusAddr} }})
	c.StartBrokers(t, c.Brokers...)
	g, b := c.Gateways[0], c.Brokers[0]
	g.Start(t)

	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute) // a hang bound
	defer cancel()
	bctx := cluster.StartChromium(t, ctx, browser, g.NS.Netns)
	url := "http://" + statusAddr + "/"

	// Each check loads the page afresh (it would refresh itself every 5 s) and reads the row
	// of the broker's NodeId in the "Mesh peers" table.
	read := func() (peerRow, string, error) {
		if err := chromedp.Do(bctx, chromedp.Navigate(url), chromedp.WaitVisible("#brokers")); err != nil {
			return peerRow{}, "", err
		}
		js := `(() => {
			for (const tr of document.querySelectorAll('#peers tr.peer')) {
				const td = tr.querySelectorAll('td');
				if (td[0].innerText.trim() === ` + cluster.JSString(b.ID) + `) {
					return {what: td[1].innerText.trim(), path: td[2].innerText.trim(), remote: td[3].innerText.trim(), rtt: td[4].innerText.trim()};
				}
			}
			return {what: '', path: '', remote: '', rtt: ''};
		})()`
		row, err := chromedp.Run(bctx, chromedp.Evaluate[peerRow](js))
		if err != nil {
			return peerRow{}, "", err
		}
		body, err := chromedp.Run(bctx, chromedp.Text("body"))
		return row, body, err
	}
	// waitPath reloads until the broker's row shows the path, on a live broker connection
	// (what = broker: while the path changes, the Kafka-op connection may be down for a
	// moment and the row then shows only the gossip connection).
	waitPath := func(want string) (peerRow, string) {
		t.Helper()
		var row peerRow
		var body string
		var err error
		for {
			if row, body, err = read(); err == nil && row.Path == want && row.What == "broker" {
				return row, body
			}
			select {
			case <-ctx.Done():
				t.Fatalf("the page never showed broker %s on the %s path: last row %+v, err %v\n%s", b.ID, want, row, err, body)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}

	row, body := waitPath("direct")
	t.Logf("direct: %+v", row)
	brokerIP := b.NS.Public.String()
	if !strings.HasPrefix(row.Remote, brokerIP+":") || row.RTT == "" || row.RTT == "–" {
		t.Errorf("direct row %+v: want the broker's address %s:port and an RTT", row, brokerIP)
	}
	for _, want := range []string{"meshkafka gateway", "Mesh peers", "mesh: brokers"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page does not show %q:\n%s", want, body)
		}
	}
	cluster.Screenshot(t, bctx, "status-direct.png")

	c.Net.RelayOnly(true)
	row, body = waitPath("relay")
	t.Logf("relay: %+v", row)
	if row.Remote != c.RelayURL {
		t.Errorf("relay row %+v: want the relay %s", row, c.RelayURL)
	}
	if !strings.Contains(body, "Brokers") {
		t.Errorf("the page over the relay lacks its brokers table:\n%s", body)
	}
	cluster.Screenshot(t, bctx, "status-relay.png")
	if c.Net.Dropped() == 0 {
		t.Errorf("no UDP packet between the namespaces was dropped: the direct path was not blocked")
	}
}
