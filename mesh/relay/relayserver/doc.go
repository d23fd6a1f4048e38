// Package relayserver is a relay server for iroh 0.28.1 nodes (relay protocol version 3, see
// package relay for the wire format).
//
// [Server.Accept] serves one already upgraded connection and blocks until it ends;
// [Server.ServeHTTP] performs the "iroh derp http" upgrade on GET /relay (and the legacy
// /derp) and then calls Accept. The handler also answers GET /relay/probe and the captive
// portal check GET /generate_204 like iroh's relay.
//
// Behaviour:
//   - A connection must send a ClientInfo frame within HandshakeTimeout. Its Ed25519 signature
//     must verify under the key it claims and its version must be 3; otherwise the connection
//     is closed and nothing it sent is forwarded. Only authenticated clients can send.
//   - Clients are keyed by node id; a new connection with the same key replaces the old one
//     (the old connection is closed).
//   - SendPacket to a connected node is delivered as RecvPacket(source, payload); to an unknown
//     node it is dropped silently. Each client has a bounded send queue (SendQueueDepth
//     packets); when it is full, packets to that client are dropped (UDP semantics: the
//     senders are not blocked by one slow reader).
//   - Per-client rate limit: a token bucket over SendPacket payload bytes (RateLimit bytes/s,
//     RateBurst bytes). A client that exceeds it is not disconnected; the server stops reading
//     its connection until tokens are available, so TCP back-pressure slows the flooder while
//     other clients are unaffected.
//   - Per-IP limits, because node keys cost nothing to make: all clients connected from one
//     IP address share a second token bucket (IPRateLimit, IPRateBurst; a packet waits for
//     the longer of its key's and its address's debts), and one address may hold at most
//     MaxConnsPerIP connections, counted from the upgrade so that connections which never
//     authenticate count too. ServeHTTP answers the next one with 429 Too Many Requests
//     before upgrading; Accept closes it and returns ErrTooManyConns. The library's zero
//     values mean unlimited; cmd/relay sets limits by default.
//   - When a client disconnects, every node it sent packets to gets PeerGone(client).
//   - Flow control: the server sends a client at most Window (48) frames beyond the last Ping
//     the client answered, adding its own Ping (8 bytes: the frame's sequence number, big
//     endian) every 12 frames; while the window is full it sends nothing more to that client
//     and packets for it queue (and are dropped once the queue is full). A client that leaves
//     the window closed for WriteTimeout is disconnected. This keeps iroh 0.28.1's relay
//     client, which deadlocks for good once 65 received frames wait between its two actors,
//     alive; every 0.28 client (and relay.Client) answers Pings. A client whose upgrade
//     request carries relay.UnpacedHeader (relay.Client as relayhttp dials it: it takes
//     every frame as it arrives) is left out of the window: a Pong round trip every 12
//     frames halves the throughput of small frames. Accept without ServeHTTP paces always.
//   - Ping is answered with Pong; KeepAlive is sent every KeepAlive interval (60 s by default,
//     well inside the 120 s after which a 0.28 client gives up on a silent connection).
//   - The server never sends frame types a 0.28 client does not know.
//
// Goroutines: each Accept call runs the connection's read loop on the caller's goroutine and
// owns one writer goroutine, which it stops and waits for before returning. [Server.Close]
// closes every connection and waits for all Accept calls to return.
//
// # Logging and time
//
// Config.Logger receives connection events (nil: discard). Config.Clock (package internal/clock;
// nil: the wall clock) drives the rate limiter, keep-alives and the wait for a Pong while a
// client's window is full; socket deadlines use the wall clock, which the kernel measures them
// by.
package relayserver
