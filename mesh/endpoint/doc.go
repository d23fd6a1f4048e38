// Package endpoint is a QUIC endpoint speaking iroh 0.28.1's wire: one UDP
// socket, quic-go on top, TLS from mesh/meshtls, a router that hands
// accepted connections to a Handler by ALPN (like iroh's Router), Dial with
// reuse of a live connection per (peer, ALPN), and an address book.
//
// # Layers
//
//	Endpoint ──► quic.Transport ──► sock (our net.PacketConn) ──► *net.UDPConn
//
// sock wraps the UDP socket and keeps quic-go's fast path (batched reads,
// GSO, ECN) by implementing quic-go's OOB and ReadBatch interfaces. On
// Linux it also turns on UDP GRO, which quic-go does not do, and splits the
// coalesced buffers back into datagrams: about 30% less CPU per byte on
// loopback (Options.DisableGRO turns it off). Its packet filter drops iroh
// disco packets (magic "TS💬"; a Rust node sends them when it dials us, and
// quic-go would take them for short-header packets) when the endpoint runs
// on a plain socket; with Options.Paths, mesh/magicsock takes disco and relay
// packets itself (below). The transport has a
// stateless-reset key derived from the node key (so a restarted node resets connections
// peers still hold from its previous run); disco never reaches quic-go.
//
// With Options.Paths the transport runs on a magicsock-style PathConn
// instead (mesh/magicsock.Conn): quic-go then sees one stable mapped
// address per node, Dial hands the node's relay URL and direct addresses to
// the PathConn and dials the mapped address, and the PathConn picks relay
// or direct per packet. quic-go's batched/GSO fast path is not used there.
//
// # Receive queue drops and the receive gate
//
// quic-go's read loop hands each datagram to its connection's queue and drops it when 256
// are already waiting there (quic-go's MaxConnUnprocessedPackets). With GRO our reader
// takes up to 80 datagrams per syscall, far faster than a connection's run loop decrypts
// and handles them, so a bulk upload overflows that queue whenever the run loop falls
// behind, while the socket buffer (8 MiB) has room. A quic-go sender takes the loss in its
// stride; a Rust (quinn) sender also halves its window and, since the lost packets are
// larger than 1200 bytes, its black-hole detection may drop the path MTU to 1200 for the
// rest of the connection (21% more packets per byte from then on; without the gate in 46
// of 74 Rust → Go transfers of session 11, with it in none). The receive gate (rxgate.go,
// Options.RxGate, off by default) prevents that: the socket counts the bytes it hands over per source address against what the
// connections at that address have processed (ConnectionStats.BytesReceived). When more
// than 224 full-size packets wait it holds its batch, leaving the rest in the kernel,
// until 192 are left; it looks again at each write on the socket (the connection's ACK
// after each batch it takes) or after a millisecond. And as it reaches that limit it marks
// one ECN-capable datagram Congestion Experienced (at most one per 64 handed over and one
// per 100 ms per source), as an ECN-marking router queue would: quic-go and quinn senders
// mark their packets ECT(0) and shrink their window on a CE count rising in the ACKs as
// for a loss, without a retransmission and without quinn's black-hole suspicion. The mark
// is what a drop used to tell the sender. A gate that only held (the first version)
// stopped the drops too, but Go to Go it cost a third to a half of the throughput, since a
// sender that sees no loss keeps every queue full and the reader waits at every batch
// (BenchmarkQUICThroughput gate=hold: 84–100 holds per 32 MiB). A datagram that is not
// ECN-capable is never marked, only held.
//
// The gate stays off by default because it makes Go to Go slower. Session 11 (2026-12-07,
// interleaved pairs): per 32 MiB Go to Go it marks 0.4–0.5 datagrams and holds 2–7 times
// for 0.3–2 ms in all (SocketStats.RxHeldTime); its bookkeeping (one map lookup and one
// ConnectionStats per batch of at most 8 datagrams) costs little (bookkeeping alone:
// 0.995× with 16 streams, 0.986× with one). Go to Go with one stream it is about as fast as without (0.96–1.02×);
// with 16 streams BenchmarkQUICThroughput was 0.93× (slower in 6 of 6 pairs at load 4) and,
// on a quiet machine (load 1–3), 0.90× in interop's Go to Go pairing, at about the same CPU
// per byte (+1–2%). The cost is the marks: marking without holding was 0.815×; a quic-go
// sender loses more time to one CE mark than to a burst of drops, for reasons not found.
// With a Rust sender the gate removes every queue drop and every fall-back to 1200 bytes,
// our receiver sends 24–25 ACKs per MB instead of 27–34, both processes spend 4–19% less CPU
// per MB, and on the quiet machine Rust → Go was 0.87–0.93× Rust ↔ Rust with one stream and
// 0.97–0.98× with 16 (without the gate 0.78× and 0.81–0.83×). docs/meshperf-rust-to-go.md
// has the figures.
//
// Holding is per socket: while one source's connection is over the limit, datagrams from
// other sources wait in the kernel too, at most until that connection has taken 32 more
// (one run-loop batch) or, if it takes nothing, for the 50 ms stall period. A connection
// that far behind would otherwise have lost those datagrams; the others wait, they lose
// nothing. The real fix belongs in quic-go (backpressure instead of a drop, or a larger
// queue; and ACK frequency: quic-go ACKs every run-loop batch of at most 32 datagrams,
// 24–28 ACKs per MB against quinn's 12–15, which costs a Rust sender and us CPU per MB
// that nothing on our side of quic-go can remove). Endpoint.SocketStats counts packets,
// ACK-sized packets, syscalls, holds (and their time) and marks; interop
// BenchmarkQUICThroughput reports qdrop-pkts/MB and ce-marks/MB.
//
// # iroh 0.28.1 transport settings (read from iroh-net endpoint.rs and
// quinn-proto 0.11.8 TransportConfig::default)
//
//   - idle timeout 30 s (quinn default; iroh does not change it);
//   - keep-alive every 1 s on connections we dial (iroh sets it in
//     connect_quinn); none on accepted connections, as iroh;
//   - at most 100 concurrent incoming bidi and 100 uni streams (quinn);
//   - SNI "localhost" and exactly one ALPN per dial.
//
// Stream credit: quic-go runs with RequireStreamCreditRelease. Conn.AcceptStream and
// AcceptUniStream (and ServeStreams and ServeUniStreams, which run a handler on each stream
// they accept) give each accepted stream's credit back at once, so a finished stream
// frees its slot for the peer as quic-go does by default. Conn.AcceptStreamHeld leaves it to
// the protocol: quic-go sends MAX_STREAMS the moment a stream is done (its last data
// acknowledged), usually in a packet of its own; a request/response protocol with one stream
// per call (broker/brokermesh) gives a finished call's credit back just before its next
// answer, so the frame rides in that answer's packet (measured there: two packets per call
// instead of four). A holder must keep what it holds well below MaxIncomingBidi.
//
// Receive windows are not matched: quinn's are fixed (1.25 MB per stream,
// unlimited per connection); ours start at 8 MiB per stream and 16 MiB per
// connection and may auto-tune up to 16 and 64 MiB, which only affects how
// fast a peer may send to us (large initial windows saved ~5% CPU per byte
// on loopback against 1 MiB and 2 MiB).
//
// # Decisions
//
//   - Dial reuses only connections this endpoint dialed; accepted
//     connections belong to their Handler. Concurrent Dials to the same
//     (peer, ALPN) share one handshake. A reused Conn is shared: closing it
//     closes it for every holder, and the next Dial makes a new one.
//   - Dial tries the peer's direct addresses in order, starting the next
//     one when an attempt fails or DialStagger (250 ms) passes, and keeps
//     the first that completes the handshake. Addresses of a family the socket
//     cannot reach are skipped. A NodeAddr with only a relay URL needs a
//     relay path (a PathConn); without one Dial says so.
//   - A Handler owns its Conn and should close it when done; Close closes
//     every connection that is still open and cancels the Handler's ctx,
//     then waits for every Handler to return.
//   - Nothing here contacts a relay or discovery service unless the
//     options name one: Options.HomeRelay / STUNServers make New build a
//     magicsock itself (Addr then carries the home relay URL, and a NodeAddr
//     with only a relay URL is dialed through the relay); Options.Discovery
//     is asked for a node's address when Dial knows none, and, if it is a
//     discovery.Publisher, gets our address at start and whenever it
//     changes (checked every RepublishInterval, 5 s). Loopback addresses
//     are left out of what we publish unless they are all we have.
//   - With a home relay, a node with no known address at all is still
//     dialed: through our home relay (after discovery, if set, found
//     nothing within LookupTimeoutWithRelay, 2 s), where the magicsock
//     sends packets for nodes whose relay URL is unknown.
//   - Plain endpoints and endpoints on a magicsock mix: the magicsock
//     answers QUIC from addresses no known node has, and sends to a node's
//     direct candidates until one answers (see mesh/magicsock), so the two
//     reach each other directly (TestPlainAndRelayNodesMix). Only the relay
//     path needs a magicsock on both sides.
//
// # Logging and time
//
// Options.Logger receives debug and warning logs (nil: discard). Options.Clock (package
// internal/clock; nil: the wall clock) times the dial stagger and the republish check, and is
// passed to the magicsock the endpoint builds (path trust, heartbeat); QUIC's own timers
// belong to quic-go. The package reads no environment: Options.DisableGRO is what the
// binaries set from MESH_DISABLE_GRO=1.
//
// # Paths, for operators
//
// PathOf and Paths report, read-only, how each live connection reaches its peer: direct (the
// peer's real UDP address, from the magicsock's trusted path when there is one, never its
// mapped placeholder) or relay (the relay URL), with quic-go's smoothed RTT.
package endpoint
