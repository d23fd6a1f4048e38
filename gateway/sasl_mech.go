package gateway

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"strings"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/scramkey"
)

// SASL mechanism names the gateway serves.
const (
	MechPlain       = "PLAIN"
	MechScramSHA256 = "SCRAM-SHA-256"
	MechScramSHA512 = "SCRAM-SHA-512"
)

// DefaultMechanisms are enabled when SASLConfig.Mechanisms is empty.
var DefaultMechanisms = []string{MechScramSHA256, MechScramSHA512, MechPlain}

// saslMech is one authentication exchange of one mechanism. step consumes the client's
// token and returns the server's; done reports success, with the authenticated user. A
// non-nil error is an authentication failure whose text the client is told.
type saslMech interface {
	step(ctx context.Context, token []byte) (challenge []byte, user string, done bool, err error)
}

// credentials looks a user's stored SCRAM credentials up through the backend.
type credentials func(ctx context.Context, user string) ([]brokerop.ScramCredential, error)

// errUnknownUser is an internal lookup result; clients are never told a user is unknown.
var errUnknownUser = errors.New("unknown user")

func backendCredentials(be Backend) credentials {
	return func(ctx context.Context, user string) ([]brokerop.ScramCredential, error) {
		resp, err := be.DescribeUserScramCredentials(brokerop.WithoutActing(ctx), &brokerop.DescribeUserScramCredentialsReq{Users: []string{user}})
		if err != nil {
			return nil, fmt.Errorf("credential store unavailable: %w", err)
		}
		if resp.ErrorCode != 0 || len(resp.Users) != 1 || resp.Users[0].ErrorCode != 0 || len(resp.Users[0].Credentials) == 0 {
			return nil, errUnknownUser
		}
		return resp.Users[0].Credentials, nil
	}
}

// authError is an authentication failure: msg goes to the client, detail only to the log.
type authError struct {
	msg    string
	detail error
}

func (e *authError) Error() string { return e.msg }

// clientErr is an authentication failure told to the client as Kafka words it.
func clientErr(msg string) error { return &authError{msg: msg} }

// failedMessage is Kafka's text for a failed authentication (same for an unknown user and a
// wrong password, so that users cannot be enumerated).
func failedMessage(mech string) string {
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
}

// newMech starts an exchange of mechanism name (nil: not a mechanism the gateway knows).
// OAUTHBEARER validates with oauth (nil: every token is refused).
func newMech(name string, creds credentials, oauth TokenValidator) saslMech {
	switch name {
	case MechPlain:
		return &plainMech{creds: creds}
	case MechScramSHA256:
		return &scramMech{m: scramkey.SHA256, creds: creds}
	case MechScramSHA512:
		return &scramMech{m: scramkey.SHA512, creds: creds}
	case MechOAuthBearer:
		return &oauthMech{v: oauth}
	}
	return nil
}

// alnumNonce is 32 random characters of [0-9A-Za-z].
func alnumNonce() string {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	b := make([]byte, 32)
	rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

// ParsePlain splits a SASL PLAIN token (RFC 4616): authzid NUL authcid NUL passwd. The user
// and password must not be empty; an authorization id other than empty or the user is
// refused, as Kafka refuses it.
func ParsePlain(token []byte) (user, password string, err error) {
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return "", "", clientErr("Invalid SASL/PLAIN response: expected 3 tokens")
	}
	authz, u, p := string(parts[0]), string(parts[1]), string(parts[2])
	if u == "" {
		return "", "", clientErr("Authentication failed: username not specified")
	}
	if p == "" {
		return "", "", clientErr("Authentication failed: password not specified")
	}
	if authz != "" && authz != u {
		return "", "", clientErr("Authentication failed: Client requested an authorization id that is different from username")
	}
	return u, p, nil
}

// plainMech checks a PLAIN password against the user's stored SCRAM credential (the
// SHA-256 one if there is one), so that one credential store serves every mechanism.
type plainMech struct {
	creds credentials
	done  bool
}

