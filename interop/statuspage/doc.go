// Package statuspage holds the status-page tests that need a real network: a gateway and a
// broker (cmd/gateway, cmd/broker) in network namespaces of their own on a bridge, with
// cmd/relay on the hub (interop/cluster), and the gateway's status page read in headless
// Chromium (Debian's chromium, driven by chromedp over its pipe, the browser itself inside the
// gateway's namespace: it reaches the page on the gateway's loopback and nothing else).
//
// TestStatusPageRelayAfterDirectBlocked: the page first shows the broker as a mesh peer on
// the direct path; then UDP between the nodes is dropped (nftables on the bridge) and the page
// shows the same peer on the relay path, with the relay's URL. Screenshots of both views are
// written to the test's artifact directory (go test -artifacts keeps them).
//
// Root is needed for the namespaces (CI runs as root); the test is skipped without it, and
// without chromium unless CI is set.
package statuspage
