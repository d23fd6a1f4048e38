// Package meshtls is the TLS layer of iroh 0.28.1 (iroh-net src/tls), for
// crypto/tls and quic-go: a self-signed X.509 certificate that carries the
// node's Ed25519 key in the libp2p public-key extension, TLS 1.3 only,
// mutual authentication, and verification that yields the peer's NodeId.
//
// # Certificate
//
// A fresh ECDSA P-256 key (not related to the node key) is certified by
// itself (ecdsa-with-SHA256), with empty subject and issuer and validity
// 1975-01-01 to 4096-01-01 (rcgen's defaults, which iroh uses). It carries
// exactly one extension, marked critical:
//
//	OID 1.3.6.1.4.1.53594.1.1 (libp2p public key extension)
//	SignedKey ::= SEQUENCE {
//	    publicKey OCTET STRING,  -- the 32 raw Ed25519 node key bytes
//	    signature OCTET STRING,  -- 64-byte Ed25519 signature
//	}
//
// The signature is made with the node key over the ASCII bytes
// "libp2p-tls-handshake:" followed by the DER SubjectPublicKeyInfo of the
// certificate's own key. Unlike libp2p, the key is not protobuf-wrapped.
//
// No KeyUsage or BasicConstraints are set: Go would mark them critical and
// iroh rejects any critical extension it does not understand.
//
// # Verification (VerifyCertificate)
//
// As iroh's certificate::parse and verify_presented_certs: exactly one
// certificate; it parses; the libp2p extension is present exactly once
// (critical or not) with a 32-byte key that is a curve point and a 64-byte
// signature; no other critical extension; the current time lies within
// the validity period; the certificate key and signature algorithm are
// ECDSA P-256/SHA-256, ECDSA P-384/SHA-384 or Ed25519 (P-521, RSA and the
// rest are refused, as ring cannot verify them); the self-signature holds;
// and the extension signature by the node key holds. A dialer also checks
// that the proven NodeId is the one it dialed. x509.Certificate.Verify is
// never called: Go's chain verifier refuses the critical libp2p extension.
//
// # Handshake
//
// TLS 1.3 only; key exchange X25519, P-256, P-384 (rustls' ring provider
// set); the server requires a client certificate; session tickets are off
// so every connection is authenticated by a full handshake. The dialer
// sends SNI "localhost" and exactly one ALPN; the server offers the ALPNs
// registered at handshake time.
package meshtls
