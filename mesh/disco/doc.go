// Package disco implements iroh 0.28.1's discovery ("disco") messages: the Ping, Pong and
// CallMeMaybe probes that nodes exchange over UDP and relays to find and confirm direct paths,
// and the crypto_box that seals them.
//
// # Packet
//
//	magic   "TS💬" (6 bytes: 54 53 f0 9f 92 ac)
//	sender  Ed25519 node id (32)
//	tag     Poly1305 tag (16)
//	ct      sealed message
//	nonce   (24)          -- last, unlike Tailscale (and unlike iroh's own module comment)
//
// # Crypto
//
// There is no separate disco key: the node key is converted to X25519 (secret = the clamped
// SHA-512(seed)[:32] scalar, public = the Montgomery u of the Ed25519 point). The box is
// libsodium's crypto_box_curve25519xchacha20poly1305 ("easy" layout), as RustCrypto's
// crypto_box ChaChaBox:
//
//	k       = HChaCha20(X25519(secret, peer), 0¹⁶)          (cached per peer: [Shared])
//	stream  = XChaCha20(k, nonce), counter 0
//	polykey = stream[0:32];  ct = plaintext ⊕ stream[32:]
//	tag     = Poly1305(polykey, ct)                          (no AAD, no length block)
//
// # Messages (plaintext)
//
//	type u8 ‖ version u8 (0) ‖ payload
//	1 Ping         tx id (12) ‖ sender node key (32)                 (longer input is accepted)
//	2 Pong         tx id (12) ‖ 00 ‖ IPv6 or v4-mapped (16) ‖ port u16 LE
//	                          | 01 ‖ relay URL (UTF-8, to the end)
//	3 CallMeMaybe  N × (IPv6 or v4-mapped (16) ‖ port u16 LE)
//
// Ports are little-endian (iroh differs from Tailscale here).
package disco
