package gateway

// SaslHandshake (key 17) v0–1 and SaslAuthenticate (key 36) v0–2, with Kafka's connection
// rules:
//
//   - On a SASL_PLAINTEXT or SASL_SSL listener a connection must authenticate first: before
//     that only ApiVersions, SaslHandshake and (after the handshake) SaslAuthenticate are
//     served; any other request, or SaslAuthenticate before SaslHandshake, closes the
//     connection, as Kafka does (IllegalSaslStateException). Frames above 512 KiB
//     (sasl.server.max.receive.size) close an unauthenticated connection.
//   - SaslHandshake names a mechanism: an unknown or disabled one is answered
//     UNSUPPORTED_SASL_MECHANISM with the enabled mechanisms, and the connection is closed.
//     After SaslHandshake v0 the client sends raw SASL tokens (4-byte length, no Kafka
//     header) and gets raw tokens back, until the exchange ends; after v1 the tokens travel
//     in SaslAuthenticate.
//   - A failed exchange (wrong password, unknown user, malformed token) is answered
//     SASL_AUTHENTICATION_FAILED with a message (v0 raw framing: the connection just closes)
//     and the connection is closed. Unknown users and wrong passwords get the same message.
//   - Re-authentication (KIP-368): with SASLConfig.ReauthAfter (connections.max.reauth.ms)
//     set, SaslAuthenticate v1+ tells the client its session lifetime; the client
//     re-authenticates on the same connection (SaslHandshake v1 + SaslAuthenticate) with the
//     same mechanism and principal. A request other than SaslHandshake arriving after the
//     session expired closes the connection.
//   - On PLAINTEXT and SSL listeners SaslHandshake and SaslAuthenticate are answered
//     ILLEGAL_SASL_STATE, as Kafka answers them once a connection is authenticated.
//
// Principals: "User:<name>" after SASL; on SSL listeners the client certificate's subject
// ("User:CN=client,O=example", RFC 2253 order, as Kafka's default principal builder) when
// the client sent one; "User:ANONYMOUS" otherwise.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// SASLConfig configures SASL on SASL_PLAINTEXT and SASL_SSL listeners. Credentials are the
// backend's SCRAM credentials (Backend.DescribeUserScramCredentials); PLAIN passwords are
// checked against them too.
type SASLConfig struct {
	// Mechanisms enabled, in the order SaslHandshake lists them (default DefaultMechanisms:
	// SCRAM-SHA-256, SCRAM-SHA-512, PLAIN).
	Mechanisms []string
	// ReauthAfter is Kafka's connections.max.reauth.ms: the session lifetime after which an
	// authenticated connection must re-authenticate (0: sessions never expire).
	ReauthAfter time.Duration
	// Clock decides session expiry (nil: the wall clock).
	Clock clock.Clock
}

// saslMaxReceive is Kafka's sasl.server.max.receive.size: the largest frame accepted on a
// connection not yet authenticated.
const saslMaxReceive = 512 << 10

// AnonymousPrincipal is the principal of an unauthenticated connection.
const AnonymousPrincipal = "User:ANONYMOUS"

// connState is one connection's security state, owned by its reader goroutine.
type connState struct {
	lis       listenerInfo
	principal string
	host      string // the peer's IP address (ACL hosts)
	authed    bool   // SASL authentication done (always true on non-SASL listeners)
	user      string
	mechName  string
	mech      saslMech  // exchange in progress (after SaslHandshake)
	raw       bool      // SaslHandshake v0: the next frames are raw SASL tokens
	expiry    time.Time // session end (zero: none)
	closing   error     // set by a handler: answer, then close the connection
	setMax    func(int) // the frame reader's limit
}

var errBeforeAuth = errors.New("gateway: request before SASL authentication")

// gate applies the SASL connection rules to a request about to be dispatched.
func (s *Server) gate(cs *connState, key int16) error {
	if !cs.lis.proto.SASL() {
		return nil
	}
	reauth := key == kmsg.SASLHandshake.Int16() || key == kmsg.SASLAuthenticate.Int16()
	if !cs.authed {
		if !reauth && key != kafkawire.KeyApiVersions {
			return fmt.Errorf("%w: unexpected request (api key %d) during SASL handshake", errBeforeAuth, key)
		}
		return nil
	}
	// Past its session's end a connection may only re-authenticate; before it, requests may
	// still be pipelined around a re-authentication.
	if !cs.expiry.IsZero() && !reauth && !s.clock.Now().Before(cs.expiry) {
		return fmt.Errorf("gateway: SASL session of %s expired (connections.max.reauth.ms) without re-authentication", cs.principal)
	}
	return nil
}

func (s *Server) mechanisms() []string {
	if len(s.cfg.SASL.Mechanisms) == 0 {
		return DefaultMechanisms
	}
	return s.cfg.SASL.Mechanisms
}

