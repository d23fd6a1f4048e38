package gateway

// SASL OAUTHBEARER (RFC 7628) with Kafka's rules (OAuthBearerSaslServer):
//
//   - The client's one message is a GS2 header without channel binding ("n," with an
//     optional "a=<authzid>") and ^A-separated key=value pairs ending in ^A^A; the "auth" pair
//     is required and is "Bearer <token>" (scheme case-insensitive). Other pairs are SASL
//     extensions, accepted and ignored (Kafka ignores extensions no callback validates).
//   - A malformed message fails the exchange with Kafka's generic text.
//   - A token the validator refuses (forged, expired, wrong issuer or audience) is answered
//     with Kafka's error JSON as a server challenge, `{"status":"invalid_token"}`; the client
//     answers ^A and gets SASL_AUTHENTICATION_FAILED with the same JSON as its message (any
//     other answer fails too). An authorization id must equal the token's principal.
//   - The session ends when the token expires (KIP-368: SaslAuthenticate tells the client its
//     session lifetime, the smaller of the token's remaining life and
//     connections.max.reauth.ms, as Kafka's SaslServerAuthenticator computes it, also when the
//     latter is 0), so that a client re-authenticates with a fresh token.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// MechOAuthBearer is SASL OAUTHBEARER (RFC 7628); it is served when SASLConfig.OAuthBearer
// is set.
const MechOAuthBearer = "OAUTHBEARER"

// OAuthToken is a validated bearer token.
type OAuthToken struct {
	Principal string    // user name: the principal is "User:<Principal>"
	Expiry    time.Time // when the token stops being valid (the session ends then)
}

// TokenValidator validates OAUTHBEARER tokens. Validate returns an error for a token that
// must be refused; its text goes to the log only (the client gets Kafka's error JSON).
type TokenValidator interface {
	Validate(ctx context.Context, token string) (OAuthToken, error)
}

// OAuthBearerResponse is a parsed OAUTHBEARER client initial response.
type OAuthBearerResponse struct {
	AuthzID    string            // "" if none
	Token      string            // the bearer token
	Extensions map[string]string // key=value pairs other than auth
}

// oauthKVSep is RFC 7628's key/value separator (kvsep, ^A).
const oauthKVSep = "\x01"

// ParseOAuthBearer parses an OAUTHBEARER client initial response:
//
//	"n," ["a=" saslname] "," ^A *(key "=" value ^A) ^A
//
// with Kafka's grammar: key is [A-Za-z]+, value is [\x21-\x7E \t\r\n]+, auth is
// "<scheme> <token>" with scheme "bearer" (any case) and a token of [-_.A-Za-z0-9]+ (the
// characters of a JWT).
func ParseOAuthBearer(msg []byte) (OAuthBearerResponse, error) {
	var r OAuthBearerResponse
	rest, ok := bytes.CutPrefix(msg, []byte("n,"))
	if !ok {
		return r, errors.New("OAUTHBEARER: GS2 header must be \"n,\" (no channel binding)")
	}
	gs2, kvs, ok := bytes.Cut(rest, []byte(","))
	if !ok {
		return r, errors.New("OAUTHBEARER: no end of the GS2 header")
	}
	if len(gs2) > 0 {
		a, ok := bytes.CutPrefix(gs2, []byte("a="))
		if !ok || !validOAuthSaslName(a) {
			return r, errors.New("OAUTHBEARER: bad authorization id")
		}
		r.AuthzID = string(a)
	}
	// kvs is ^A (kv ^A)* ^A: strip the leading and the final ^A, then split.
	body, ok := bytes.CutPrefix(kvs, []byte(oauthKVSep))
	if !ok {
		return r, errors.New("OAUTHBEARER: no separator after the GS2 header")
	}
	body, ok = bytes.CutSuffix(body, []byte(oauthKVSep))
	if !ok {
		return r, errors.New("OAUTHBEARER: message does not end with ^A")
	}
	auth, haveAuth := "", false
	if len(body) > 0 {
		pairs, ok := bytes.CutSuffix(body, []byte(oauthKVSep))
		if !ok {
			return r, errors.New("OAUTHBEARER: key=value pair not ended by ^A")
		}
		for _, kv := range bytes.Split(pairs, []byte(oauthKVSep)) {
			k, v, ok := bytes.Cut(kv, []byte("="))
			if !ok || !validOAuthKey(k) || !validOAuthValue(v) {
				return r, errors.New("OAUTHBEARER: bad key=value pair")
			}
			key := string(k)
			if key == "auth" {
				if haveAuth {
					return r, errors.New("OAUTHBEARER: auth given twice")
				}
				auth, haveAuth = string(v), true
				continue
			}
			if r.Extensions == nil {
				r.Extensions = map[string]string{}
			}
			if _, dup := r.Extensions[key]; dup {
				return r, fmt.Errorf("OAUTHBEARER: extension %q given twice", key)
			}
			r.Extensions[key] = string(v)
		}
	}
	if !haveAuth {
		return r, errors.New("OAUTHBEARER: 'auth' not specified")
	}
	scheme, tok, ok := strings.Cut(auth, " ")
	tok = strings.TrimLeft(tok, " ")
	if !ok || !strings.EqualFold(scheme, "bearer") {
		return r, errors.New("OAUTHBEARER: auth scheme is not Bearer")
	}
	if !validBearerToken(tok) {
		return r, errors.New("OAUTHBEARER: invalid 'auth' format")
	}
	r.Token = tok
	return r, nil
}

