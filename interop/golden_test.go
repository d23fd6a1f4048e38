package interop

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/interop/irohnode"
	"github.com/meshkafka/meshkafka/mesh/key"
	"github.com/meshkafka/meshkafka/mesh/meshtls"
)

// The golden Rust certificate: captured from a real iroh 0.28.1 node whose secret key is
// goldenSeed, by TestCaptureRustCertificate (run it inside the namespace with
// INTEROP_UPDATE_GOLDEN=1 to rewrite the files). The certificate key is fresh on every node
// start, so a new capture gives different bytes with the same shape and node id.
const (
	goldenCertFile = "testdata/rust-0.28.1-cert.pem"
	goldenIDFile   = "testdata/rust-0.28.1-node-id.txt"         // base32, as iroh 0.28 prints it
	goldenKeyFile  = "testdata/rust-0.28.1-node-public-key.hex" // the same 32 bytes in hex
)

// goldenSeed is the Rust node's 32-byte secret key (an Ed25519 seed), fixed so that its node id
// is known: sha256("meshkafka interop golden rust node").
func goldenSeed() []byte {
	s := sha256.Sum256([]byte("meshkafka interop golden rust node"))
	return s[:]
}

// checkIrohCert checks every property iroh 0.28.1 certificates were observed to have, and
// returns the node id the certificate proves.
func checkIrohCert(t testing.TB, der []byte) string {
	t.Helper()
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	if c.Version != 3 {
		t.Errorf("X.509 version %d, want 3", c.Version)
	}
	if pk, ok := c.PublicKey.(*ecdsa.PublicKey); !ok || pk.Curve != elliptic.P256() {
		t.Errorf("certificate key %T, want ECDSA P-256", c.PublicKey)
	}
	if c.SignatureAlgorithm != x509.ECDSAWithSHA256 {
		t.Errorf("signature algorithm %v, want ECDSA-SHA256", c.SignatureAlgorithm)
	}
	if len(c.Subject.Names) != 0 || len(c.Issuer.Names) != 0 {
		t.Errorf("subject %q issuer %q, want both empty", c.Subject, c.Issuer)
	}
	if c.NotBefore.Year() != 1975 || c.NotAfter.Year() != 4096 {
		t.Errorf("validity %v .. %v, want 1975 .. 4096", c.NotBefore, c.NotAfter)
	}
	if len(c.Extensions) != 1 || !c.Extensions[0].Id.Equal(libp2pOID) || !c.Extensions[0].Critical {
		t.Errorf("extensions %+v, want exactly the critical libp2p extension", c.Extensions)
	}
	pub, err := certNodeID(der)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	return nodeIDText(t, pub)
}

func readGolden(t testing.TB) (der []byte, id string) {
	t.Helper()
	p, err := os.ReadFile(goldenCertFile)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := pem.Decode(p)
	if b == nil || b.Type != "CERTIFICATE" {
		t.Fatalf("%s: no CERTIFICATE PEM block", goldenCertFile)
	}
	idb, err := os.ReadFile(goldenIDFile)
	if err != nil {
		t.Fatal(err)
	}
	return b.Bytes, strings.TrimSpace(string(idb))
}

// TestGoldenRustCertificate verifies the checked-in Rust certificate offline (no Rust node).
func TestGoldenRustCertificate(t *testing.T) {
	der, id := readGolden(t)
	if got := checkIrohCert(t, der); got != id {
		t.Fatalf("golden certificate proves %s, %s says %s", got, goldenIDFile, id)
	}
	hexKey, err := os.ReadFile(goldenKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := certNodeID(der)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(pub); got != strings.TrimSpace(string(hexKey)) {
		t.Fatalf("golden certificate key %s, %s says %s", got, goldenKeyFile, hexKey)
	}
	if want := ed25519.NewKeyFromSeed(goldenSeed()).Public().(ed25519.PublicKey); !pub.Equal(want) {
		t.Fatalf("golden certificate key %x is not the golden seed's %x", pub, want)
	}
	// Corruption anywhere that matters must break verification: the outer signature (the last
	// bytes of the DER) and the extension's Ed25519 signature (the end of its value).
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ext := c.Extensions[0].Value
	at := bytes.Index(der, ext)
	if at < 0 {
		t.Fatal("extension value not found in the DER")
	}
	for name, off := range map[string]int{"outer signature": len(der) - 2, "extension signature": at + len(ext) - 1} {
		bad := bytes.Clone(der)
		bad[off] ^= 1
		if _, err := certNodeID(bad); err == nil {
			t.Errorf("a certificate with a corrupted %s verified", name)
		}
	}
}

// TestCaptureRustCertificate connects to a real Rust node with a known key, records the
// certificate it presents, and checks it has the golden's shape and node id. With
// INTEROP_UPDATE_GOLDEN=1 it rewrites the golden files.
func TestCaptureRustCertificate(t *testing.T) {
	ctx := nsCtx(t, 60*time.Second)
	rust := rustNode(t, irohnode.NodeOptions{SecretKey: goldenSeed(), ALPNs: testALPNs})
	// Our client certificate comes from our production code (mesh/meshtls): Rust must accept it
	// and attribute the connection to our key.
	goKey := key.GenerateSecretKey()
	ourCert, err := meshtls.GenerateCertificate(goKey)
	if err != nil {
		t.Fatal(err)
	}
	p := newRawPeer(t)
	c, err := p.dial(ctx, t, rust, goKey.Public().String(), ourCert, alpnEcho)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := echoOnce(ctx, c, []byte("golden")); err != nil || string(got) != "golden" {
		t.Fatalf("echo over a meshtls certificate: %q, %v", got, err)
	}
	c.CloseWithError(0, "")
	if e, err := rust.WaitAccepted(ctx, alpnEcho); err != nil || e.Remote != goKey.Public().String() {
		t.Fatalf("Rust accepted %+v (%v), want remote %s", e, err, goKey.Public())
	}
	certs := p.peerCerts()
	if len(certs) != 1 {
		t.Fatalf("Rust presented %d certificates, want 1", len(certs))
	}
	if got := checkIrohCert(t, certs[0]); got != rust.ID {
		t.Fatalf("live certificate proves %s, node says %s", got, rust.ID)
	}
	// Our production verifier agrees on the live certificate.
	if pk, err := meshtls.VerifyCertificate(certs[0], time.Now()); err != nil || pk.String() != rust.ID {
		t.Fatalf("meshtls.VerifyCertificate on the live Rust certificate: %v, %v; want %s", pk, err, rust.ID)
	}
	if os.Getenv("INTEROP_UPDATE_GOLDEN") == "1" {
		if err := os.MkdirAll(filepath.Dir(goldenCertFile), 0o755); err != nil {
			t.Fatal(err)
		}
		pemBytes := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: certs[0]})
		if err := os.WriteFile(goldenCertFile, pemBytes, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenIDFile, []byte(fmt.Sprintln(rust.ID)), 0o644); err != nil {
			t.Fatal(err)
		}
		pub, err := certNodeID(certs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(goldenKeyFile, []byte(hex.EncodeToString(pub)+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s, %s and %s", goldenCertFile, goldenIDFile, goldenKeyFile)
	}
	_, id := readGolden(t)
	if id != rust.ID {
		t.Fatalf("golden id %s, but a node with the golden seed is %s", id, rust.ID)
	}
}
