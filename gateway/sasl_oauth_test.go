package gateway_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/oauth"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
)

// issuer is a test OAuth issuer: an RSA and an EC signing key published in a JWKS file.
type issuer struct {
	rsa   *rsa.PrivateKey
	ec    *ecdsa.PrivateKey
	jwks  string
	name  string
	aud   string
	clock *clock.Fake
}

func newIssuer(t testing.TB) *issuer {
	t.Helper()
	rk, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{rsa: rk, ec: ek, jwks: filepath.Join(t.TempDir(), "jwks.json"), name: "https://idp.example", aud: "kafka",
		clock: clock.NewFake(time.Unix(1_800_000_000, 0))}
	is.publish(t, jose.JSONWebKey{Key: &rk.PublicKey, KeyID: "rsa-1", Algorithm: "RS256", Use: "sig"},
		jose.JSONWebKey{Key: &ek.PublicKey, KeyID: "ec-1", Algorithm: "ES256", Use: "sig"})
	return is
}

func (is *issuer) publish(t testing.TB, keys ...jose.JSONWebKey) {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(is.jwks, raw, 0o644); err != nil {
		t.Fatal(err)
	}
}

func (is *issuer) validator(t testing.TB, mod func(*gateway.JWTValidatorConfig)) *gateway.JWTValidator {
	t.Helper()
	cfg := gateway.JWTValidatorConfig{JWKSFile: is.jwks, Issuer: is.name, Audience: []string{is.aud}, Clock: is.clock}
	if mod != nil {
		mod(&cfg)
	}
	v, err := gateway.NewJWTValidator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// claims returns valid claims for user at the issuer's clock, lasting an hour.
func (is *issuer) claims(user string) map[string]any {
	now := is.clock.Now().Unix()
	return map[string]any{"iss": is.name, "aud": is.aud, "sub": user, "iat": now, "nbf": now, "exp": now + 3600}
}

// sign signs claims with key (an *rsa.PrivateKey or *ecdsa.PrivateKey) under alg and kid.
func sign(t testing.TB, key crypto.Signer, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (is *issuer) token(t testing.TB, user string) string {
	return sign(t, is.rsa, jose.RS256, "rsa-1", is.claims(user))
}

func with(c map[string]any, kv ...any) map[string]any {
	c = maps.Clone(c)
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// The validator accepts RS256 and ES256 tokens of the key set with the right issuer,
// audience and times (within the clock skew), takes the principal from the configured claim,
// and refuses everything else.
func TestJWTValidator(t *testing.T) {
	is := newIssuer(t)
	v := is.validator(t, nil)
	now := is.clock.Now().Unix()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherRSA, _ := rsa.GenerateKey(rand.Reader, 2048)
	good := is.claims("alice")

	ok := map[string]string{
		"RS256":                 sign(t, is.rsa, jose.RS256, "rsa-1", good),
		"ES256":                 sign(t, is.ec, jose.ES256, "ec-1", good),
		"no kid: key by type":   sign(t, is.ec, jose.ES256, "", good),
		"expired within skew":   sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "exp", now-20)),
		"nbf within skew":       sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "nbf", now+20)),
		"audience in a list":    sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "aud", []string{"other", "kafka"})),
		"unknown claims ignore": sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "scope", "a b", "x", 1)),
	}
	for name, tok := range ok {
		got, err := v.Validate(context.Background(), tok)
		if err != nil || got.Principal != "alice" {
			t.Errorf("%s: %+v %v, want alice", name, got, err)
		}
	}
	if got, _ := v.Validate(context.Background(), ok["RS256"]); !got.Expiry.Equal(time.Unix(now+3600, 0)) {
		t.Errorf("expiry %v, want exp", got.Expiry)
	}

	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("secret-secret-secret-secret-1234")}, nil)
	hsTok, _ := jwt.Signed(hs).Claims(good).Serialize()
	parts := strings.Split(ok["RS256"], ".")
	tampered := parts[0] + "." + strings.TrimRight(encodeSeg(t, with(good, "sub", "root")), "=") + "." + parts[2]
	bad := map[string]string{
		"expired":             sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "exp", now-31)),
		"not yet valid":       sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "nbf", now+31)),
		"issued in future":    sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "iat", now+120)),
		"wrong audience":      sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "aud", "other")),
		"no audience":         sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "aud", nil)),
		"wrong issuer":        sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "iss", "https://evil.example")),
		"no exp":              sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "exp", nil)),
		"no iat":              sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "iat", nil)),
		"no sub":              sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "sub", nil)),
		"sub not a string":    sign(t, is.rsa, jose.RS256, "rsa-1", with(good, "sub", 7)),
		"forged EC key":       sign(t, other, jose.ES256, "ec-1", good),
		"forged RSA key":      sign(t, otherRSA, jose.RS256, "rsa-1", good),
		"forged, no kid":      sign(t, other, jose.ES256, "", good),
		"unknown kid":         sign(t, is.rsa, jose.RS256, "rsa-2", good),
		"alg not the key's":   sign(t, is.rsa, jose.PS256, "rsa-1", good), // the JWK says RS256
		"HS256":               hsTok,
		"tampered payload":    tampered,
		"alg none":            encodeSeg(t, map[string]any{"alg": "none", "typ": "JWT"}) + "." + encodeSeg(t, good) + ".",
		"garbage":             "a.b.c",
		"empty":               "",
		"JWE (five segments)": "a.b.c.d.e",
	}
	for name, tok := range bad {
		if got, err := v.Validate(context.Background(), tok); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}

	// The principal claim is configurable; no issuer or audience configured: not checked.
	v2 := is.validator(t, func(c *gateway.JWTValidatorConfig) {
		c.PrincipalClaim, c.Issuer, c.Audience = "preferred_username", "", nil
	})
	tok := sign(t, is.ec, jose.ES256, "ec-1", with(good, "preferred_username", "bob", "iss", "anyone", "aud", nil))
	if got, err := v2.Validate(context.Background(), tok); err != nil || got.Principal != "bob" {
		t.Fatalf("principal claim: %+v %v", got, err)
	}

	// Key rotation: the file is read again when it changes; a broken file keeps the old keys.
	is.publish(t, jose.JSONWebKey{Key: &other.PublicKey, KeyID: "ec-2", Algorithm: "ES256", Use: "sig"})
	future := time.Now().Add(time.Hour)
	os.Chtimes(is.jwks, future, future)
	if _, err := v.Validate(context.Background(), ok["RS256"]); err == nil {
		t.Fatal("token of a removed key still accepted after the JWKS changed")
	}
	if _, err := v.Validate(context.Background(), sign(t, other, jose.ES256, "ec-2", good)); err != nil {
		t.Fatalf("token of the new key: %v", err)
	}
	os.WriteFile(is.jwks, []byte("{not json"), 0o644)
	os.Chtimes(is.jwks, future.Add(time.Hour), future.Add(time.Hour))
	if _, err := v.Validate(context.Background(), sign(t, other, jose.ES256, "ec-2", good)); err != nil {
		t.Fatalf("a broken JWKS file dropped the keys: %v", err)
	}

	for name, raw := range map[string]string{
		"not json": "{", "no keys": `{"keys":[]}`,
		"only an encryption key": `{"keys":[{"kty":"EC","use":"enc","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`,
		"symmetric key":          `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
	} {
		if _, err := gateway.ParseJWKS([]byte(raw)); err == nil {
			t.Errorf("JWKS %s: accepted", name)
		}
	}
	if _, err := gateway.NewJWTValidator(gateway.JWTValidatorConfig{JWKSFile: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("missing JWKS file accepted")
	}
}

func encodeSeg(t testing.TB, v any) string {
	raw, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

func TestParseOAuthBearer(t *testing.T) {
	for _, tc := range []struct {
		in    string
		token string
		authz string
		ext   map[string]string
	}{
		{in: "n,,\x01auth=Bearer abc.def-_.g\x01\x01", token: "abc.def-_.g"},
		{in: "n,a=alice,\x01auth=bearer  tok\x01\x01", token: "tok", authz: "alice"},
		{in: "n,a=a=2Cb,\x01auth=BEARER t\x01ext=some value\x01k=v\x01\x01", token: "t", authz: "a=2Cb", ext: map[string]string{"ext": "some value", "k": "v"}},
		{in: "n,,\x01x=1\x01auth=Bearer t\x01\x01", token: "t", ext: map[string]string{"x": "1"}},
	} {
		r, err := gateway.ParseOAuthBearer([]byte(tc.in))
		if err != nil || r.Token != tc.token || r.AuthzID != tc.authz || !maps.Equal(r.Extensions, tc.ext) {
			t.Errorf("%q: %+v %v", tc.in, r, err)
		}
	}
	for _, in := range []string{
		"", "n,,", "y,,\x01auth=Bearer t\x01\x01", "p=x,,\x01auth=Bearer t\x01\x01", "n,,auth=Bearer t\x01\x01",
		"n,,\x01auth=Bearer t\x01", "n,,\x01auth=Bearer t\x01\x01\x01", "n,,\x01\x01", "n,,\x01auth=Basic t\x01\x01",
		"n,,\x01auth=Bearer\x01\x01", "n,,\x01auth=Bearer t t\x01\x01", "n,,\x01auth=Bearer t\x01auth=Bearer u\x01\x01",
		"n,,\x01auth=Bearer t\x01k1=v\x01\x01", "n,,\x01auth=Bearer t\x01=v\x01\x01", "n,,\x01auth=Bearer t\x01k=\x01\x01",
		"n,b=x,\x01auth=Bearer t\x01\x01", "n,a=,\x01auth=Bearer t\x01\x01", "n,a=x=41,\x01auth=Bearer t\x01\x01",
		"n,,\x01auth=Bearer t\x01k=v\x00\x01\x01", "n,,\x01auth=Bearer t/+\x01\x01",
	} {
		if r, err := gateway.ParseOAuthBearer([]byte(in)); err == nil {
			t.Errorf("%q accepted: %+v", in, r)
		}
	}
}

// FuzzParseOAuthBearer: the parser never panics, and what it accepts re-encodes (as kgo's
// client writes it) to a message that parses to the same result.
func FuzzParseOAuthBearer(f *testing.F) {
	for _, s := range []string{"n,,\x01auth=Bearer abc.def\x01\x01", "n,a=alice,\x01auth=Bearer t\x01k=v v\x01\x01", "n,,\x01\x01", "y,,"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r, err := gateway.ParseOAuthBearer(in)
		if err != nil {
			return
		}
		if r.Token == "" {
			t.Fatalf("%q: accepted with an empty token", in)
		}
		msg := "n,"
		if r.AuthzID != "" {
			msg += "a=" + r.AuthzID
		}
		msg += ",\x01auth=Bearer " + r.Token + "\x01"
		for k, v := range r.Extensions {
			msg += k + "=" + v + "\x01"
		}
		r2, err := gateway.ParseOAuthBearer([]byte(msg + "\x01"))
		if err != nil || r2.Token != r.Token || r2.AuthzID != r.AuthzID || !maps.Equal(r2.Extensions, r.Extensions) {
			t.Fatalf("%q: re-encoded %q parses to %+v %v, want %+v", in, msg, r2, err, r)
		}
	})
}

// kgo's OAUTHBEARER mechanism (pkg/sasl/oauth) produces and consumes over SASL_SSL and
// SASL_PLAINTEXT; the principal is the token's subject; expired, forged and wrong-audience
// tokens fail with Kafka's error JSON.
func TestOAuthBearerKgo(t *testing.T) {
	is := newIssuer(t)
	s := startSecure(t, "none", gateway.SASLConfig{OAuthBearer: is.validator(t, nil), Clock: is.clock})
	mech := func(tok string) kgo.Opt { return kgo.SASL(oauth.Auth{Token: tok}.AsMechanism()) }
	if err := produceConsume(t, s.addr[gateway.SASLSSL], "oauth-ssl", mech(is.token(t, "alice")), kgo.DialTLSConfig(s.clientTLS(t, false))); err != nil {
		t.Fatalf("SASL_SSL: %v", err)
	}
	ec := sign(t, is.ec, jose.ES256, "ec-1", is.claims("bob"))
	if err := produceConsume(t, s.addr[gateway.SASLPlaintext], "oauth-plain", mech(ec)); err != nil {
		t.Fatalf("SASL_PLAINTEXT, ES256: %v", err)
	}
	for _, p := range s.authed() {
		if p != "User:alice" && p != "User:bob" {
			t.Fatalf("principal %q", p)
		}
	}
	now := is.clock.Now().Unix()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for name, tok := range map[string]string{
		"expired":        sign(t, is.rsa, jose.RS256, "rsa-1", with(is.claims("alice"), "exp", now-3600)),
		"forged":         sign(t, other, jose.ES256, "ec-1", is.claims("alice")),
		"wrong audience": sign(t, is.rsa, jose.RS256, "rsa-1", with(is.claims("alice"), "aud", "billing")),
	} {
		cl := kafkaclients.KgoClient(t, s.addr[gateway.SASLPlaintext], mech(tok), kgo.RequestRetries(0))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.Ping(ctx)
		cancel()
		var ke *kerr.Error
		if err == nil || !errors.As(err, &ke) || ke != kerr.SaslAuthenticationFailed || !strings.Contains(err.Error(), `{"status":"invalid_token"}`) {
			t.Errorf("%s token: %v, want SASL_AUTHENTICATION_FAILED with the error JSON", name, err)
		}
	}
}

// The OAUTHBEARER exchange byte by byte: a refused token gets the error JSON as a challenge,
// the client's ^A gets SASL_AUTHENTICATION_FAILED with the JSON, and the connection closes;
// the session lifetime is the token's remaining life (capped by ReauthAfter), and a request
// after it closes the connection unless the client re-authenticated with a fresh token.
func TestOAuthBearerExchange(t *testing.T) {
	is := newIssuer(t)
	s := startSecure(t, "none", gateway.SASLConfig{OAuthBearer: is.validator(t, nil), Clock: is.clock, ReauthAfter: 2 * time.Hour})
	addr := s.addr[gateway.SASLPlaintext]
	msg := func(authz, tok string) string { return "n," + authz + ",\x01auth=Bearer " + tok + "\x01\x01" }

	if resp := handshake(dial(t, addr), 1, "OAUTHBEARER", 1); resp.ErrorCode != 0 ||
		strings.Join(resp.SupportedMechanisms, ",") != "SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER" {
		t.Fatalf("handshake: %+v", resp)
	}
	t.Run("refused token: error JSON, ^A, SASL_AUTHENTICATION_FAILED, closed", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "OAUTHBEARER", 1)
		forged := sign(t, is.rsa, jose.RS256, "rsa-1", with(is.claims("alice"), "iss", "evil"))
		resp := authenticate(r, 2, msg("", forged), 2)
		if resp.ErrorCode != 0 || string(resp.SASLAuthBytes) != `{"status":"invalid_token"}` {
			t.Fatalf("first answer %+v %q", resp, resp.SASLAuthBytes)
		}
		resp = authenticate(r, 2, "\x01", 3)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil || *resp.ErrorMessage != `{"status":"invalid_token"}` {
			t.Fatalf("after ^A: %+v", resp)
		}
		r.expectClosed()
	})
	t.Run("malformed message: Kafka's generic failure, closed", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "OAUTHBEARER", 1)
		resp := authenticate(r, 2, "n,,auth=Bearer x", 2)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code ||
			*resp.ErrorMessage != "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER" {
			t.Fatalf("answer %+v", resp)
		}
		r.expectClosed()
	})
	t.Run("authorization id other than the subject is refused", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "OAUTHBEARER", 1)
		resp := authenticate(r, 2, msg("a=root", is.token(t, "alice")), 2)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || !strings.Contains(*resp.ErrorMessage, "different from the token's principal") {
			t.Fatalf("answer %+v", resp)
		}
		r.expectClosed()
	})
	t.Run("session ends with the token; re-authentication with a fresh token extends it", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "OAUTHBEARER", 1)
		short := sign(t, is.rsa, jose.RS256, "rsa-1", with(is.claims("alice"), "exp", is.clock.Now().Unix()+600))
		resp := authenticate(r, 2, msg("a=alice", short), 2)
		if resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 600*1000 {
			t.Fatalf("authenticate: %+v, want a lifetime of 600 s (to exp)", resp)
		}
		long := dial(t, addr)
		handshake(long, 1, "OAUTHBEARER", 1)
		if resp := authenticate(long, 2, msg("", is.token(t, "alice")), 2); resp.SessionLifetimeMillis != 3600*1000 {
			t.Fatalf("lifetime %d, want the token's 3600 s", resp.SessionLifetimeMillis)
		}
		stale := dial(t, addr)
		handshake(stale, 1, "OAUTHBEARER", 1)
		authenticate(stale, 2, msg("", short), 2)

		is.clock.Advance(500 * time.Second)
		handshake(r, 1, "OAUTHBEARER", 3)
		if resp := authenticate(r, 2, msg("", is.token(t, "alice")), 4); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 3600*1000 {
			t.Fatalf("re-authentication: %+v", resp)
		}
		is.clock.Advance(200 * time.Second) // 700 s: past the short token, not the renewed session
		r.roundTrip(metadataReq(), 5)
		stale.write(encode(metadataReq(), 3))
		stale.expectClosed()
		long.roundTrip(metadataReq(), 3)
	})
	t.Run("a token past exp but within the skew: lifetime 0, over at the next request", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "OAUTHBEARER", 1)
		late := sign(t, is.rsa, jose.RS256, "rsa-1", with(is.claims("alice"), "exp", is.clock.Now().Unix()-10))
		if resp := authenticate(r, 2, msg("", late), 2); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 0 {
			t.Fatalf("authenticate: %+v", resp)
		}
		r.write(encode(metadataReq(), 3))
		r.expectClosed()
	})
	t.Run("ReauthAfter caps the session of a long token", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "OAUTHBEARER", 1)
		tok := sign(t, is.rsa, jose.RS256, "rsa-1", with(is.claims("alice"), "exp", is.clock.Now().Unix()+24*3600))
		if resp := authenticate(r, 2, msg("", tok), 2); resp.SessionLifetimeMillis != (2 * time.Hour).Milliseconds() {
			t.Fatalf("lifetime %d, want 2 h", resp.SessionLifetimeMillis)
		}
	})
}

// OAUTHBEARER is offered only with a validator, and a server configured to offer it without
// one does not start.
func TestOAuthBearerNeedsValidator(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{})
	r := dial(t, s.addr[gateway.SASLPlaintext])
	if resp := handshake(r, 1, "OAUTHBEARER", 1); resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code {
		t.Fatalf("handshake without a validator: %+v", resp)
	}
	_, err := gateway.NewServer(gateway.Config{Backend: secBackend{}, SASL: gateway.SASLConfig{Mechanisms: []string{"OAUTHBEARER"}}})
	if err == nil || !strings.Contains(err.Error(), "OAuthBearer") {
		t.Fatalf("NewServer with OAUTHBEARER and no validator: %v", err)
	}
}

// The unsecured validator (Kafka's default, for development) accepts alg-none tokens with exp
// and a subject, and refuses signed, expired and subject-less ones.
func TestUnsecuredJWTValidator(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_800_000_000, 0))
	v := gateway.UnsecuredJWTValidator{Clock: clk}
	now := clk.Now().Unix()
	tok := func(header string, claims map[string]any) string {
		raw, _ := json.Marshal(claims)
		return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(raw) + "."
	}
	if got, err := v.Validate(context.Background(), tok(`{"alg":"none"}`, map[string]any{"sub": "admin", "exp": now + 60})); err != nil ||
		got.Principal != "admin" || !got.Expiry.Equal(time.Unix(now+60, 0)) {
		t.Fatalf("valid unsecured token: %+v %v", got, err)
	}
	is := newIssuer(t)
	for name, bad := range map[string]string{
		"expired":           tok(`{"alg":"none"}`, map[string]any{"sub": "admin", "exp": now}),
		"no exp":            tok(`{"alg":"none"}`, map[string]any{"sub": "admin"}),
		"exp not a number":  tok(`{"alg":"none"}`, map[string]any{"sub": "admin", "exp": "soon"}),
		"iat in the future": tok(`{"alg":"none"}`, map[string]any{"sub": "admin", "exp": now + 60, "iat": now + 30}),
		"no sub":            tok(`{"alg":"none"}`, map[string]any{"exp": now + 60}),
		"alg RS256":         tok(`{"alg":"RS256"}`, map[string]any{"sub": "admin", "exp": now + 60}),
		"no alg":            tok(`{}`, map[string]any{"sub": "admin", "exp": now + 60}),
		"signed":            is.token(t, "admin"),
		"two parts":         "a.b",
	} {
		if got, err := v.Validate(context.Background(), bad); err == nil {
			t.Errorf("%s: accepted as %+v", name, got)
		}
	}
}

// FuzzValidateToken feeds arbitrary tokens to both validators: nothing panics, the unsecured
// validator never accepts a signed token, and whatever the JWKS validator accepts carries the
// seed token's claims (only the issuer's key can sign; base64's ignored trailing bits may make
// a different string of the same token).
func FuzzValidateToken(f *testing.F) {
	is := newIssuer(f)
	v := is.validator(f, nil)
	good := is.token(f, "alice")
	want, err := v.Validate(context.Background(), good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(sign(f, is.ec, jose.ES256, "ec-1", is.claims("alice")))
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJhIiwiZXhwIjoxOTAwMDAwMDAwfQ.")
	f.Add("a.b.c")
	unsecured := gateway.UnsecuredJWTValidator{Clock: is.clock}
	f.Fuzz(func(t *testing.T, tok string) {
		if got, err := v.Validate(context.Background(), tok); err == nil && got != want {
			t.Fatalf("%q accepted as %+v", tok, got)
		}
		if got, err := unsecured.Validate(context.Background(), tok); err == nil && !strings.HasSuffix(tok, ".") {
			t.Fatalf("unsecured validator accepted a signed token %q as %+v", tok, got)
		}
	})
}
