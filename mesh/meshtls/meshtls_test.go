package meshtls

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/mesh/key"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func genCert(t testing.TB, sk key.SecretKey) tls.Certificate {
	t.Helper()
	c, err := GenerateCertificate(sk)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// handshake runs a TLS handshake over an in-memory pipe and returns both
// sides' errors and connection states.
func handshake(t *testing.T, client, server *tls.Config) (cs, ss tls.ConnectionState, cerr, serr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	var wg sync.WaitGroup
	wg.Go(func() {
		b, err := ln.Accept()
		if err != nil {
			serr = err
			return
		}
		defer b.Close()
		b.SetDeadline(deadline)
		sc := tls.Server(b, server)
		serr = sc.Handshake()
		if serr == nil {
			// TLS 1.3 servers learn of a bad client certificate only
			// after their own flight; read to surface the client's alert.
			_, rerr := sc.Read(make([]byte, 1))
			if rerr != nil && !errors.Is(rerr, io.EOF) {
				serr = rerr
			}
		}
		ss = sc.ConnectionState()
	})
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a.SetDeadline(deadline)
	cc := tls.Client(a, client)
	cerr = cc.Handshake()
	if cerr == nil {
		// The server verifies our certificate after we finish: a read
		// surfaces its alert, a close ends its read cleanly.
		cc.CloseWrite()
		_, rerr := cc.Read(make([]byte, 1))
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			cerr = rerr
		}
	}
	cs = cc.ConnectionState()
	a.Close()
	wg.Wait()
	return cs, ss, cerr, serr
}

func alpns(p ...string) func() []string { return func() []string { return p } }

func TestHandshakeMutual(t *testing.T) {
	ska, skb := key.GenerateSecretKey(), key.GenerateSecretKey()
	cli := ClientConfig(genCert(t, ska), skb.Public(), "/test/0")
	srv := ServerConfig(genCert(t, skb), alpns("/other/1", "/test/0"))
	cs, ss, cerr, serr := handshake(t, cli, srv)
	if cerr != nil || serr != nil {
		t.Fatalf("client %v, server %v", cerr, serr)
	}
	if cs.Version != tls.VersionTLS13 {
		t.Fatalf("version %x", cs.Version)
	}
	if cs.NegotiatedProtocol != "/test/0" || ss.NegotiatedProtocol != "/test/0" {
		t.Fatalf("alpn %q %q", cs.NegotiatedProtocol, ss.NegotiatedProtocol)
	}
	if ss.ServerName != ServerName {
		t.Fatalf("SNI %q, want %q", ss.ServerName, ServerName)
	}
	gotB, err := PeerID(cs)
	if err != nil || gotB != skb.Public() {
		t.Fatalf("client sees %v (%v), want %v", gotB, err, skb.Public())
	}
	gotA, err := PeerID(ss)
	if err != nil || gotA != ska.Public() {
		t.Fatalf("server sees %v (%v), want %v", gotA, err, ska.Public())
	}
}

func TestHandshakeRefusals(t *testing.T) {
	ska, skb, skc := key.GenerateSecretKey(), key.GenerateSecretKey(), key.GenerateSecretKey()
	certA, certB := genCert(t, ska), genCert(t, skb)
	plain := plainCert(t)
	tests := []struct {
		name       string
		cli        *tls.Config
		srv        *tls.Config
		clientWant error // if non-nil, the client error must match
		serverWant error
	}{
		{
			name:       "server proves another key",
			cli:        ClientConfig(certA, skc.Public(), "/t"),
			srv:        ServerConfig(certB, alpns("/t")),
			clientWant: ErrWrongPeer,
		},
		{
			name:       "server cert without extension",
			cli:        ClientConfig(certA, skb.Public(), "/t"),
			srv:        ServerConfig(plain, alpns("/t")),
			clientWant: ErrNoExtension,
		},
		{
			name:       "client cert without extension",
			cli:        ClientConfig(plain, skb.Public(), "/t"),
			srv:        ServerConfig(certB, alpns("/t")),
			serverWant: ErrNoExtension,
		},
		{
			name: "no client cert",
			cli: func() *tls.Config {
				c := ClientConfig(certA, skb.Public(), "/t")
				c.Certificates = nil
				return c
			}(),
			srv: ServerConfig(certB, alpns("/t")),
		},
		{
			name: "wrong ALPN",
			cli:  ClientConfig(certA, skb.Public(), "/nope"),
			srv:  ServerConfig(certB, alpns("/t")),
		},
		{
			name:       "server key signed by someone else",
			cli:        ClientConfig(certA, skb.Public(), "/t"),
			srv:        ServerConfig(variant(t, skb, func(o *opts) { o.extSigner = &skc }), alpns("/t")),
			clientWant: ErrKeySignature,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, cerr, serr := handshake(t, tt.cli, tt.srv)
			if cerr == nil && serr == nil {
				t.Fatal("handshake succeeded")
			}
			if tt.clientWant != nil && !errors.Is(cerr, tt.clientWant) {
				t.Fatalf("client err = %v, want %v", cerr, tt.clientWant)
			}
			if tt.serverWant != nil && !errors.Is(serr, tt.serverWant) {
				t.Fatalf("server err = %v, want %v", serr, tt.serverWant)
			}
		})
	}
}