func (p *plainMech) step(ctx context.Context, token []byte) ([]byte, string, bool, error) {
	if p.done {
		return nil, "", false, clientErr("Authentication failed: PLAIN takes one message")
	}
	p.done = true
	user, pass, err := ParsePlain(token)
	if err != nil {
		return nil, "", false, err
	}
	creds, err := p.creds(ctx, user)
	if err != nil && !errors.Is(err, errUnknownUser) {
		return nil, "", false, &authError{msg: "Authentication failed: the credential store is unavailable", detail: err}
	}
	// The first (lowest-numbered) mechanism decides; the others hold the same password.
	if len(creds) > 0 {
		c := creds[0]
		if scramkey.Check(scramkey.Credential{Mechanism: scramkey.Mechanism(c.Mechanism), Iterations: c.Iterations,
			Salt: c.Salt, StoredKey: c.StoredKey}, pass) {
			return nil, user, true, nil
		}
	}
	return nil, "", false, clientErr("Authentication failed: Invalid username or password")
}

// scramMech is the server side of one SCRAM exchange (RFC 5802, RFC 7677), with Kafka's
// rules: no channel binding (gs2 header "n" or "y"), an authorization id equal to the user
// if any, extensions in client-first ignored, and the client-final nonce accepted when it
// ends with the server's nonce — Kafka's check (ScramSaslServer), which librdkafka relies on:
// it sends its own nonce again in front of the server's.
type scramMech struct {
	m     scramkey.Mechanism
	creds credentials
	nonce func() string // server nonce part (alnumNonce; tests fix it)

	state       int // 0: want client-first, 1: want client-final, 2: done
	user        string
	cred        brokerop.ScramCredential
	gs2         string // gs2 header, echoed base64 in client-final's c=
	first, sfst string // client-first-message-bare, server-first-message
	fullNonce   string
}

func (s *scramMech) step(ctx context.Context, token []byte) ([]byte, string, bool, error) {
	switch s.state {
	case 0:
		s.state = 2
		return s.clientFirst(ctx, string(token))
	case 1:
		s.state = 2
		return s.clientFinal(string(token))
	}
	return nil, "", false, clientErr("Authentication failed: SCRAM exchange already finished")
}

func (s *scramMech) fail(detail error) ([]byte, string, bool, error) {
	return nil, "", false, &authError{msg: failedMessage(s.m.String()), detail: detail}
}

// ClientFirst is a parsed SCRAM client-first-message.
type ClientFirst struct {
	GS2   string // gs2 header including its trailing comma ("n,," or "n,a=alice,")
	User  string // decoded saslname
	Authz string // decoded authzid ("" if none)
	Nonce string
	Bare  string // client-first-message-bare
}

// ParseClientFirst parses a client-first-message: gs2-header "n=" user ",r=" nonce
// [",ext"...]. Channel binding ("p=") is refused: no listener offers SCRAM-PLUS.
func ParseClientFirst(msg string) (ClientFirst, error) {
	var cf ClientFirst
	flag, rest, ok := strings.Cut(msg, ",")
	if !ok || (flag != "n" && flag != "y") {
		return cf, fmt.Errorf("bad gs2 channel-binding flag in %q", trunc(msg))
	}
	authz, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return cf, errors.New("no gs2 header")
	}
	if authz != "" {
		a, ok := strings.CutPrefix(authz, "a=")
		if !ok {
			return cf, errors.New("bad authzid")
		}
		var err error
		if cf.Authz, err = decodeSaslName(a); err != nil || cf.Authz == "" {
			return cf, errors.New("bad authzid")
		}
	}
	cf.GS2 = flag + "," + authz + ","
	cf.Bare = bare
	attrs := strings.Split(bare, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "n=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, errors.New("client-first-message does not start with n= and r=")
	}
	var err error
	if cf.User, err = decodeSaslName(attrs[0][2:]); err != nil || cf.User == "" {
		return cf, errors.New("bad username")
	}
	cf.Nonce = attrs[1][2:]
	if !printableNonce(cf.Nonce) {
		return cf, errors.New("bad client nonce")
	}
	for _, ext := range attrs[2:] {
		if len(ext) < 2 || ext[1] != '=' {
			return cf, errors.New("bad extension")
		}
	}
	return cf, nil
}

// ClientFinal is a parsed SCRAM client-final-message.
type ClientFinal struct {
	Binding      string // decoded c= (the gs2 header, without channel binding)
	Nonce        string
	Proof        []byte
	WithoutProof string
}

