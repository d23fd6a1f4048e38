package disco

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"
	"math/big"

	"golang.org/x/crypto/chacha20"
	"golang.org/x/crypto/curve25519"
	//lint:ignore SA1019 crypto_box needs raw Poly1305 (the secretbox layout has no AEAD length block).
	"golang.org/x/crypto/poly1305"
)

// Field arithmetic for the Ed25519 → X25519 public key conversion. Only done once per peer, so
// math/big is fine.
var (
	fieldP = new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	// d = -121665/121666 mod p
	edD = func() *big.Int {
		n := new(big.Int).Neg(big.NewInt(121665))
		inv := new(big.Int).ModInverse(big.NewInt(121666), fieldP)
		n.Mul(n, inv)
		return n.Mod(n, fieldP)
	}()
)

// ErrBadKey is returned for a node key that is not a valid Ed25519 point.
var ErrBadKey = errors.New("disco: invalid node key")

// X25519Public converts an Ed25519 public key (a node id) to its X25519 form, u = (1+y)/(1−y).
// It fails for encodings that do not decode to a curve point.
func X25519Public(edPub [KeyLen]byte) ([32]byte, error) {
	var out [32]byte
	le := edPub
	le[31] &= 0x7f // drop the sign of x
	y := new(big.Int).SetBytes(reverse(le[:]))
	if y.Cmp(fieldP) >= 0 {
		return out, ErrBadKey
	}
	// Point check: x² = (y²−1)/(d·y²+1) must have a root.
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, fieldP)
	num := new(big.Int).Sub(y2, big.NewInt(1))
	num.Mod(num, fieldP)
	den := new(big.Int).Mul(edD, y2)
	den.Add(den, big.NewInt(1))
	den.Mod(den, fieldP)
	x2 := new(big.Int).Mul(num, new(big.Int).ModInverse(den, fieldP))
	x2.Mod(x2, fieldP)
	if x2.Sign() != 0 && new(big.Int).ModSqrt(x2, fieldP) == nil {
		return out, ErrBadKey
	}
	if x2.Sign() == 0 && edPub[31]&0x80 != 0 {
		return out, ErrBadKey // x = 0 with the sign bit set is not canonical
	}
	one := big.NewInt(1)
	n := new(big.Int).Add(one, y)
	d := new(big.Int).Sub(one, y)
	d.Mod(d, fieldP)
	if d.Sign() == 0 {
		return out, nil // identity: u = 0, as dalek computes
	}
	u := n.Mul(n, new(big.Int).ModInverse(d, fieldP))
	u.Mod(u, fieldP)
	ub := u.FillBytes(make([]byte, 32))
	copy(out[:], reverse(ub))
	return out, nil
}

// X25519Secret returns the X25519 scalar of an Ed25519 key: clamp(SHA-512(seed)[:32]).
func X25519Secret(priv ed25519.PrivateKey) [32]byte {
	h := sha512.Sum512(priv.Seed())
	var s [32]byte
	copy(s[:], h[:32])
	s[0] &= 248
	s[31] &= 127
	s[31] |= 64
	return s
}

func reverse(b []byte) []byte {
	out := make([]byte, len(b))
	for i, c := range b {
		out[len(b)-1-i] = c
	}
	return out
}

// Shared is the precomputed crypto_box key between our node key and one peer's. It is
// immutable and safe for concurrent use.
type Shared struct {
	k [32]byte
}

// NewShared computes the box key between priv and the peer node id.
func NewShared(priv ed25519.PrivateKey, peer [KeyLen]byte) (*Shared, error) {
	u, err := X25519Public(peer)
	if err != nil {
		return nil, err
	}
	sec := X25519Secret(priv)
	dh, err := curve25519.X25519(sec[:], u[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKey, err)
	}
	k, err := chacha20.HChaCha20(dh, make([]byte, 16))
	if err != nil {
		return nil, err
	}
	s := &Shared{}
	copy(s.k[:], k)
	return s, nil
}