// plainCert is an ordinary self-signed certificate with no libp2p extension.
func plainCert(t testing.TB) tls.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: NotBefore, NotAfter: NotAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k}
}

type opts struct {
	certKey   crypto.Signer
	critical  bool
	extra     []pkix.Extension
	extSigner *key.SecretKey // sign the extension with this key instead
	notBefore time.Time
	notAfter  time.Time
	dupExt    bool
}

// variant builds a certificate for sk with the given deviations.
func variant(t testing.TB, sk key.SecretKey, mod func(*opts)) tls.Certificate {
	t.Helper()
	ck, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	o := opts{certKey: ck, critical: true, notBefore: NotBefore, notAfter: NotAfter}
	if mod != nil {
		mod(&o)
	}
	spki, err := x509.MarshalPKIXPublicKey(o.certKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	ext, err := Extension(sk, spki, o.critical)
	if err != nil {
		t.Fatal(err)
	}
	if o.extSigner != nil {
		// Claim sk's key but sign with another key.
		other, _ := Extension(*o.extSigner, spki, o.critical)
		var a, b signedKey
		asn1.Unmarshal(ext.Value, &a)
		asn1.Unmarshal(other.Value, &b)
		a.Signature = b.Signature
		ext.Value, _ = asn1.Marshal(a)
	}
	exts := append([]pkix.Extension{ext}, o.extra...)
	if o.dupExt {
		exts = append(exts, ext)
	}
	tmpl := &x509.Certificate{
		SerialNumber:    big.NewInt(7),
		NotBefore:       o.notBefore,
		NotAfter:        o.notAfter,
		ExtraExtensions: exts,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, o.certKey.Public(), o.certKey)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: o.certKey}
}

func TestVerifyCertificate(t *testing.T) {
	sk, other := key.GenerateSecretKey(), key.GenerateSecretKey()
	now := time.Now()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	_, edk, _ := ed25519.GenerateKey(rand.Reader)
	rsak, _ := rsa.GenerateKey(rand.Reader, 2048)
	unknownOID := asn1.ObjectIdentifier{1, 2, 3, 4}
	tests := []struct {
		name string
		mod  func(*opts)
		now  time.Time
		want error // nil: accepted
	}{
		{"ours", nil, now, nil},
		{"extension not critical", func(o *opts) { o.critical = false }, now, nil},
		{"extra non-critical extension", func(o *opts) {
			o.extra = []pkix.Extension{{Id: unknownOID, Value: []byte{5, 0}}}
		}, now, nil},
		{"extra critical extension", func(o *opts) {
			o.extra = []pkix.Extension{{Id: unknownOID, Critical: true, Value: []byte{5, 0}}}
		}, now, ErrCriticalExtension},
		{"P-384 key", func(o *opts) { o.certKey = p384 }, now, nil},
		{"Ed25519 key", func(o *opts) { o.certKey = edk }, now, nil},
		{"P-521 key", func(o *opts) { o.certKey = p521 }, now, ErrAlgorithm},
		{"RSA key", func(o *opts) { o.certKey = rsak }, now, ErrAlgorithm},
		{"expired", func(o *opts) { o.notAfter = now.Add(-time.Hour) }, now, ErrExpired},
		{"not yet valid", func(o *opts) { o.notBefore = now.Add(time.Hour) }, now, ErrExpired},
		{"before 1975", nil, time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), ErrExpired},
		{"extension signed by another key", func(o *opts) { o.extSigner = &other }, now, ErrKeySignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := variant(t, sk, tt.mod)
			got, err := VerifyCertificate(c.Certificate[0], tt.now)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err == nil && got != sk.Public() {
				t.Fatalf("node id %v, want %v", got, sk.Public())
			}
		})
	}
}

func TestVerifyRejectsTampering(t *testing.T) {
	sk := key.GenerateSecretKey()
	der := genCert(t, sk).Certificate[0]
	if _, err := VerifyCertificate(der, time.Now()); err != nil {
		t.Fatal(err)
	}
	// Flip the last byte of the signature: the self-signature must fail.
	bad := append([]byte(nil), der...)
	bad[len(bad)-1] ^= 0x01
	if _, err := VerifyCertificate(bad, time.Now()); err == nil {
		t.Fatal("tampered certificate accepted")
	}
	if _, err := VerifyCertificate(plainCert(t).Certificate[0], time.Now()); !errors.Is(err, ErrNoExtension) {
		t.Fatalf("plain cert: %v", err)
	}
}

