// Package relay implements the relay ("DERP") wire protocol exactly as iroh-net 0.28.1 speaks
// it (relay protocol version 3), plus a low-level client over an already upgraded connection.
//
// The server lives in [github.com/meshkafka/meshkafka/mesh/relay/relayserver]; dialing and the
// HTTP upgrade live in [github.com/meshkafka/meshkafka/mesh/relay/relayhttp].
//
// # Connection
//
// The client opens TCP (plus TLS for https URLs) and sends
//
//	GET /relay HTTP/1.1
//	Host: <host>[:<port>]
//	Upgrade: iroh derp http
//
// The server answers "101 Switching Protocols" with the same Upgrade value. From then on the
// stream carries raw frames (no websocket). Our client adds "Meshkafka-Relay-Unpaced: 1"
// (UnpacedHeader): our server then leaves it out of its flow-control window (see Liveness).
//
// # Frames
//
//	type   u8
//	length u32 big-endian   (body only; at most 1 MiB)
//	body   [length]byte
//
// Frame types and bodies (C = client, S = server):
//
//	 2 ClientInfo    C→S  magic "RELAY🔑" (9) ‖ client Ed25519 key (32) ‖ signature (64) ‖ message
//	 4 SendPacket    C→S  destination key (32) ‖ payload (≤ 64 KiB)
//	 5 RecvPacket    S→C  source key (32) ‖ payload (≤ 64 KiB)
//	 6 KeepAlive     S→C  empty
//	 7 NotePreferred C→S  1 byte: 1 = this is the client's home relay, 0 = not
//	 8 PeerGone      S→C  key (32) of a peer that sent to us and disconnected
//	12 Ping          both 8 bytes
//	13 Pong          both the 8 bytes of the ping
//	14 Health        S→C  UTF-8 problem text (empty = healthy)
//	15 Restarting    S→C  reconnect-in ms u32 BE ‖ try-for ms u32 BE
//
// Unknown frame types are a decode error, as in iroh 0.28 (a 0.28 peer drops the connection on
// one), so neither side may send anything outside this table.
//
// # Handshake
//
// The first frame is ClientInfo. Its message is the postcard encoding of ClientInfo{version: 3},
// which is the single byte 0x03, and the signature is the client's Ed25519 signature over the
// message bytes. The server sends nothing back: there is no server key and no server info in
// version 3. A server verifies the signature and rejects any version other than 3.
//
// # Payloads
//
// iroh's magicsock packs one or more datagrams into each SendPacket payload, each prefixed by
// its length as a u16 little-endian ([AppendDatagram], [SplitDatagrams]). The relay itself does
// not look inside payloads.
//
// # Liveness
//
// The server sends KeepAlive (or Ping) at least every 60 s; a 0.28 client drops a connection
// that has been silent for 120 s. Either side answers Ping with a Pong carrying the same 8 bytes.
// Our server also uses its Pings for flow control (relayserver.Window), so a client must answer
// them; [Client.Recv] does.
package relay
