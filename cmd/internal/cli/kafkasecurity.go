package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/scramkey"
)

// KafkaSecurity are the Kafka-plane security flags of a Kafka listener (package gateway):
// listeners, TLS, SASL, ACL authorization, bootstrap users. cmd/gateway and cmd/broker (its
// own Kafka listener, the direct data path) register the same set, so a listener is secured
// the same way wherever it runs.
type KafkaSecurity struct {
	listeners   string
	tlsCert     string
	tlsKey      string
	tlsClientCA string
	clientAuth  string
	mechanisms  string
	reauthMs    int64
	// SASLUsers is the -sasl-users file (ReadUsers, BootstrapUsers).
	SASLUsers  string
	authorizer bool
	superUsers string
	allowNoACL bool
	// Listeners is the parsed listener list (after Check).
	Listeners []gateway.ListenerSpec

	// OAUTHBEARER (Kafka's sasl.oauthbearer.* broker settings).
	oauthJWKS     string
	oauthIssuer   string
	oauthAudience string
	oauthClaim    string
	oauthSkewSec  int64
	oauthUnsecure bool
	failedDelayMs int64
	failBurst     int
	failRefillMs  int64
}

// Register registers the flags on fs. listenersFlag names the listener list flag
// ("listeners" on the gateway, "kafka-listeners" on a broker) and listenFlag the one-address
// PLAINTEXT flag it defaults to. With aliases, the Rafka-style environment names (RAFKA_*)
// are read too (the gateway's); MESHKAFKA_<FLAG> always is (ParseEnv).
func (s *KafkaSecurity) Register(fs *flag.FlagSet, getenv Getenv, listenersFlag, listenFlag string, aliases bool) {
	stringVar := func(fs *flag.FlagSet, p *string, name string, getenv Getenv, env, def, usage string) {
		if aliases {
			StringVar(fs, p, name, getenv, env, def, usage)
		} else {
			fs.StringVar(p, name, def, usage)
		}
	}
	stringVar(fs, &s.listeners, listenersFlag, getenv, "RAFKA_LISTENERS", "",
		"Kafka listeners, e.g. SASL_SSL://:9093,PLAINTEXT://:9092 (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL); default PLAINTEXT on -"+listenFlag)
	stringVar(fs, &s.tlsCert, "tls-cert", getenv, "RAFKA_TLS_CERT", "", "PEM server certificate of SSL/SASL_SSL listeners (reloaded when it changes)")
	stringVar(fs, &s.tlsKey, "tls-key", getenv, "RAFKA_TLS_KEY", "", "PEM server key of SSL/SASL_SSL listeners (reloaded when it changes)")
	stringVar(fs, &s.tlsClientCA, "tls-client-ca", getenv, "RAFKA_TLS_CLIENT_CA", "", "PEM CA bundle that client certificates are verified against")
	stringVar(fs, &s.clientAuth, "ssl-client-auth", getenv, "RAFKA_SSL_CLIENT_AUTH", "none", "client certificates: none, requested or required (Kafka's ssl.client.auth)")
	stringVar(fs, &s.mechanisms, "sasl-mechanisms", getenv, "RAFKA_SASL_MECHANISMS", strings.Join(gateway.DefaultMechanisms, ","), "SASL mechanisms enabled")
	fs.Int64Var(&s.reauthMs, "reauth-ms", 0, "session lifetime of SASL connections, Kafka's connections.max.reauth.ms (0: no re-authentication)")
	stringVar(fs, &s.SASLUsers, "sasl-users", getenv, "RAFKA_SASL_USERS", "", "file of user:password lines; users without credentials get SCRAM-SHA-256 and -512 ones at start")
	fs.BoolVar(&s.authorizer, "authorizer", false, "authorize every request with ACLs (Kafka's authorizer; off: everyone may do everything)")
	stringVar(fs, &s.superUsers, "super-users", getenv, "RAFKA_SUPER_USERS", "", "principals allowed everything with -authorizer, e.g. User:admin;User:ops (Kafka's super.users)")
	fs.BoolVar(&s.allowNoACL, "allow-everyone-if-no-acl-found", false, "with -authorizer, allow requests on resources no ACL applies to (Kafka's allow.everyone.if.no.acl.found)")
	stringVar(fs, &s.oauthJWKS, "oauth-jwks-file", getenv, "RAFKA_OAUTH_JWKS_FILE", "",
		"JWKS file of the OAuth issuer's public keys; enables SASL OAUTHBEARER (re-read when it changes)")
	stringVar(fs, &s.oauthIssuer, "oauth-issuer", getenv, "RAFKA_OAUTH_ISSUER", "", "expected iss of OAUTHBEARER tokens (Kafka's sasl.oauthbearer.expected.issuer)")
	stringVar(fs, &s.oauthAudience, "oauth-audience", getenv, "RAFKA_OAUTH_AUDIENCE", "", "comma-separated expected aud values of OAUTHBEARER tokens (sasl.oauthbearer.expected.audience)")
	stringVar(fs, &s.oauthClaim, "oauth-principal-claim", getenv, "RAFKA_OAUTH_PRINCIPAL_CLAIM", "sub", "token claim that names the principal (sasl.oauthbearer.sub.claim.name)")
	fs.Int64Var(&s.oauthSkewSec, "oauth-clock-skew-seconds", 30, "leeway on exp, nbf and iat of OAUTHBEARER tokens (sasl.oauthbearer.clock.skew.seconds)")
	fs.BoolVar(&s.oauthUnsecure, "oauth-unsecured-tokens", false,
		"DEVELOPMENT ONLY: enable OAUTHBEARER accepting unsigned JWTs (alg none), as Kafka's default validator; anyone can then log in as anyone")
	fs.Int64Var(&s.failedDelayMs, "failed-auth-delay-ms", 100, "delay before a failed SASL authentication is answered (Kafka's connection.failed.authentication.delay.ms)")
	fs.IntVar(&s.failBurst, "auth-failure-burst", 20, "failed SASL authentications one source address (IPv4, IPv6 /64) may have before it is locked out (negative: no lockout)")
	fs.Int64Var(&s.failRefillMs, "auth-failure-refill-ms", 3000, "time after which one failed authentication of a source is forgiven")
}