func TestGeneratedCertificateShape(t *testing.T) {
	sk := key.GenerateSecretKey()
	c := genCert(t, sk)
	x := c.Leaf
	if len(x.Extensions) != 1 || !x.Extensions[0].Id.Equal(ExtensionOID) || !x.Extensions[0].Critical {
		t.Fatalf("extensions = %+v, want exactly the critical libp2p extension", x.Extensions)
	}
	if x.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Fatalf("signature algorithm %v", x.SignatureAlgorithm)
	}
	if pub, ok := x.PublicKey.(*ecdsa.PublicKey); !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("key %T", x.PublicKey)
	}
	if len(x.RawSubject) != 2 || len(x.RawIssuer) != 2 { // empty SEQUENCE: 30 00
		t.Fatalf("subject %x issuer %x, want empty", x.RawSubject, x.RawIssuer)
	}
	if !x.NotBefore.Equal(NotBefore) || !x.NotAfter.Equal(NotAfter) {
		t.Fatalf("validity %v - %v", x.NotBefore, x.NotAfter)
	}
	var sk2 signedKey
	if _, err := asn1.Unmarshal(x.Extensions[0].Value, &sk2); err != nil {
		t.Fatal(err)
	}
	pub := sk.Public().Bytes()
	if string(sk2.PublicKey) != string(pub[:]) || len(sk2.Signature) != 64 {
		t.Fatalf("extension %x", x.Extensions[0].Value)
	}
	if !sk.Public().Verify(append([]byte(SigningPrefix), x.RawSubjectPublicKeyInfo...), sk2.Signature) {
		t.Fatal("extension signature does not cover prefix||SPKI")
	}
}

func FuzzParseCertificate(f *testing.F) {
	sk := key.GenerateSecretKey()
	f.Add(genCert(f, sk).Certificate[0])
	f.Add(variant(f, sk, func(o *opts) { o.critical = false }).Certificate[0])
	f.Add(plainCert(f).Certificate[0])
	f.Add([]byte{0x30, 0x00})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, der []byte) {
		_, pk, _, perr := ParseCertificate(der)
		got, verr := VerifyCertificate(der, time.Now())
		if verr == nil {
			if perr != nil {
				t.Fatalf("verified but does not parse: %v", perr)
			}
			if got != pk {
				t.Fatal("verify and parse disagree on the node id")
			}
		}
	})
}

// TestGoldenRustCertificate verifies a certificate captured from a real
// Rust iroh 0.28.1 node (copied from interop/testdata) without running it.
func TestGoldenRustCertificate(t *testing.T) {
	pemBytes, err := os.ReadFile("testdata/rust-0.28.1-cert.pem")
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	idText, _ := os.ReadFile("testdata/rust-0.28.1-node-id.txt")
	hexText, _ := os.ReadFile("testdata/rust-0.28.1-node-public-key.hex")
	want, err := key.ParsePublicKey(strings.TrimSpace(string(idText)))
	if err != nil {
		t.Fatal(err)
	}
	if want.Hex() != strings.TrimSpace(string(hexText)) {
		t.Fatalf("node id text %s and hex %s disagree", want, hexText)
	}
	got, err := VerifyCertificate(blk.Bytes, time.Now())
	if err != nil {
		t.Fatalf("Rust certificate refused: %v", err)
	}
	if got != want {
		t.Fatalf("node id %v, want %v", got, want)
	}
	// Same shape as ours: one critical extension, P-256, ecdsa-with-SHA256.
	x, _ := x509.ParseCertificate(blk.Bytes)
	ours := genCert(t, key.GenerateSecretKey()).Leaf
	if len(x.Extensions) != len(ours.Extensions) || x.Extensions[0].Critical != ours.Extensions[0].Critical ||
		x.SignatureAlgorithm != ours.SignatureAlgorithm || !x.NotBefore.Equal(ours.NotBefore) ||
		!x.NotAfter.Equal(ours.NotAfter) || !bytes.Equal(x.RawSubject, ours.RawSubject) {
		t.Fatal("our certificate differs in shape from Rust's")
	}
	// A flipped bit in the extension's signature must be refused.
	bad := bytes.Clone(blk.Bytes)
	i := bytes.Index(bad, x.Extensions[0].Value)
	bad[i+len(x.Extensions[0].Value)-1] ^= 1
	if _, err := VerifyCertificate(bad, time.Now()); err == nil {
		t.Fatal("tampered Rust certificate accepted")
	}
}
