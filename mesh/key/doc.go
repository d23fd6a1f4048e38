// Package key holds node identities: Ed25519 secret keys and the public keys
// that serve as NodeIds, with the text forms iroh 0.28 uses.
//
// Text forms (iroh-base 0.28 key.rs and base32.rs):
//
//   - PublicKey.String: the 32 key bytes in RFC 4648 base32 without padding,
//     lowercased: 52 characters.
//   - ParsePublicKey: a 64-character string is hex; anything else is base32
//     without padding, case-insensitive (iroh uppercases before decoding).
//     The bytes must decompress to a point on the Ed25519 curve, as
//     ed25519-dalek's VerifyingKey::from_bytes requires; non-canonical y
//     encodings and a set sign bit with x = 0 are accepted, as dalek does.
//   - ShortString: base32 of the first 10 bytes (16 characters), iroh's
//     fmt_short.
//
// Identity files (LoadOrCreate) are written as iroh 0.28 writes its node
// key file (iroh util/fs.rs load_secret_key): an unencrypted OpenSSH
// Ed25519 private key, mode 0600. Reading also accepts one line of base32
// or hex (iroh's SecretKey Display/FromStr forms).
package key
