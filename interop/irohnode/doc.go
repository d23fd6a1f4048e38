// Package irohnode runs real Rust iroh 0.28.1 nodes (the npm package @number0/iroh@0.28.1) for
// interop tests and controls them from Go.
//
// # Safety
//
// A Rust iroh node tries to reach public relays, pkarr and DNS servers. Run it, and the Go side
// that talks to it, only inside a private network namespace with nothing but loopback up. Every
// test that uses this package starts with [RequireNamespace], which skips (or, with
// INTEROP_REQUIRED=1, fails) unless node, the npm packages and such a namespace are present:
//
//	npm ci --prefix interop                       # outside: the registry is not reachable inside
//	go test -c -o bin/interop.test ./interop      # outside
//	unshare -n sh -c 'ip link set lo up && cd interop && ../bin/interop.test -test.v'
//
// `go tool task interop` does exactly this.
//
// # Shape
//
// A [Driver] is one Node.js process running interop/driver/driver.mjs. It can host several Rust
// nodes ([Driver.NewNode]); nodes in one driver share its JavaScript thread, so a benchmark that
// wants independent peers starts one driver per node. Go talks to the driver over JSON lines on
// stdin/stdout: every command gets one reply, and the driver also sends events (a connection was
// accepted, a stream finished, a gossip message arrived), which tests wait for with
// [Driver.WaitEvent] and the typed helpers. [Start] ties a driver to a test: it is killed in
// t.Cleanup, and its stderr is logged when the test failed. [StartDriver] itself refuses to run
// outside a private namespace, so a test that forgot RequireNamespace fails instead of leaking
// traffic.
//
// Nodes are created with relay mode at its built-in default (the FFI offers no other) and node
// discovery off unless [NodeOptions.Discovery] is set; inside the namespace the relay and pkarr
// attempts fail harmlessly. They bind 127.0.0.1:0 and [::1]:0.
//
// # Protocol handlers (what a Rust node serves)
//
// [NodeOptions.ALPNs] maps an ALPN to a [Mode]. The same modes serve streams that the peer opens
// on a connection the Rust node dialed ([Node.Connect] with a serve mode):
//
//	echo    bi: every byte read is written back, then finish. uni: opens a uni stream back and
//	        echoes into it.
//	sink    reads to the end. bi: replies "<bytes> <sha256 hex>\n" and finishes. uni: nothing.
//	source  reads an 8-byte big-endian length N, then writes N bytes of [Pattern] and finishes
//	        (bi: on the same stream; uni: on a new uni stream back).
//
// Every served stream ends with an "stream" event carrying byte counts, sha256 of each direction,
// its duration and any error; every accepted connection produces "accepted" (with the peer's node
// id as Rust saw it) or "acceptError" (a refused handshake), and later "closed".
//
// # Wire protocol of the driver
//
// Commands (stdin, one JSON object per line, with "id" and "cmd"): create, nodeAddr,
// addNodeAddr, remoteInfo, connect, transfer, closeConn, sendDatagram, readDatagram, subscribe,
// broadcast, unsubscribe, shutdown, logLevel, ping. Replies: {"id", "ok": true, ...} or
// {"id", "error"}. Events: {"event": ready|accepted|acceptError|closed|stream|gossip|
// protocolError, ...}. Binary payloads are base64, secret keys and topics hex, node ids iroh 0.28
// base32 text. EOF on stdin shuts all nodes down and ends the process.
//
// # Traps observed with the real node (iroh 0.28.1)
//
//   - QUIC from an address the node was not told about gets no answer: call [Node.AddNodeAddr]
//     with the Go node's address before a Go node dials it.
//   - Once the node has a path for a node id, AddNodeAddr with a new address for the same id
//     adds it to the list but QUIC from that address is still ignored (seen for 15 s and more).
//     A Go peer that rebinds must use a new id, or announce itself another way (disco ping).
//   - TLS 1.3: a refused client certificate shows up after the client's handshake completed, as
//     the connection being closed with the alert (42 no extension, 46 bad extension signature);
//     an unserved ALPN is alert 120; a server proving another id than dialed is alert 47.
//   - A subscription's first neighbour set arrives as one "joined" event, on both sides.
//   - Serving echo on both ends of a connection makes uni streams ping-pong forever; serve the
//     dialing side as sink.
//   - Keep the Iroh object referenced (the driver does): a collected node stops answering.
//
// # What the npm package cannot do
//
// The FFI (iroh-ffi v0.28.1, crate iroh-js) has no relay-mode option (so no RelayMode::Disabled:
// nodes always pick https://use1-1.relay.iroh.network./ as home relay, unreachable in the
// namespace), no custom discovery, no DNS resolver option, no transport config (keep-alive, idle
// timeout, windows), no raw endpoint without the iroh node around it (blobs and gossip are always
// served, so /iroh-bytes/4 and /iroh-gossip/0 are always accepted), no access to the TLS
// certificate or the remote's certificate, and no way to register a protocol after the node is
// built: ALPNs are fixed at creation. Gossip exposes subscribe/broadcast/broadcastNeighbors and
// the events joined, neighborUp, neighborDown, received and lagged; there is no join-with-address
// (teach addresses first with [Node.AddNodeAddr]). mDNS runs only with Discovery set, and only
// after [EnableLoopbackMulticast].
package irohnode
