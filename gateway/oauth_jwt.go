package gateway

// JWTValidator: Kafka's broker-side OAUTHBEARER validation (BrokerJwtValidator) over a JWKS
// file, on github.com/go-jose/go-jose/v4 (JWS verification, JWKS parsing and the registered
// claims; already in the module graph).
//
// A token is accepted when it is a compact JWS signed with an asymmetric algorithm (RS*, PS*,
// ES*, EdDSA; never none or HMAC: the keys are public) by a key of the set (the one its "kid"
// names, or any key of a matching type when it names none), it carries exp and iat, exp and
// nbf hold at the validator's clock within the clock skew (Kafka's
// sasl.oauthbearer.clock.skew.seconds, default 30 s), iss equals the expected issuer and aud
// contains one of the expected audiences when those are configured, and the principal claim
// (sasl.oauthbearer.sub.claim.name, default "sub") is a non-empty string.

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/meshkafka/meshkafka/internal/clock"
)

// JWTValidatorConfig configures a JWTValidator.
type JWTValidatorConfig struct {
	// JWKSFile is a JSON Web Key Set file (RFC 7517) of the issuer's public keys. Required.
	// It is read again when its size or modification time changes (key rotation).
	JWKSFile string
	// Issuer, if set, must equal the token's iss (sasl.oauthbearer.expected.issuer).
	Issuer string
	// Audience, if set, must intersect the token's aud (sasl.oauthbearer.expected.audience).
	Audience []string
	// ClockSkew is the leeway on exp, nbf and iat (default 30 s; negative: none).
	ClockSkew time.Duration
	// PrincipalClaim names the claim that holds the user name (default "sub").
	PrincipalClaim string
	// Clock is the validation time (nil: the wall clock).
	Clock clock.Clock
}

// jwtAlgorithms are the signature algorithms accepted: the asymmetric ones go-jose knows.
var jwtAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// maxJWTBytes bounds a token before it is parsed (the SASL frame bound is 512 KiB).
const maxJWTBytes = 64 << 10

// JWTValidator validates OAUTHBEARER tokens as JWTs against a JWKS file. It is safe for
// concurrent use.
type JWTValidator struct {
	cfg   JWTValidatorConfig
	clock clock.Clock

	mu      sync.Mutex
	keys    jose.JSONWebKeySet // guarded by mu
	size    int64              // guarded by mu: the file's size and mtime when read
	modTime time.Time          // guarded by mu
}

// NewJWTValidator reads the key set and returns a validator.
func NewJWTValidator(cfg JWTValidatorConfig) (*JWTValidator, error) {
	if cfg.JWKSFile == "" {
		return nil, errors.New("gateway: OAUTHBEARER needs a JWKS file")
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = 30 * time.Second
	} else if cfg.ClockSkew < 0 {
		cfg.ClockSkew = 0
	}
	if cfg.PrincipalClaim == "" {
		cfg.PrincipalClaim = "sub"
	}
	v := &JWTValidator{cfg: cfg, clock: clock.Or(cfg.Clock)}
	if err := v.reload(true); err != nil {
		return nil, err
	}
	return v, nil
}

// ParseJWKS parses a JSON Web Key Set and keeps its public signing keys; it fails when none
// is left or a key is malformed.
func ParseJWKS(raw []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return set, fmt.Errorf("JWKS: %w", err)
	}
	var out jose.JSONWebKeySet
	for i, k := range set.Keys {
		if !k.Valid() {
			return out, fmt.Errorf("JWKS: key %d (kid %q) is not valid", i, k.KeyID)
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		if !k.IsPublic() {
			k = k.Public()
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			out.Keys = append(out.Keys, k)
		}
	}
	if len(out.Keys) == 0 {
		return out, errors.New("JWKS: no public signing key (RSA, EC or Ed25519)")
	}
	return out, nil
}

