package meshtls

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/meshkafka/meshkafka/mesh/key"
)

// ExtensionOID is the libp2p public key extension, allocated by IANA to
// Protocol Labs.
var ExtensionOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 53594, 1, 1}

// SigningPrefix precedes the certificate's SubjectPublicKeyInfo in the
// message the node key signs.
const SigningPrefix = "libp2p-tls-handshake:"

// Validity bounds rcgen gives by default (and so iroh 0.28.1's certificates).
var (
	NotBefore = time.Date(1975, 1, 1, 0, 0, 0, 0, time.UTC)
	NotAfter  = time.Date(4096, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Errors returned by VerifyCertificate; match with errors.Is.
var (
	ErrNoExtension       = errors.New("meshtls: certificate lacks the libp2p public key extension")
	ErrBadExtension      = errors.New("meshtls: malformed libp2p public key extension")
	ErrCriticalExtension = errors.New("meshtls: certificate has an unsupported critical extension")
	ErrExpired           = errors.New("meshtls: certificate is not valid at this time")
	ErrAlgorithm         = errors.New("meshtls: unsupported certificate signature algorithm")
	ErrSelfSignature     = errors.New("meshtls: certificate self-signature is invalid")
	ErrKeySignature      = errors.New("meshtls: libp2p extension signature is invalid")
	ErrChain             = errors.New("meshtls: peer must present exactly one certificate")
	ErrWrongPeer         = errors.New("meshtls: peer proved a different node id than the one dialed")
)

// signedKey is the libp2p extension value.
type signedKey struct {
	PublicKey []byte
	Signature []byte
}

// GenerateCertificate makes the self-signed certificate for sk, with a
// fresh ECDSA P-256 certificate key, exactly as iroh 0.28.1 does.
func GenerateCertificate(sk key.SecretKey) (tls.Certificate, error) {
	if sk.IsZero() {
		return tls.Certificate{}, errors.New("meshtls: zero secret key")
	}
	certKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("meshtls: generate certificate key: %w", err)
	}
	return makeCertificate(sk, certKey, true, nil)
}

// makeCertificate builds a certificate for sk over certKey. critical sets
// the extension's criticality; extra are additional extensions (tests use
// both to build the variants a peer may present).
func makeCertificate(sk key.SecretKey, certKey crypto.Signer, critical bool, extra []pkix.Extension) (tls.Certificate, error) {
	spki, err := x509.MarshalPKIXPublicKey(certKey.Public())
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("meshtls: marshal certificate key: %w", err)
	}
	ext, err := Extension(sk, spki, critical)
	if err != nil {
		return tls.Certificate{}, err
	}
	// A positive random serial of at most 20 bytes, like rcgen's.
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 159))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("meshtls: serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    serial,
		NotBefore:       NotBefore,
		NotAfter:        NotAfter,
		ExtraExtensions: append([]pkix.Extension{ext}, extra...),
		// KeyUsage zero and BasicConstraintsValid false: Go would mark
		// them critical, which iroh refuses.
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, certKey.Public(), certKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("meshtls: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("meshtls: parse own certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: certKey, Leaf: leaf}, nil
}

// Extension builds the libp2p extension for node key sk over the DER
// SubjectPublicKeyInfo spki of the certificate key.
func Extension(sk key.SecretKey, spki []byte, critical bool) (pkix.Extension, error) {
	msg := append([]byte(SigningPrefix), spki...)
	pub := sk.Public().Bytes()
	val, err := asn1.Marshal(signedKey{PublicKey: pub[:], Signature: sk.Sign(msg)})
	if err != nil {
		return pkix.Extension{}, fmt.Errorf("meshtls: marshal extension: %w", err)
	}
	return pkix.Extension{Id: ExtensionOID, Critical: critical, Value: val}, nil
}

// ParseCertificate parses der and extracts the libp2p extension without
// checking any signature or validity. It returns the claimed node id.
// Use VerifyCertificate to authenticate a peer.
func ParseCertificate(der []byte) (*x509.Certificate, key.PublicKey, []byte, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, key.PublicKey{}, nil, fmt.Errorf("meshtls: parse certificate: %w", err)
	}
	var (
		found bool
		sk    signedKey
	)
	for _, e := range cert.Extensions {
		if e.Id.Equal(ExtensionOID) {
			if found {
				return nil, key.PublicKey{}, nil, fmt.Errorf("%w: duplicate", ErrBadExtension)
			}
			found = true
			rest, err := asn1.Unmarshal(e.Value, &sk)
			if err != nil {
				return nil, key.PublicKey{}, nil, fmt.Errorf("%w: %v", ErrBadExtension, err)
			}
			if len(rest) != 0 {
				return nil, key.PublicKey{}, nil, fmt.Errorf("%w: trailing bytes", ErrBadExtension)
			}
			continue
		}
		if e.Critical {
			return nil, key.PublicKey{}, nil, fmt.Errorf("%w: %v", ErrCriticalExtension, e.Id)
		}
	}
	if !found {
		return nil, key.PublicKey{}, nil, ErrNoExtension
	}
	pk, err := key.PublicKeyFromBytes(sk.PublicKey)
	if err != nil {
		return nil, key.PublicKey{}, nil, fmt.Errorf("%w: %v", ErrBadExtension, err)
	}
	if len(sk.Signature) != ed25519.SignatureSize {
		return nil, key.PublicKey{}, nil, fmt.Errorf("%w: signature is %d bytes", ErrBadExtension, len(sk.Signature))
	}
	return cert, pk, sk.Signature, nil
}

// VerifyCertificate authenticates a peer certificate as iroh 0.28.1 does
// (see the package doc) and returns the node id it proves.
func VerifyCertificate(der []byte, now time.Time) (key.PublicKey, error) {
	cert, pk, sig, err := ParseCertificate(der)
	if err != nil {
		return key.PublicKey{}, err
	}
	if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
		return key.PublicKey{}, ErrExpired
	}
	if err := checkAlgorithm(cert); err != nil {
		return key.PublicKey{}, err
	}
	if err := cert.CheckSignature(cert.SignatureAlgorithm, cert.RawTBSCertificate, cert.Signature); err != nil {
		return key.PublicKey{}, fmt.Errorf("%w: %v", ErrSelfSignature, err)
	}
	msg := append([]byte(SigningPrefix), cert.RawSubjectPublicKeyInfo...)
	if !pk.Verify(msg, sig) {
		return key.PublicKey{}, ErrKeySignature
	}
	return pk, nil
}

// checkAlgorithm admits the (key, signature) pairs iroh's signature_scheme
// maps to a scheme ring can verify.
func checkAlgorithm(cert *x509.Certificate) error {
	switch pub := cert.PublicKey.(type) {
	case *ecdsa.PublicKey:
		switch {
		case pub.Curve == elliptic.P256() && cert.SignatureAlgorithm == x509.ECDSAWithSHA256,
			pub.Curve == elliptic.P384() && cert.SignatureAlgorithm == x509.ECDSAWithSHA384:
			return nil
		}
	case ed25519.PublicKey:
		if cert.SignatureAlgorithm == x509.PureEd25519 {
			return nil
		}
	}
	return fmt.Errorf("%w: %v with %T", ErrAlgorithm, cert.SignatureAlgorithm, cert.PublicKey)
}