// validOAuthSaslName is Kafka's SASLNAME: ([\x01-\x7F] except '=' and ',') or =2C or =3D.
func validOAuthSaslName(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '=':
			if !bytes.HasPrefix(b[i:], []byte("=2C")) && !bytes.HasPrefix(b[i:], []byte("=3D")) {
				return false
			}
			i += 2
		case c == 0 || c > 0x7f || c == ',':
			return false
		}
	}
	return true
}

func validOAuthKey(b []byte) bool {
	return nonEmptyAll(b, func(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' })
}

func validOAuthValue(b []byte) bool {
	return nonEmptyAll(b, func(c byte) bool { return c >= 0x21 && c <= 0x7e || c == ' ' || c == '\t' || c == '\r' || c == '\n' })
}

// nonEmptyAll reports whether b is not empty and ok(c) for each of its bytes c.
func nonEmptyAll(b []byte, ok func(c byte) bool) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if !ok(c) {
			return false
		}
	}
	return true
}

func validBearerToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'A' || c > 'Z') && (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '-' && c != '_' && c != '.' {
			return false
		}
	}
	return true
}

// oauthInvalidToken is Kafka's error JSON for a token the validator refused
// (OAuthBearerSaslServer.jsonErrorResponse with status invalid_token).
const oauthInvalidToken = `{"status":"invalid_token"}`

// oauthMech is the server side of one OAUTHBEARER exchange.
type oauthMech struct {
	v      TokenValidator
	state  int // 0: want the initial response, 1: error JSON sent, want ^A, 2: done
	errMsg string
	expiry time.Time
}

func (o *oauthMech) step(ctx context.Context, token []byte) ([]byte, string, bool, error) {
	switch o.state {
	case 0:
		o.state = 2
		r, err := ParseOAuthBearer(token)
		if err != nil {
			return nil, "", false, &authError{msg: failedMessage(MechOAuthBearer), detail: err}
		}
		if o.v == nil {
			return nil, "", false, clientErr("Authentication failed: OAUTHBEARER is not configured")
		}
		tok, err := o.v.Validate(ctx, r.Token)
		if err != nil {
			// Kafka answers a refused token with the error JSON as a challenge; the client
			// answers ^A, and only then fails. The failure is logged now.
			o.state, o.errMsg = 1, oauthInvalidToken
			return []byte(oauthInvalidToken), "", false, nil
		}
		if r.AuthzID != "" && r.AuthzID != tok.Principal {
			return nil, "", false, clientErr(fmt.Sprintf(
				"Authentication failed: Client requested an authorization id (%s) that is different from the token's principal name (%s)",
				r.AuthzID, tok.Principal))
		}
		o.expiry = tok.Expiry
		return nil, tok.Principal, true, nil
	case 1:
		o.state = 2
		if string(token) == oauthKVSep {
			return nil, "", false, clientErr(o.errMsg)
		}
		return nil, "", false, clientErr(failedMessage(MechOAuthBearer))
	}
	return nil, "", false, clientErr("Authentication failed: OAUTHBEARER exchange already finished")
}

// rejected reports whether the exchange refused the token (the error JSON is out): the
// attempt counts as failed although the exchange still waits for the client's ^A.
func (o *oauthMech) rejected() bool { return o.state == 1 }

// sessionExpiry is when the authenticated session must end (the token's expiry).
func (o *oauthMech) sessionExpiry() time.Time { return o.expiry }
