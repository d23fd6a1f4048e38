package main

// -init-secure DIR: the files `go tool task up-secure` serves SASL_SSL with — a self-signed CA
// (ca.pem, ca.key), a server certificate it signed (server.pem, server.key) for localhost,
// 127.0.0.1, ::1, the hostname and -init-secure-hosts, and a generated password for the super
// user admin (admin.password, and users, the -sasl-users file). Files that exist are kept, so
// that running it again changes nothing; every private file is mode 0600.

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// secureFiles are the paths -init-secure writes.
type secureFiles struct {
	dir                   string
	caCert, caKey         string
	serverCert, serverKey string
	adminPassword, users  string
}

func secureFilesIn(dir string) secureFiles {
	j := func(n string) string { return filepath.Join(dir, n) }
	return secureFiles{dir: dir, caCert: j("ca.pem"), caKey: j("ca.key"), serverCert: j("server.pem"), serverKey: j("server.key"),
		adminPassword: j("admin.password"), users: j("users")}
}

// initSecure creates the missing files of dir and prints the gateway flags that use them.
func initSecure(dir, extraHosts string, stdout io.Writer) error {
	f := secureFilesIn(dir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	hosts := []string{"localhost", "127.0.0.1", "::1"}
	if h, err := os.Hostname(); err == nil && h != "" {
		hosts = append(hosts, h)
	}
	for _, h := range strings.Split(extraHosts, ",") {
		if h = strings.TrimSpace(h); h != "" {
			hosts = append(hosts, h)
		}
	}
	if !exists(f.caCert) || !exists(f.caKey) {
		if err := newCA(f); err != nil {
			return err
		}
		// A new CA invalidates any server certificate left from an old one.
		os.Remove(f.serverCert)
	}
	if !exists(f.serverCert) || !exists(f.serverKey) {
		if err := newServerCert(f, hosts); err != nil {
			return err
		}
	}
	if !exists(f.adminPassword) {
		b := make([]byte, 24)
		rand.Read(b)
		if err := writeFile(f.adminPassword, []byte(base64.RawURLEncoding.EncodeToString(b)+"\n"), 0o600); err != nil {
			return err
		}
	}
	pw, err := os.ReadFile(f.adminPassword)
	if err != nil {
		return err
	}
	// The users file always matches admin.password (an edited password is picked up).
	if err := writeFile(f.users, []byte("admin:"+strings.TrimSpace(string(pw))+"\n"), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "-tls-cert %s -tls-key %s -sasl-users %s -authorizer -super-users User:admin\n", f.serverCert, f.serverKey, f.users)
	return nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeFile writes data to path through a temporary file and a rename, with mode perm.
func writeFile(path string, data []byte, perm fs.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return err
	}
	if err := os.Chmod(tmp, perm); err != nil { // WriteFile keeps the mode of a file left over
		return err
	}
	return os.Rename(tmp, path)
}

func writePEM(path, typ string, der []byte, perm fs.FileMode) error {
	return writeFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), perm)
}

// writeKeyPair writes key (PKCS #8, readable by the owner only) to keyPath and the
// certificate der to certPath, both PEM.
func writeKeyPair(keyPath, certPath string, key *ecdsa.PrivateKey, der []byte) error {
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := writePEM(keyPath, "PRIVATE KEY", kder, 0o600); err != nil {
		return err
	}
	return writePEM(certPath, "CERTIFICATE", der, 0o644)
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	return n
}

func newCA(f secureFiles) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: "meshkafka up-secure CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(10, 0, 0),
		IsCA: true, BasicConstraintsValid: true, MaxPathLenZero: true,
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	return writeKeyPair(f.caKey, f.caCert, key, der)
}

func loadCA(f secureFiles) (*x509.Certificate, any, error) {
	cp, err := os.ReadFile(f.caCert)
	if err != nil {
		return nil, nil, err
	}
	kp, err := os.ReadFile(f.caKey)
	if err != nil {
		return nil, nil, err
	}
	cb, _ := pem.Decode(cp)
	kb, _ := pem.Decode(kp)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("-init-secure: ca.pem or ca.key is not PEM")
	}
	ca, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	return ca, key, err
}

func newServerCert(f secureFiles, hosts []string) error {
	ca, caKey, err := loadCA(f)
	if err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(), Subject: pkix.Name{CommonName: hosts[0]},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(2, 0, 0),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	return writeKeyPair(f.serverKey, f.serverCert, key, der)
}
