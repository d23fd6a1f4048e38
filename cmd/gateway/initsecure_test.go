package main

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/meshkafka/meshkafka/gateway"
)

// -init-secure writes a CA, a server certificate it signed for the local names, and an admin
// password (private files 0600); a second run keeps every file; the users file follows an
// edited admin.password.
func TestInitSecure(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "secure")
	var out bytes.Buffer
	if err := initSecure(dir, "kafka.example,10.1.2.3", &out); err != nil {
		t.Fatal(err)
	}
	f := secureFilesIn(dir)
	if !strings.Contains(out.String(), "-tls-cert "+f.serverCert) || !strings.Contains(out.String(), "-super-users User:admin") {
		t.Fatalf("printed flags %q", out.String())
	}
	for path, mode := range map[string]os.FileMode{f.caCert: 0o644, f.caKey: 0o600, f.serverCert: 0o644, f.serverKey: 0o600,
		f.adminPassword: 0o600, f.users: 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Fatalf("%s: %v, want mode %v", path, err, mode)
		}
	}
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	cert := func(p string) *x509.Certificate {
		b, _ := pem.Decode(read(p))
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ca, srv := cert(f.caCert), cert(f.serverCert)
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	for _, name := range []string{"localhost", "127.0.0.1", "::1", "kafka.example", "10.1.2.3"} {
		if _, err := srv.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s: %v", name, err)
		}
	}
	if _, err := srv.Verify(x509.VerifyOptions{Roots: pool, DNSName: "other.example"}); err == nil {
		t.Error("server certificate valid for any name")
	}
	if _, _, err := gateway.NewTLSConfig(gateway.TLSOptions{CertFile: f.serverCert, KeyFile: f.serverKey}); err != nil {
		t.Fatalf("the gateway does not load the pair: %v", err)
	}
	pw := strings.TrimSpace(string(read(f.adminPassword)))
	if len(pw) < 24 || string(read(f.users)) != "admin:"+pw+"\n" {
		t.Fatalf("password %q, users %q", pw, read(f.users))
	}

	before := map[string][]byte{}
	for _, p := range []string{f.caCert, f.caKey, f.serverCert, f.serverKey, f.adminPassword} {
		before[p] = read(p)
	}
	os.WriteFile(f.adminPassword, []byte("changed\n"), 0o600)
	before[f.adminPassword] = []byte("changed\n")
	if err := initSecure(dir, "", io.Discard); err != nil {
		t.Fatal(err)
	}
	for p, b := range before {
		if !bytes.Equal(read(p), b) {
			t.Errorf("%s rewritten by a second run", p)
		}
	}
	if string(read(f.users)) != "admin:changed\n" {
		t.Fatalf("users %q after editing admin.password", read(f.users))
	}
}

// The OAUTHBEARER and throttling flags reach the server configuration.
func TestOAuthFlags(t *testing.T) {
	jwks := filepath.Join(t.TempDir(), "jwks.json")
	raw, _ := json.Marshal(map[string]any{"keys": []map[string]string{{"kty": "EC", "crv": "P-256", "kid": "k",
		"x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}}})
	os.WriteFile(jwks, raw, 0o644)
	o, err := parse([]string{"-oauth-jwks-file", jwks, "-oauth-audience", "kafka, other", "-failed-auth-delay-ms", "250",
		"-auth-failure-burst", "5", "-auth-failure-refill-ms", "1000"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var cfg gateway.Config
	if err := o.security.ServerConfig(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	if cfg.SASL.OAuthBearer == nil || cfg.SASL.Mechanisms[len(cfg.SASL.Mechanisms)-1] != "OAUTHBEARER" ||
		cfg.SASL.FailedAuthDelay != 250*time.Millisecond || cfg.SASL.BruteForce.Burst != 5 || cfg.SASL.BruteForce.Refill != time.Second {
		t.Fatalf("SASL config %+v", cfg.SASL)
	}
	for _, bad := range [][]string{
		{"-sasl-mechanisms", "PLAIN,OAUTHBEARER"}, // no JWKS
		{"-failed-auth-delay-ms", "-1"},
		{"-auth-failure-refill-ms", "0"},
	} {
		if _, err := parse(bad, env(nil), io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := parse([]string{"-oauth-jwks-file", jwks, "-oauth-unsecured-tokens"}, env(nil), io.Discard); err == nil {
		t.Error("-oauth-jwks-file with -oauth-unsecured-tokens accepted")
	}
	o, err = parse([]string{"-oauth-unsecured-tokens", "-sasl-mechanisms", "OAUTHBEARER"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	cfg = gateway.Config{}
	if err := o.security.ServerConfig(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	if _, ok := cfg.SASL.OAuthBearer.(gateway.UnsecuredJWTValidator); !ok || len(cfg.SASL.Mechanisms) != 1 {
		t.Fatalf("-oauth-unsecured-tokens: %+v", cfg.SASL)
	}
	o, _ = parse([]string{"-oauth-jwks-file", filepath.Join(t.TempDir(), "missing")}, env(nil), io.Discard)
	if err := o.security.ServerConfig(&gateway.Config{}, nil); err == nil {
		t.Error("missing JWKS file accepted")
	}
}