func handleSaslHandshake(_ context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SASLHandshakeRequest)
	resp := req.ResponseKind().(*kmsg.SASLHandshakeResponse)
	s, cs := r.Server, r.conn
	resp.SupportedMechanisms = slices.Clone(s.mechanisms())
	switch {
	case !cs.lis.proto.SASL():
		resp.ErrorCode = kerr.IllegalSaslState.Code
		return resp, nil
	case cs.mech != nil:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		cs.closing = errors.New("gateway: SaslHandshake during a SASL exchange")
		return resp, nil
	case cs.authed && r.Header.APIVersion < 1:
		resp.ErrorCode = kerr.IllegalSaslState.Code
		cs.closing = errors.New("gateway: re-authentication needs SaslHandshake v1")
		return resp, nil
	case !slices.Contains(s.mechanisms(), req.Mechanism) || newMech(req.Mechanism, nil) == nil:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		cs.closing = fmt.Errorf("gateway: client asked for SASL mechanism %q; enabled: %v", req.Mechanism, s.mechanisms())
		return resp, nil
	case cs.authed && req.Mechanism != cs.mechName:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		cs.closing = fmt.Errorf("gateway: SASL mechanism change not allowed during re-authentication (%s to %s)", cs.mechName, req.Mechanism)
		return resp, nil
	}
	cs.mech, cs.mechName = newMech(req.Mechanism, s.creds), req.Mechanism
	cs.raw = r.Header.APIVersion == 0
	return resp, nil
}

func handleSaslAuthenticate(ctx context.Context, r *Request) (kmsg.Response, error) {
	req := r.Body.(*kmsg.SASLAuthenticateRequest)
	resp := req.ResponseKind().(*kmsg.SASLAuthenticateResponse)
	s, cs := r.Server, r.conn
	if cs.mech == nil {
		if !cs.authed {
			return nil, fmt.Errorf("%w: SaslAuthenticate before SaslHandshake", errBeforeAuth)
		}
		resp.ErrorCode = kerr.IllegalSaslState.Code
		resp.ErrorMessage = kmsg.StringPtr("SaslAuthenticate request received after successful authentication")
		return resp, nil
	}
	challenge, done, err := s.saslStep(ctx, cs, req.SASLAuthBytes)
	if err != nil {
		resp.ErrorCode = kerr.SaslAuthenticationFailed.Code
		resp.ErrorMessage = kmsg.StringPtr(err.Error())
		cs.closing = err
		return resp, nil
	}
	resp.SASLAuthBytes = challenge
	if done && s.cfg.SASL.ReauthAfter > 0 {
		resp.SessionLifetimeMillis = s.cfg.SASL.ReauthAfter.Milliseconds()
	}
	return resp, nil
}

// saslStep feeds one client token to the exchange in progress; when it completes, the
// connection is authenticated (or re-authenticated: same principal required).
func (s *Server) saslStep(ctx context.Context, cs *connState, token []byte) (challenge []byte, done bool, err error) {
	challenge, user, done, err := cs.mech.step(ctx, token)
	if err == nil && done && cs.authed && "User:"+user != cs.principal {
		err = clientErr(fmt.Sprintf("Cannot change principals during re-authentication from %s: User:%s", cs.principal, user))
	}
	if err != nil {
		cs.mech = nil
		var detail error
		var ae *authError
		if errors.As(err, &ae) {
			detail = ae.detail
		}
		s.log.Info("gateway: SASL authentication failed", "mechanism", cs.mechName, "listener", cs.lis.proto.String(), "err", err, "detail", detail)
		return nil, false, err
	}
	if !done {
		return challenge, false, nil
	}
	cs.mech, cs.raw = nil, false
	reauth := cs.authed
	cs.authed, cs.user, cs.principal = true, user, "User:"+user
	if s.cfg.SASL.ReauthAfter > 0 {
		cs.expiry = s.clock.Now().Add(s.cfg.SASL.ReauthAfter)
	}
	cs.setMax(s.cfg.MaxFrameBytes)
	s.log.Debug("gateway: SASL authenticated", "principal", cs.principal, "mechanism", cs.mechName, "reauthentication", reauth)
	if s.authHook != nil {
		s.authHook(cs.principal, reauth)
	}
	return challenge, true, nil
}

// rawSASL handles a frame of the v0 raw-token phase (after SaslHandshake v0): the frame is
// a SASL token and the answer a raw token. A failure closes the connection, as Kafka does
// (v0 has no way to carry an error).
func (s *Server) rawSASL(cs *connState, token []byte) (pending, error) {
	challenge, _, err := s.saslStep(s.ctx, cs, token)
	if err != nil {
		return pending{}, fmt.Errorf("gateway: SASL authentication failed (v0 framing): %w", err)
	}
	return pending{raw: true, rawBytes: challenge}, nil
}
