package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/meshkafka/meshkafka/cmd/internal/cli"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
)

// runSecure runs the command with args and returns the address of each listener it prints
// ("listener PROTO://ADDR" lines), keyed by protocol.
func runSecure(t *testing.T, args ...string) (map[string]string, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	result := make(chan error, 1)
	go func() {
		result <- run(ctx, args, env(nil), pw, os.Stderr)
		pw.Close()
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-result; err != nil {
				t.Errorf("run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	sc := bufio.NewScanner(pr)
	addrs := map[string]string{}
	want := strings.Count(args[slicesIndex(args, "-listeners")+1], "://")
	for len(addrs) < want && sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "listener "); ok {
			proto, addr, _ := strings.Cut(rest, "://")
			addrs[proto] = addr
		}
	}
	if len(addrs) < want {
		cancel()
		t.Fatalf("listeners %v (run: %v)", addrs, <-result)
	}
	go io.Copy(io.Discard, pr)
	return addrs, stop
}

func slicesIndex(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

func kcat(t *testing.T, stdin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command("kcat", args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// kcat (librdkafka) over SASL_SSL with SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN, and over SSL
// with a client certificate (mTLS), against the gateway binary's run with -listeners, TLS
// flags and a -sasl-users file; a wrong password is refused; the users survive a restart.
func TestKcatSecureListeners(t *testing.T) {
	if _, err := exec.LookPath("kcat"); err != nil {
		t.Skip("kcat not installed (apt-get install -y kcat)")
	}
	dir := t.TempDir()
	certs := gatewaytest.NewCerts(t, t.TempDir(), "kcat-client")
	users := filepath.Join(t.TempDir(), "users")
	if err := os.WriteFile(users, []byte("# bootstrap\nadmin:admin-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"-data", dir, "-listeners", "SASL_SSL://127.0.0.1:0,SSL://127.0.0.1:0,PLAINTEXT://127.0.0.1:0",
		"-tls-cert", certs.Cert, "-tls-key", certs.Key, "-tls-client-ca", certs.CA, "-ssl-client-auth", "requested",
		"-sasl-users", users, "-advertised-host", "127.0.0.1"}
	addrs, stop := runSecure(t, args...)

	sasl := func(mech, pass string) []string {
		return []string{"-b", addrs["SASL_SSL"], "-X", "security.protocol=SASL_SSL", "-X", "ssl.ca.location=" + certs.CA,
			"-X", "sasl.mechanisms=" + mech, "-X", "sasl.username=admin", "-X", "sasl.password=" + pass}
	}
	for _, mech := range []string{"SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"} {
		topic := "kcat-" + strings.ToLower(mech)
		in := ""
		for i := range 10 {
			in += fmt.Sprintf("%s-%d\n", mech, i)
		}
		if out, err := kcat(t, in, append(sasl(mech, "admin-secret"), "-P", "-t", topic)...); err != nil {
			t.Fatalf("%s produce: %v\n%s", mech, err, out)
		}
		out, err := kcat(t, "", append(sasl(mech, "admin-secret"), "-C", "-t", topic, "-o", "beginning", "-c", "10", "-e", "-q")...)
		if err != nil || out != in {
			t.Fatalf("%s consume: %v\n%q, want %q", mech, err, out, in)
		}
	}
	out, err := kcat(t, "", append(sasl("SCRAM-SHA-256", "wrong"), "-L", "-m", "2")...)
	if err == nil || !strings.Contains(out, "Authentication failed") {
		t.Fatalf("wrong password: %v\n%s", err, out)
	}

	ssl := []string{"-b", addrs["SSL"], "-X", "security.protocol=SSL", "-X", "ssl.ca.location=" + certs.CA,
		"-X", "ssl.certificate.location=" + certs.ClientCert, "-X", "ssl.key.location=" + certs.ClientKey}
	if out, err := kcat(t, "a\nb\nc\n", append(ssl, "-P", "-t", "kcat-mtls")...); err != nil {
		t.Fatalf("mTLS produce: %v\n%s", err, out)
	}
	if out, err := kcat(t, "", append(ssl, "-C", "-t", "kcat-mtls", "-o", "beginning", "-c", "3", "-e", "-q")...); err != nil || out != "a\nb\nc\n" {
		t.Fatalf("mTLS consume: %v\n%q", err, out)
	}
	// The SASL_SSL records are readable over SSL too: one cluster behind every listener.
	if out, err := kcat(t, "", append(ssl, "-C", "-t", "kcat-plain", "-o", "beginning", "-c", "1", "-e", "-q")...); err != nil || out != "PLAIN-0\n" {
		t.Fatalf("cross-listener consume: %v\n%q", err, out)
	}

	// Restart with the users file naming another password: the stored credential (durable,
	// on the broker side) is kept, not overwritten by the bootstrap file.
	stop()
	if err := os.WriteFile(users, []byte("admin:other-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addrs, _ = runSecure(t, args...)
	if out, err := kcat(t, "", append(sasl("SCRAM-SHA-512", "admin-secret"), "-C", "-t", "kcat-plain", "-o", "beginning", "-c", "1", "-e", "-q")...); err != nil || out != "PLAIN-0\n" {
		t.Fatalf("after restart: %v\n%q", err, out)
	}
}

func TestSecurityFlags(t *testing.T) {
	o, err := parse([]string{"-listeners", "SASL_SSL://:9093,PLAINTEXT://:9092", "-tls-cert", "c", "-tls-key", "k", "-reauth-ms", "60000"}, env(nil), io.Discard)
	if err != nil || len(o.security.Listeners) != 2 || o.security.Listeners[0].Protocol.String() != "SASL_SSL" {
		t.Fatalf("%+v %v", o.security, err)
	}
	if o, err := parse(nil, env(map[string]string{"RAFKA_LISTENERS": "SASL_PLAINTEXT://127.0.0.1:9095"}), io.Discard); err != nil ||
		o.security.Listeners[0].Addr != "127.0.0.1:9095" {
		t.Fatalf("RAFKA_LISTENERS: %+v %v", o.security, err)
	}
	if o, err := parse(nil, env(nil), io.Discard); err != nil || len(o.security.Listeners) != 1 || o.security.Listeners[0].String() != "PLAINTEXT://:9092" {
		t.Fatalf("default listener: %+v %v", o.security, err)
	}
	for _, bad := range [][]string{
		{"-listeners", "SSL://:9093"}, // no certificate
		{"-listeners", "BOGUS://:9093"},
		{"-listeners", "PLAINTEXT://:9092,SASL_PLAINTEXT://:9092"},
		{"-listen", ":9000", "-listeners", "PLAINTEXT://:9092"},
		{"-listeners", "PLAINTEXT://:9092,SASL_PLAINTEXT://:9093", "-advertised-port", "9092"},
		{"-reauth-ms", "-1"},
		{"-super-users", "User:admin"},           // without -authorizer
		{"-authorizer", "-super-users", "admin"}, // not a principal
		{"-allow-everyone-if-no-acl-found"},      // without -authorizer
	} {
		if _, err := parse(bad, env(nil), io.Discard); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	o, err = parse([]string{"-authorizer", "-super-users", "User:admin; User:ops", "-allow-everyone-if-no-acl-found"}, env(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var cfg gateway.Config
	if err := o.security.ServerConfig(&cfg, nil); err != nil {
		t.Fatal(err)
	}
	if a := cfg.Authorizer; !a.Enabled || !a.AllowIfNoACL || !slices.Equal(a.SuperUsers, []string{"User:admin", "User:ops"}) {
		t.Fatalf("authorizer flags: %+v", a)
	}
	dir := t.TempDir()
	for content, ok := range map[string]bool{"# c\n\nadmin:pw:with:colons\n": true, "admin\n": false, ":pw\n": false, "admin:\n": false} {
		p := filepath.Join(dir, "u")
		os.WriteFile(p, []byte(content), 0o600)
		users, err := cli.ReadUsers(p)
		if (err == nil) != ok {
			t.Errorf("users file %q: %v", content, err)
		}
		if ok && (len(users) != 1 || users[0] != (cli.UserPassword{User: "admin", Password: "pw:with:colons"})) {
			t.Errorf("users file %q: %+v", content, users)
		}
	}
}
