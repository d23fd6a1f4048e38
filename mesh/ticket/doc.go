// Package ticket reads and writes iroh 0.28's node tickets: one copyable string carrying a
// node's id, its relay URL and its direct addresses, accepted wherever this project takes a
// node address.
//
// Text form (iroh-base 0.28 ticket.rs, ticket/node.rs): "node" followed by the ticket bytes in
// RFC 4648 base32 without padding, lowercase (parsing ignores case). The bytes are postcard:
//
//	00                 enum TicketWireFormat: Variant0
//	<32 bytes>         node id (Ed25519 public key)
//	00 | 01 <len> url  relay URL: Option<RelayUrl>, the URL as a string
//	<n> { 00 <4 bytes ip> | 01 <16 bytes ip> ; port varint }   direct addresses: a BTreeSet<SocketAddr>,
//	                   written in Rust's set order (V4 before V6, then ip, then port)
//
// That is the shape of iroh's NodeAddr (node id + AddrInfo, the same AddrInfo iroh-gossip puts
// in its PeerData: package mesh/gossip/proto encodes it). The golden test is iroh's own
// test_ticket_base32 hexdump; the interop suite checks the NodeAddr bytes against the Rust
// node's BlobTicket, which embeds the same NodeAddr.
//
// Parse is stricter than Rust's postcard: trailing bytes after the addresses are refused, so
// every accepted ticket re-encodes to itself (the fuzz target checks this).
package ticket