// SealTo appends tag ‖ ciphertext ‖ nonce of plaintext to dst, with the given nonce.
func (s *Shared) SealTo(dst, plaintext []byte, nonce *[NonceLen]byte) []byte {
	c, err := chacha20.NewUnauthenticatedCipher(s.k[:], nonce[:])
	if err != nil {
		panic(err) // key and nonce sizes are fixed
	}
	var polyKey [32]byte
	c.XORKeyStream(polyKey[:], polyKey[:])
	start := len(dst)
	dst = append(dst, make([]byte, TagLen)...)
	ctStart := len(dst)
	dst = append(dst, plaintext...)
	ct := dst[ctStart:]
	c.XORKeyStream(ct, ct)
	var tag [TagLen]byte
	poly1305.Sum(&tag, ct, &polyKey)
	copy(dst[start:], tag[:])
	return append(dst, nonce[:]...)
}

// Seal seals plaintext with a random nonce.
func (s *Shared) Seal(plaintext []byte) []byte {
	var nonce [NonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(err)
	}
	return s.SealTo(make([]byte, 0, len(plaintext)+Overhead), plaintext, &nonce)
}

// ErrOpen is returned when a box does not authenticate.
var ErrOpen = errors.New("disco: box does not open")

// Open authenticates and decrypts tag ‖ ciphertext ‖ nonce.
func (s *Shared) Open(sealed []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, ErrOpen
	}
	nonce := sealed[len(sealed)-NonceLen:]
	tag := sealed[:TagLen]
	ct := sealed[TagLen : len(sealed)-NonceLen]
	c, err := chacha20.NewUnauthenticatedCipher(s.k[:], nonce)
	if err != nil {
		return nil, ErrOpen
	}
	var polyKey [32]byte
	c.XORKeyStream(polyKey[:], polyKey[:])
	var want [TagLen]byte
	poly1305.Sum(&want, ct, &polyKey)
	if subtle.ConstantTimeCompare(tag, want[:]) != 1 {
		return nil, ErrOpen
	}
	pt := make([]byte, len(ct))
	c.XORKeyStream(pt, ct)
	return pt, nil
}

// LooksLikeDisco reports whether p starts like a disco packet (magic and room for a key).
func LooksLikeDisco(p []byte) bool {
	return len(p) >= HeaderLen && bytes.Equal(p[:MagicLen], []byte(Magic))
}

// Source splits a disco packet into its sender node id and sealed box.
func Source(p []byte) (sender [KeyLen]byte, box []byte, ok bool) {
	if !LooksLikeDisco(p) {
		return sender, nil, false
	}
	copy(sender[:], p[MagicLen:HeaderLen])
	return sender, p[HeaderLen:], true
}

// Encode builds a complete disco packet from us (sender) to the peer of shared.
func Encode(sender [KeyLen]byte, shared *Shared, m Message) []byte {
	pt := m.AppendTo(make([]byte, 0, 64))
	out := make([]byte, 0, HeaderLen+len(pt)+Overhead)
	out = append(out, Magic...)
	out = append(out, sender[:]...)
	var nonce [NonceLen]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		panic(err)
	}
	return shared.SealTo(out, pt, &nonce)
}

// Decode opens a disco packet whose sender's Shared is returned by lookup (which may compute
// and cache it) and parses the message inside.
func Decode(p []byte, lookup func(sender [KeyLen]byte) (*Shared, error)) ([KeyLen]byte, Message, error) {
	sender, box, ok := Source(p)
	if !ok {
		return sender, nil, errors.New("disco: not a disco packet")
	}
	sh, err := lookup(sender)
	if err != nil {
		return sender, nil, err
	}
	pt, err := sh.Open(box)
	if err != nil {
		return sender, nil, err
	}
	m, err := ParseMessage(pt)
	return sender, m, err
}