// ParseClientFinal parses "c=" binding ",r=" nonce [",ext"...] ",p=" proof.
func ParseClientFinal(msg string) (ClientFinal, error) {
	var cf ClientFinal
	i := strings.LastIndex(msg, ",p=")
	if i < 0 {
		return cf, errors.New("no proof")
	}
	cf.WithoutProof = msg[:i]
	proof, err := base64.StdEncoding.DecodeString(msg[i+3:])
	if err != nil || len(proof) == 0 {
		return cf, errors.New("bad proof")
	}
	cf.Proof = proof
	attrs := strings.Split(cf.WithoutProof, ",")
	if len(attrs) < 2 || !strings.HasPrefix(attrs[0], "c=") || !strings.HasPrefix(attrs[1], "r=") {
		return cf, errors.New("client-final-message does not start with c= and r=")
	}
	b, err := base64.StdEncoding.DecodeString(attrs[0][2:])
	if err != nil {
		return cf, errors.New("bad channel binding")
	}
	cf.Binding, cf.Nonce = string(b), attrs[1][2:]
	return cf, nil
}

func (s *scramMech) clientFirst(ctx context.Context, msg string) ([]byte, string, bool, error) {
	cf, err := ParseClientFirst(msg)
	if err != nil {
		return s.fail(err)
	}
	if cf.Authz != "" && cf.Authz != cf.User {
		return nil, "", false, clientErr("Authentication failed: Client requested an authorization id that is different from username")
	}
	creds, err := s.creds(ctx, cf.User)
	if err != nil && !errors.Is(err, errUnknownUser) {
		return nil, "", false, &authError{msg: "Authentication failed: the credential store is unavailable", detail: err}
	}
	found := false
	for _, c := range creds {
		if c.Mechanism == int8(s.m) {
			s.cred, found = c, true
		}
	}
	if !found {
		return s.fail(fmt.Errorf("no %s credential for user %q", s.m, cf.User))
	}
	nonce := s.nonce
	if nonce == nil {
		nonce = alnumNonce
	}
	s.user, s.gs2, s.first = cf.User, cf.GS2, cf.Bare
	s.fullNonce = cf.Nonce + nonce()
	s.sfst = "r=" + s.fullNonce + ",s=" + base64.StdEncoding.EncodeToString(s.cred.Salt) + ",i=" + strconv.Itoa(int(s.cred.Iterations))
	s.state = 1
	return []byte(s.sfst), "", false, nil
}

func (s *scramMech) clientFinal(msg string) ([]byte, string, bool, error) {
	cf, err := ParseClientFinal(msg)
	if err != nil {
		return s.fail(err)
	}
	if cf.Binding != s.gs2 {
		return s.fail(errors.New("channel binding does not match the gs2 header"))
	}
	if !strings.HasSuffix(cf.Nonce, s.fullNonce) {
		return s.fail(errors.New("invalid client nonce in the final client message"))
	}
	h := s.m.Hash()
	auth := []byte(s.first + "," + s.sfst + "," + cf.WithoutProof)
	sig := hmacOf(h, s.cred.StoredKey, auth)
	if len(cf.Proof) != len(sig) {
		return s.fail(errors.New("proof has the wrong length"))
	}
	clientKey := make([]byte, len(sig))
	for i := range sig {
		clientKey[i] = cf.Proof[i] ^ sig[i]
	}
	sum := h()
	sum.Write(clientKey)
	if subtle.ConstantTimeCompare(sum.Sum(nil), s.cred.StoredKey) != 1 {
		return s.fail(errors.New("invalid proof"))
	}
	return []byte("v=" + base64.StdEncoding.EncodeToString(hmacOf(h, s.cred.ServerKey, auth))), s.user, true, nil
}

func hmacOf(h func() hash.Hash, key, msg []byte) []byte {
	m := hmac.New(h, key)
	m.Write(msg)
	return m.Sum(nil)
}

// decodeSaslName undoes RFC 5802's escaping: "=2C" is ',', "=3D" is '=', any other '=' is an
// error.
func decodeSaslName(s string) (string, error) {
	if !strings.Contains(s, "=") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '=' {
			b.WriteByte(s[i])
			continue
		}
		switch {
		case strings.HasPrefix(s[i:], "=2C"):
			b.WriteByte(',')
		case strings.HasPrefix(s[i:], "=3D"):
			b.WriteByte('=')
		default:
			return "", errors.New("bad escape in saslname")
		}
		i += 2
	}
	return b.String(), nil
}

// printableNonce: RFC 5802's printable (0x21–0x7E except ',').
func printableNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x21 || c > 0x7e || c == ',' {
			return false
		}
	}
	return true
}

func trunc(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
