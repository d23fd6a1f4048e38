package key

import (
	"crypto/ed25519"
	"math/big"
	"math/rand/v2"
	"testing"
)

// bigOnCurve is the math/big point-decompression check onCurve replaced: y mod p (top bit
// ignored), x² = (y²-1)/(d·y²+1) must be 0 or a square (Euler's criterion).
func bigOnCurve(b *[Size]byte) bool {
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	d := new(big.Int).Mul(big.NewInt(-121665), new(big.Int).ModInverse(big.NewInt(121666), p))
	d.Mod(d, p)
	le := *b
	le[31] &= 0x7f
	for i, j := 0, Size-1; i < j; i, j = i+1, j-1 {
		le[i], le[j] = le[j], le[i]
	}
	y := new(big.Int).SetBytes(le[:])
	y.Mod(y, p)
	y2 := new(big.Int).Mul(y, y)
	y2.Mod(y2, p)
	u := new(big.Int).Sub(y2, big.NewInt(1))
	u.Mod(u, p)
	if u.Sign() == 0 {
		return true
	}
	v := new(big.Int).Mul(d, y2)
	v.Add(v, big.NewInt(1))
	v.Mod(v, p)
	vinv := new(big.Int).ModInverse(v, p)
	if vinv == nil {
		return false
	}
	x2 := u.Mul(u, vinv)
	x2.Mod(x2, p)
	exp := new(big.Int).Rsh(new(big.Int).Sub(p, big.NewInt(1)), 1)
	return new(big.Int).Exp(x2, exp, p).Cmp(big.NewInt(1)) == 0
}

// TestOnCurveMatchesBigInt: onCurve accepts exactly the encodings the math/big check does:
// real public keys (with and without the sign bit), random bytes (about half are points),
// and the edge values of y (0, ±1, p-1, non-canonical p..2^255-1, with the top bit set).
func TestOnCurveMatchesBigInt(t *testing.T) {
	var cases [][Size]byte
	r := rand.New(rand.NewChaCha8([32]byte{7}))
	for range 2000 {
		var b [Size]byte
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		cases = append(cases, b)
	}
	for range 50 {
		var seed [ed25519.SeedSize]byte
		for i := range seed {
			seed[i] = byte(r.Uint32())
		}
		var b [Size]byte
		copy(b[:], ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey))
		cases = append(cases, b)
		b[31] ^= 0x80
		cases = append(cases, b)
	}
	p := new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(19))
	for _, y := range []*big.Int{big.NewInt(0), big.NewInt(1), big.NewInt(2), new(big.Int).Sub(p, big.NewInt(1)),
		p, new(big.Int).Add(p, big.NewInt(1)), new(big.Int).Add(p, big.NewInt(18)), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 255), big.NewInt(1))} {
		var b [Size]byte
		be := y.FillBytes(make([]byte, Size))
		for i := range b {
			b[i] = be[Size-1-i]
		}
		cases = append(cases, b)
		b[31] |= 0x80
		cases = append(cases, b)
	}
	points := 0
	for i, b := range cases {
		want := bigOnCurve(&b)
		if got := onCurve(&b); got != want {
			t.Fatalf("case %d %x: onCurve %v, math/big %v", i, b, got, want)
		}
		if want {
			points++
		}
	}
	if points < len(cases)/4 || points == len(cases) {
		t.Fatalf("%d of %d cases are points: the cases do not cover both outcomes", points, len(cases))
	}
}

func BenchmarkPublicKeyFromBytes(b *testing.B) {
	k := GenerateSecretKey().Public()
	for b.Loop() {
		if _, err := PublicKeyFromBytes(k.b[:]); err != nil {
			b.Fatal(err)
		}
	}
}
