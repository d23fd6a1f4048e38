package gatewaytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Certs is a throw-away CA with a server certificate (localhost, 127.0.0.1) and a client
// certificate, as PEM files in one directory.
type Certs struct {
	Dir                   string
	CA                    string // CA certificate
	Cert, Key             string // server
	ClientCert, ClientKey string // client, subject CN=<client>,O=meshkafka
	ClientSubject         string // the client's subject as Kafka's principal names it

	caCert *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
}

// NewCerts writes a CA, a server pair and a client pair for client into dir.
func NewCerts(t testing.TB, dir, client string) *Certs {
	t.Helper()
	c := &Certs{Dir: dir, CA: filepath.Join(dir, "ca.pem"), Cert: filepath.Join(dir, "server.pem"), Key: filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.pem"), ClientKey: filepath.Join(dir, "client.key")}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "meshkafka test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	c.caCert, _ = x509.ParseCertificate(der)
	c.caKey, c.serial = key, 1
	writePEM(t, c.CA, "CERTIFICATE", der)
	c.RotateServer(t)
	sub := pkix.Name{CommonName: client, Organization: []string{"meshkafka"}}
	c.issue(t, c.ClientCert, c.ClientKey, sub, nil, x509.ExtKeyUsageClientAuth)
	c.ClientSubject = sub.String()
	return c
}

// RotateServer writes a new server certificate and key (a new serial number) and returns
// the serial.
func (c *Certs) RotateServer(t testing.TB) *big.Int {
	t.Helper()
	return c.issue(t, c.Cert, c.Key, pkix.Name{CommonName: "localhost"}, []string{"localhost"}, x509.ExtKeyUsageServerAuth)
}

// ClientTLS is a client's TLS config that trusts the CA and expects the server's name
// (localhost).
func (c *Certs) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(c.caCert)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}

func (c *Certs) issue(t testing.TB, certPath, keyPath string, sub pkix.Name, dns []string, usage x509.ExtKeyUsage) *big.Int {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(c.serial), Subject: sub, DNSNames: dns,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	if dns != nil {
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.caCert, &key.PublicKey, c.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, keyPath, "PRIVATE KEY", kder)
	writePEM(t, certPath, "CERTIFICATE", der)
	// A rotation within one second must still be seen as a change by size-and-mtime checks
	// on coarse file systems: give every write its own modification time.
	mt := time.Unix(1_700_000_000+c.serial, 0)
	os.Chtimes(keyPath, mt, mt)
	os.Chtimes(certPath, mt, mt)
	return tmpl.SerialNumber
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}
