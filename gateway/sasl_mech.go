package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/xdg-go/scram"

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
		resp, err := be.DescribeUserScramCredentials(ctx, &brokerop.DescribeUserScramCredentialsReq{Users: []string{user}})
		if err != nil {
			return nil, fmt.Errorf("credential store unavailable: %w", err)
		}
		if resp.ErrorCode != 0 || len(resp.Users) != 1 || resp.Users[0].ErrorCode != 0 || len(resp.Users[0].Credentials) == 0 {
			return nil, errUnknownUser
		}
		return resp.Users[0].Credentials, nil
	}
}

// failedMessage is Kafka's text for a failed authentication (same for an unknown user and a
// wrong password, so that users cannot be enumerated).
func failedMessage(mech string) string {
	return "Authentication failed during authentication due to invalid credentials with SASL mechanism " + mech
}

func newMech(name string, creds credentials) saslMech {
	switch name {
	case MechPlain:
		return &plainMech{creds: creds}
	case MechScramSHA256:
		return &scramMech{m: scramkey.SHA256, creds: creds}
	case MechScramSHA512:
		return &scramMech{m: scramkey.SHA512, creds: creds}
	}
	return nil
}

// ParsePlain splits a SASL PLAIN token (RFC 4616): authzid NUL authcid NUL passwd. The user
// and password must not be empty; an authorization id other than empty or the user is
// refused, as Kafka refuses it.
func ParsePlain(token []byte) (user, password string, err error) {
	parts := bytes.Split(token, []byte{0})
	if len(parts) != 3 {
		return "", "", errors.New("Invalid SASL/PLAIN response: expected 3 tokens")
	}
	authz, u, p := string(parts[0]), string(parts[1]), string(parts[2])
	if u == "" {
		return "", "", errors.New("Authentication failed: username not specified")
	}
	if p == "" {
		return "", "", errors.New("Authentication failed: password not specified")
	}
	if authz != "" && authz != u {
		return "", "", errors.New("Authentication failed: Client requested an authorization id that is different from username")
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
		return nil, "", false, errors.New("Authentication failed: PLAIN takes one message")
	}
	p.done = true
	user, pass, err := ParsePlain(token)
	if err != nil {
		return nil, "", false, err
	}
	creds, err := p.creds(ctx, user)
	if err != nil && !errors.Is(err, errUnknownUser) {
		return nil, "", false, fmt.Errorf("Authentication failed: %v", err)
	}
	for _, c := range creds {
		if scramkey.Check(scramkey.Credential{Mechanism: scramkey.Mechanism(c.Mechanism), Iterations: c.Iterations,
			Salt: c.Salt, StoredKey: c.StoredKey}, pass) {
			return nil, user, true, nil
		}
		break // the first (lowest-numbered) mechanism decides; the others hold the same password
	}
	return nil, "", false, errors.New("Authentication failed: Invalid username or password")
}

// scramMech runs a server-side SCRAM conversation (RFC 5802/7677) with github.com/xdg-go/scram.
type scramMech struct {
	m     scramkey.Mechanism
	creds credentials
	conv  *scram.ServerConversation
	ctx   context.Context // the lookup's context, for the step that runs it
	err   error           // a lookup failure other than an unknown user
}

func (s *scramMech) step(ctx context.Context, token []byte) ([]byte, string, bool, error) {
	if s.conv == nil {
		hash := scram.SHA256
		if s.m == scramkey.SHA512 {
			hash = scram.SHA512
		}
		srv, err := hash.NewServer(func(user string) (scram.StoredCredentials, error) {
			creds, err := s.creds(s.ctx, user)
			if err != nil {
				if !errors.Is(err, errUnknownUser) {
					s.err = err
				}
				return scram.StoredCredentials{}, err
			}
			for _, c := range creds {
				if c.Mechanism == int8(s.m) {
					return scram.StoredCredentials{KeyFactors: scram.KeyFactors{Salt: string(c.Salt), Iters: int(c.Iterations)},
						StoredKey: c.StoredKey, ServerKey: c.ServerKey}, nil
				}
			}
			return scram.StoredCredentials{}, errUnknownUser
		})
		if err != nil {
			return nil, "", false, err
		}
		s.conv = srv.NewConversation()
	}
	if s.conv.Done() {
		return nil, "", false, errors.New("Authentication failed: SCRAM exchange already finished")
	}
	s.ctx = ctx
	out, err := s.conv.Step(string(token))
	s.ctx = nil
	if s.err != nil {
		return nil, "", false, fmt.Errorf("Authentication failed: %v", s.err)
	}
	if err != nil {
		return nil, "", false, errors.New(failedMessage(s.m.String()))
	}
	if s.conv.Done() {
		if !s.conv.Valid() {
			return nil, "", false, errors.New(failedMessage(s.m.String()))
		}
		if a := s.conv.AuthzID(); a != "" && a != s.conv.Username() {
			return nil, "", false, errors.New("Authentication failed: Client requested an authorization id that is different from username")
		}
		return []byte(out), s.conv.Username(), true, nil
	}
	return []byte(out), "", false, nil
}