// Check validates the flags and parses the listeners: -listeners if given, else PLAINTEXT on
// listen; listenSet says the one-address flag was given too (an error with -listeners).
// With several listeners a fixed advertised port is refused: each advertises its own.
// No listener at all (both empty) leaves Listeners empty.
func (s *KafkaSecurity) Check(listen string, listenSet bool, advertisedPort int) error {
	spec := s.listeners
	if spec == "" && listen != "" {
		spec = "PLAINTEXT://" + listen
	} else if spec != "" && listenSet {
		return errors.New("a listen address and a listener list both given; use the list")
	}
	var err error
	if spec != "" {
		if s.Listeners, err = gateway.ParseListeners(spec); err != nil {
			return fmt.Errorf("listeners: %w", err)
		}
	}
	if len(s.Listeners) > 1 && advertisedPort != 0 {
		return errors.New("an advertised port applies to one listener; with several each advertises its own port")
	}
	needTLS := false
	for _, l := range s.Listeners {
		needTLS = needTLS || l.Protocol.TLS()
	}
	if needTLS && (s.tlsCert == "" || s.tlsKey == "") {
		return errors.New("SSL and SASL_SSL listeners need -tls-cert and -tls-key")
	}
	if s.reauthMs < 0 {
		return fmt.Errorf("-reauth-ms %d out of range", s.reauthMs)
	}
	for _, p := range s.superUserList() {
		if i := strings.IndexByte(p, ':'); i <= 0 || i == len(p)-1 {
			return fmt.Errorf("-super-users: %q is not a principal of the form User:name", p)
		}
	}
	if s.oauthSkewSec < 0 || s.failedDelayMs < 0 || s.failRefillMs <= 0 {
		return errors.New("-oauth-clock-skew-seconds and -failed-auth-delay-ms must be >= 0, -auth-failure-refill-ms > 0")
	}
	if strings.Contains(","+s.mechanisms+",", ",OAUTHBEARER,") && s.oauthJWKS == "" && !s.oauthUnsecure {
		return errors.New("-sasl-mechanisms OAUTHBEARER needs -oauth-jwks-file")
	}
	if s.oauthJWKS != "" && s.oauthUnsecure {
		return errors.New("-oauth-jwks-file and -oauth-unsecured-tokens exclude each other")
	}
	if !s.authorizer && (s.superUsers != "" || s.allowNoACL) {
		return errors.New("-super-users and -allow-everyone-if-no-acl-found need -authorizer")
	}
	return nil
}

