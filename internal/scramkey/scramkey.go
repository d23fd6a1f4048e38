package scramkey

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"fmt"
	"hash"
)

// Mechanism is a SCRAM mechanism as Kafka numbers it.
type Mechanism int8

// Kafka's SCRAM mechanisms.
const (
	Unknown Mechanism = 0
	SHA256  Mechanism = 1
	SHA512  Mechanism = 2
)

// Kafka's iteration bounds for SCRAM credentials.
const (
	MinIterations     = 4096
	MaxIterations     = 16384
	DefaultIterations = 8192
)

// Mechanisms lists the SCRAM mechanisms, by Kafka number.
var Mechanisms = []Mechanism{SHA256, SHA512}

// String is the SASL mechanism name ("SCRAM-SHA-256").
func (m Mechanism) String() string {
	switch m {
	case SHA256:
		return "SCRAM-SHA-256"
	case SHA512:
		return "SCRAM-SHA-512"
	}
	return fmt.Sprintf("SCRAM-unknown(%d)", int8(m))
}

// ByName returns the mechanism of a SASL mechanism name, or Unknown.
func ByName(name string) Mechanism {
	switch name {
	case "SCRAM-SHA-256":
		return SHA256
	case "SCRAM-SHA-512":
		return SHA512
	}
	return Unknown
}

// Valid reports whether m is a known mechanism.
func (m Mechanism) Valid() bool { return m == SHA256 || m == SHA512 }

// Hash returns the hash constructor of m (nil for Unknown).
func (m Mechanism) Hash() func() hash.Hash {
	switch m {
	case SHA256:
		return sha256.New
	case SHA512:
		return sha512.New
	}
	return nil
}

// Credential is what is stored for one user and mechanism.
type Credential struct {
	Mechanism  Mechanism
	Iterations int32
	Salt       []byte
	StoredKey  []byte
	ServerKey  []byte
}

// Salted returns Hi(password, salt, iterations) (RFC 5802 §2.2), the salted password.
func Salted(m Mechanism, password string, salt []byte, iterations int) ([]byte, error) {
	h := m.Hash()
	if h == nil {
		return nil, fmt.Errorf("scramkey: unknown mechanism %d", int8(m))
	}
	return pbkdf2.Key(h, password, salt, iterations, h().Size())
}

// FromSalted derives the stored credential from a salted password (what
// AlterUserScramCredentials carries).
func FromSalted(m Mechanism, salted, salt []byte, iterations int32) (Credential, error) {
	h := m.Hash()
	if h == nil {
		return Credential{}, fmt.Errorf("scramkey: unknown mechanism %d", int8(m))
	}
	clientKey := mac(h, salted, "Client Key")
	sum := h()
	sum.Write(clientKey)
	return Credential{
		Mechanism: m, Iterations: iterations, Salt: append([]byte(nil), salt...),
		StoredKey: sum.Sum(nil), ServerKey: mac(h, salted, "Server Key"),
	}, nil
}

// New derives a credential for password with a fresh random 32-byte salt.
func New(m Mechanism, password string, iterations int) (Credential, error) {
	if iterations < MinIterations || iterations > MaxIterations {
		return Credential{}, fmt.Errorf("scramkey: %d iterations outside [%d, %d]", iterations, MinIterations, MaxIterations)
	}
	salt := make([]byte, 32)
	rand.Read(salt)
	salted, err := Salted(m, password, salt, iterations)
	if err != nil {
		return Credential{}, err
	}
	return FromSalted(m, salted, salt, int32(iterations))
}

// Check reports whether password matches c, in time independent of where they differ.
func Check(c Credential, password string) bool {
	if !c.Mechanism.Valid() || c.Iterations < 1 || c.Iterations > MaxIterations {
		return false
	}
	salted, err := Salted(c.Mechanism, password, c.Salt, int(c.Iterations))
	if err != nil {
		return false
	}
	d, err := FromSalted(c.Mechanism, salted, c.Salt, c.Iterations)
	return err == nil && subtle.ConstantTimeCompare(d.StoredKey, c.StoredKey) == 1
}

func mac(h func() hash.Hash, key []byte, msg string) []byte {
	m := hmac.New(h, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}