// reload reads the key set file if it changed since it was last read (always when force).
// A file that no longer parses keeps the previous keys.
func (v *JWTValidator) reload(force bool) error {
	fi, err := os.Stat(v.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("gateway: JWKS file: %w", err)
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if !force && fi.Size() == v.size && fi.ModTime().Equal(v.modTime) {
		return nil
	}
	raw, err := os.ReadFile(v.cfg.JWKSFile)
	if err != nil {
		return fmt.Errorf("gateway: JWKS file: %w", err)
	}
	set, err := ParseJWKS(raw)
	if err != nil {
		return fmt.Errorf("gateway: %s: %w", v.cfg.JWKSFile, err)
	}
	v.keys, v.size, v.modTime = set, fi.Size(), fi.ModTime()
	return nil
}

func (v *JWTValidator) keySet() jose.JSONWebKeySet {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.keys
}

// jwtClaims are the claims Kafka checks; the principal claim is read from the raw map.
type jwtClaims struct {
	jwt.Claims
}

// Validate checks token and returns its principal and expiry.
func (v *JWTValidator) Validate(_ context.Context, token string) (OAuthToken, error) {
	if len(token) > maxJWTBytes {
		return OAuthToken{}, fmt.Errorf("token of %d bytes is larger than %d", len(token), maxJWTBytes)
	}
	// A key set file that became unreadable or invalid keeps the keys last read.
	_ = v.reload(false)
	tok, err := jwt.ParseSigned(token, jwtAlgorithms)
	if err != nil {
		return OAuthToken{}, fmt.Errorf("not a signed JWT: %w", err)
	}
	if len(tok.Headers) != 1 {
		return OAuthToken{}, errors.New("JWT must have exactly one signature")
	}
	h := tok.Headers[0]
	var claims jwtClaims
	var raw map[string]any
	verified := false
	for _, k := range v.keySet().Keys {
		if (h.KeyID != "" && k.KeyID != h.KeyID) || (k.Algorithm != "" && k.Algorithm != h.Algorithm) || !keyFits(k, h.Algorithm) {
			continue
		}
		if err := tok.Claims(k.Key, &claims, &raw); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return OAuthToken{}, fmt.Errorf("signature (alg %s, kid %q) not verified by any key of the JWKS", h.Algorithm, h.KeyID)
	}
	if claims.Expiry == nil {
		return OAuthToken{}, errors.New("JWT has no exp claim")
	}
	if claims.IssuedAt == nil {
		return OAuthToken{}, errors.New("JWT has no iat claim")
	}
	now := v.clock.Now()
	exp := jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: v.cfg.Audience, Time: now}
	if err := claims.ValidateWithLeeway(exp, v.cfg.ClockSkew); err != nil {
		return OAuthToken{}, fmt.Errorf("JWT claims: %w (iss %q, aud %v, exp %v, now %v)", err, claims.Issuer, []string(claims.Audience),
			claims.Expiry.Time().UTC(), now.UTC())
	}
	p, _ := raw[v.cfg.PrincipalClaim].(string)
	if strings.TrimSpace(p) == "" {
		return OAuthToken{}, fmt.Errorf("JWT has no string %q claim for the principal", v.cfg.PrincipalClaim)
	}
	return OAuthToken{Principal: p, Expiry: claims.Expiry.Time()}, nil
}

// keyFits reports whether a key's type can verify alg.
func keyFits(k jose.JSONWebKey, alg string) bool {
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		return strings.HasPrefix(alg, "ES")
	case ed25519.PublicKey:
		return alg == string(jose.EdDSA)
	}
	return false
}

// UnsecuredJWTValidator accepts unsigned JWTs ({"alg":"none"} header, empty signature), as
// Kafka's default OAUTHBEARER validator (OAuthBearerUnsecuredValidatorCallbackHandler) does
// when no other is configured: for development and client test suites only — anyone can
// mint such a token for any principal. The token needs exp (and an iat, when present, not in
// the future), both within ClockSkew (default 0, Kafka's
// unsecuredValidatorAllowableClockSkewMs), and a string principal claim (default "sub").
type UnsecuredJWTValidator struct {
	PrincipalClaim string
	ClockSkew      time.Duration
	Clock          clock.Clock
}

// Validate checks an unsecured token.
func (u UnsecuredJWTValidator) Validate(_ context.Context, token string) (OAuthToken, error) {
	if len(token) > maxJWTBytes {
		return OAuthToken{}, fmt.Errorf("token of %d bytes is larger than %d", len(token), maxJWTBytes)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 || parts[2] != "" {
		return OAuthToken{}, errors.New("not an unsecured JWS (header.payload. with an empty signature)")
	}
	var header struct {
		Alg *string `json:"alg"`
	}
	var claims map[string]any
	for i, dst := range []any{&header, &claims} {
		raw, err := base64URLDecode(parts[i])
		if err != nil {
			return OAuthToken{}, fmt.Errorf("JWT part %d: %w", i, err)
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil {
			return OAuthToken{}, fmt.Errorf("JWT part %d: %w", i, err)
		}
	}
	if header.Alg == nil || *header.Alg != "none" {
		return OAuthToken{}, errors.New(`unsecured JWT must have alg "none"`)
	}
	num := func(name string) (time.Time, bool, error) {
		v, ok := claims[name]
		if !ok {
			return time.Time{}, false, nil
		}
		n, isNum := v.(json.Number)
		f, err := n.Float64()
		if !isNum || err != nil {
			return time.Time{}, true, fmt.Errorf("claim %s is not a number", name)
		}
		return time.UnixMilli(int64(f * 1000)), true, nil
	}
	now := clock.Or(u.Clock).Now()
	skew := max(u.ClockSkew, 0)
	exp, ok, err := num("exp")
	if err != nil || !ok {
		return OAuthToken{}, fmt.Errorf("JWT needs a numeric exp claim (%v)", err)
	}
	if !now.Add(-skew).Before(exp) {
		return OAuthToken{}, fmt.Errorf("JWT expired at %v (now %v)", exp.UTC(), now.UTC())
	}
	if iat, ok, err := num("iat"); err != nil || (ok && now.Add(skew).Before(iat)) {
		return OAuthToken{}, fmt.Errorf("JWT iat in the future or not a number (%v)", err)
	}
	claim := u.PrincipalClaim
	if claim == "" {
		claim = "sub"
	}
	p, _ := claims[claim].(string)
	if strings.TrimSpace(p) == "" {
		return OAuthToken{}, fmt.Errorf("JWT has no string %q claim for the principal", claim)
	}
	return OAuthToken{Principal: p, Expiry: exp}, nil
}

// base64URLDecode decodes base64url with or without padding.
func base64URLDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}
