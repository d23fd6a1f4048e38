package key

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"filippo.io/edwards25519"
)

// Size is the length in bytes of a public key and of a secret key seed.
const Size = 32

// b32 is RFC 4648 base32 without padding, as data_encoding::BASE32_NOPAD.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// SecretKey is an Ed25519 signing key. The zero value is not usable.
type SecretKey struct {
	priv ed25519.PrivateKey // 64 bytes: seed || public; nil in the zero value
}

// PublicKey is an Ed25519 public key: the NodeId. It is comparable and can
// be used as a map key. The zero value is the all-zero key, which is not a
// NodeId of any node.
type PublicKey struct {
	b [Size]byte
}

// GenerateSecretKey returns a fresh random secret key.
func GenerateSecretKey() SecretKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic("key: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return SecretKey{priv: priv}
}

// SecretKeyFromBytes builds a secret key from its 32-byte seed.
func SecretKeyFromBytes(b []byte) (SecretKey, error) {
	if len(b) != ed25519.SeedSize {
		return SecretKey{}, fmt.Errorf("key: secret key must be %d bytes, got %d", ed25519.SeedSize, len(b))
	}
	return SecretKey{priv: ed25519.NewKeyFromSeed(b)}, nil
}

// ParseSecretKey parses a secret key seed in iroh's text form (52-character
// base32) or as 64 hex characters.
func ParseSecretKey(s string) (SecretKey, error) {
	b, err := parse32(s)
	if err != nil {
		return SecretKey{}, fmt.Errorf("key: secret key: %w", err)
	}
	return SecretKeyFromBytes(b[:])
}

// IsZero reports whether k is the zero value.
func (k SecretKey) IsZero() bool { return k.priv == nil }

// Public returns the public key (NodeId) of k.
func (k SecretKey) Public() PublicKey {
	var p PublicKey
	copy(p.b[:], k.priv[ed25519.SeedSize:])
	return p
}

// Bytes returns a copy of the 32-byte seed.
func (k SecretKey) Bytes() []byte {
	return append([]byte(nil), k.priv.Seed()...)
}

// String returns the seed in iroh's text form. It is secret: do not log it.
func (k SecretKey) String() string { return format(k.priv.Seed()) }

// Sign signs msg with Ed25519 and returns the 64-byte signature.
func (k SecretKey) Sign(msg []byte) []byte { return ed25519.Sign(k.priv, msg) }

// Ed25519 returns the key as a crypto/ed25519 private key (shared, do not modify).
func (k SecretKey) Ed25519() ed25519.PrivateKey { return k.priv }

// PublicKeyFromBytes builds a public key from its 32 bytes, which must
// decode to a point on the Ed25519 curve.
func PublicKeyFromBytes(b []byte) (PublicKey, error) {
	if len(b) != Size {
		return PublicKey{}, fmt.Errorf("key: public key must be %d bytes, got %d", Size, len(b))
	}
	var p PublicKey
	copy(p.b[:], b)
	if !onCurve(&p.b) {
		return PublicKey{}, errors.New("key: public key is not a point on the Ed25519 curve")
	}
	return p, nil
}

// ParsePublicKey parses a NodeId: 64 hex characters, or base32 without
// padding in either case (iroh 0.28 prints 52 lowercase characters).
func ParsePublicKey(s string) (PublicKey, error) {
	b, err := parse32(s)
	if err != nil {
		return PublicKey{}, fmt.Errorf("key: public key %q: %w", truncate(s), err)
	}
	return PublicKeyFromBytes(b[:])
}

// String returns iroh 0.28's text form: 52 lowercase base32 characters.
func (p PublicKey) String() string { return format(p.b[:]) }

// ShortString returns the first 10 bytes in base32 (16 characters), as
// iroh's fmt_short; for logs.
func (p PublicKey) ShortString() string { return format(p.b[:10]) }

// Hex returns the key as 64 lowercase hex characters.
func (p PublicKey) Hex() string { return hex.EncodeToString(p.b[:]) }

// Bytes returns the 32 key bytes.
func (p PublicKey) Bytes() [Size]byte { return p.b }

// IsZero reports whether p is the zero value.
func (p PublicKey) IsZero() bool { return p == PublicKey{} }

// Verify reports whether sig is a valid Ed25519 signature of msg by p.
func (p PublicKey) Verify(msg, sig []byte) bool {
	if len(sig) != ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(ed25519.PublicKey(p.b[:]), msg, sig)
}

// Ed25519 returns the key as a crypto/ed25519 public key (a fresh copy).
func (p PublicKey) Ed25519() ed25519.PublicKey { return append(ed25519.PublicKey(nil), p.b[:]...) }

// MarshalText implements encoding.TextMarshaler with String's form.
func (p PublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePublicKey.
func (p *PublicKey) UnmarshalText(b []byte) error {
	k, err := ParsePublicKey(string(b))
	if err != nil {
		return err
	}
	*p = k
	return nil
}

func format(b []byte) string { return strings.ToLower(b32.EncodeToString(b)) }

// parse32 decodes 32 bytes the way iroh's parse_array_hex_or_base32 does:
// exactly 64 characters means hex, anything else base32 (case-insensitive).
func parse32(s string) ([Size]byte, error) {
	var out [Size]byte
	if len(s) == 2*Size {
		if _, err := hex.Decode(out[:], []byte(s)); err != nil {
			return out, fmt.Errorf("hex: %w", err)
		}
		return out, nil
	}
	if len(s) != b32.EncodedLen(Size) {
		return out, fmt.Errorf("want 52 base32 or 64 hex characters, got %d", len(s))
	}
	n, err := b32.Decode(out[:], []byte(strings.ToUpper(s)))
	if err != nil {
		return out, fmt.Errorf("base32: %w", err)
	}
	if n != Size {
		return out, fmt.Errorf("base32: decoded %d bytes, want %d", n, Size)
	}
	// data_encoding rejects non-zero trailing bits; encoding/base32 ignores
	// them. Re-encode so exactly one string maps to each key.
	if !strings.EqualFold(b32.EncodeToString(out[:]), s) {
		return out, errors.New("base32: non-zero trailing bits")
	}
	return out, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}

// onCurve reports whether the compressed Edwards point decompresses, as
// curve25519-dalek's CompressedEdwardsY::decompress does: y is taken mod p
// (top bit ignored) and x² = (y²-1)/(d·y²+1) must be a square (filippo.io/edwards25519
// accepts the same encodings; TestOnCurveMatchesBigInt checks it against the math/big
// computation this replaced, which took about 50 µs a key: the metadata controller
// decodes every broker's key each poll).
func onCurve(b *[Size]byte) bool {
	_, err := new(edwards25519.Point).SetBytes(b[:])
	return err == nil
}