// superUserList splits -super-users on ";" (Kafka's separator).
func (s *KafkaSecurity) superUserList() []string {
	var out []string
	for _, p := range strings.Split(s.superUsers, ";") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ServerConfig fills the TLS, SASL and authorizer parts of cfg.
func (s *KafkaSecurity) ServerConfig(cfg *gateway.Config, log *slog.Logger) error {
	if s.tlsCert != "" || s.tlsKey != "" {
		tcfg, _, err := gateway.NewTLSConfig(gateway.TLSOptions{CertFile: s.tlsCert, KeyFile: s.tlsKey,
			ClientCAFile: s.tlsClientCA, ClientAuth: s.clientAuth, Logger: log})
		if err != nil {
			return err
		}
		cfg.TLS = tcfg
	}
	for _, m := range strings.Split(s.mechanisms, ",") {
		if m = strings.TrimSpace(m); m != "" {
			cfg.SASL.Mechanisms = append(cfg.SASL.Mechanisms, m)
		}
	}
	if s.oauthJWKS != "" {
		var aud []string
		for _, a := range strings.Split(s.oauthAudience, ",") {
			if a = strings.TrimSpace(a); a != "" {
				aud = append(aud, a)
			}
		}
		skew := time.Duration(s.oauthSkewSec) * time.Second
		if skew == 0 {
			skew = -1 // none (0 means the default in the config)
		}
		v, err := gateway.NewJWTValidator(gateway.JWTValidatorConfig{JWKSFile: s.oauthJWKS, Issuer: s.oauthIssuer,
			Audience: aud, ClockSkew: skew, PrincipalClaim: s.oauthClaim})
		if err != nil {
			return err
		}
		cfg.SASL.OAuthBearer = v
	}
	if s.oauthUnsecure {
		if log != nil {
			log.Warn("OAUTHBEARER accepts unsigned tokens (-oauth-unsecured-tokens): anyone can authenticate as anyone; for development only")
		}
		cfg.SASL.OAuthBearer = gateway.UnsecuredJWTValidator{PrincipalClaim: s.oauthClaim, ClockSkew: time.Duration(s.oauthSkewSec) * time.Second}
	}
	if cfg.SASL.OAuthBearer != nil && !slices.Contains(cfg.SASL.Mechanisms, gateway.MechOAuthBearer) {
		cfg.SASL.Mechanisms = append(cfg.SASL.Mechanisms, gateway.MechOAuthBearer)
	}
	cfg.SASL.FailedAuthDelay = time.Duration(s.failedDelayMs) * time.Millisecond
	cfg.SASL.BruteForce = gateway.BruteForceConfig{Burst: s.failBurst, Refill: time.Duration(s.failRefillMs) * time.Millisecond}
	cfg.SASL.ReauthAfter = time.Duration(s.reauthMs) * time.Millisecond
	cfg.Authorizer = gateway.AuthorizerConfig{Enabled: s.authorizer, SuperUsers: s.superUserList(), AllowIfNoACL: s.allowNoACL}
	return nil
}

// UserPassword is one line of the -sasl-users file.
type UserPassword struct{ User, Password string }

// ReadUsers reads "user:password" lines; blank lines and lines starting with # are skipped.
func ReadUsers(path string) ([]UserPassword, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("-sasl-users: %w", err)
	}
	var out []UserPassword
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		u, p, ok := strings.Cut(line, ":")
		if !ok || u == "" || p == "" {
			return nil, fmt.Errorf("-sasl-users %s line %d: want user:password", path, n)
		}
		out = append(out, UserPassword{u, p})
	}
	return out, nil
}

// BootstrapUsers gives every listed user without SCRAM credentials a SCRAM-SHA-256 and a
// SCRAM-SHA-512 credential (8192 iterations). Users that already have credentials are left
// alone: their passwords are changed with AlterUserScramCredentials, not by this file.
func BootstrapUsers(ctx context.Context, be brokerop.SecurityService, users []UserPassword, log *slog.Logger) error {
	for _, u := range users {
		d, err := be.DescribeUserScramCredentials(ctx, &brokerop.DescribeUserScramCredentialsReq{Users: []string{u.User}})
		if err != nil {
			return err
		}
		if d.ErrorCode == 0 && len(d.Users) == 1 && d.Users[0].ErrorCode == 0 && len(d.Users[0].Credentials) > 0 {
			continue
		}
		var req brokerop.AlterUserScramCredentialsReq
		for _, m := range scramkey.Mechanisms {
			salt := make([]byte, 32)
			rand.Read(salt)
			salted, err := scramkey.Salted(m, u.Password, salt, scramkey.DefaultIterations)
			if err != nil {
				return err
			}
			req.Upsertions = append(req.Upsertions, brokerop.ScramUpsertion{Name: u.User, Mechanism: int8(m),
				Iterations: scramkey.DefaultIterations, Salt: salt, SaltedPassword: salted})
		}
		resp, err := be.AlterUserScramCredentials(ctx, &req)
		if err != nil {
			return err
		}
		for _, r := range resp.Results {
			if r.ErrorCode != 0 {
				return fmt.Errorf("-sasl-users: user %s: error %d: %s", r.User, r.ErrorCode, r.ErrorMessage)
			}
		}
		log.Info("SASL user created from -sasl-users", "user", u.User)
	}
	return nil
}

// BootstrapUsersUntilDone runs BootstrapUsers until it succeeds or ctx ends, every interval
// after a failure (logged): the brokers of a mesh may not be reachable yet when a binary
// starts. It does nothing for no users.
func BootstrapUsersUntilDone(ctx context.Context, be brokerop.SecurityService, users []UserPassword, log *slog.Logger, interval time.Duration) {
	for len(users) > 0 {
		err := BootstrapUsers(ctx, be, users, log)
		if err == nil || ctx.Err() != nil {
			return
		}
		log.Warn("creating -sasl-users failed; retrying", "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// KcatHint is the kcat -X flags a listener of protocol p needs.
func KcatHint(p gateway.SecurityProtocol) string {
	switch p {
	case gateway.SSL:
		return " -X security.protocol=SSL -X ssl.ca.location=<ca.pem>"
	case gateway.SASLPlaintext:
		return " -X security.protocol=SASL_PLAINTEXT -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=<user> -X sasl.password=<password>"
	case gateway.SASLSSL:
		return " -X security.protocol=SASL_SSL -X ssl.ca.location=<ca.pem> -X sasl.mechanisms=SCRAM-SHA-256 -X sasl.username=<user> -X sasl.password=<password>"
	}
	return ""
}
