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
	// Clock decides session expiry and brute-force throttling (nil: the wall clock).
	Clock clock.Clock
	// OAuthBearer validates OAUTHBEARER tokens (sasl_oauth.go; NewJWTValidator checks JWTs
	// against a JWKS file). Required for the OAUTHBEARER mechanism, which the default
	// mechanism list then includes.
	OAuthBearer TokenValidator
	// FailedAuthDelay is how long a failed authentication's answer waits before it is sent
	// and the connection closed (Kafka's connection.failed.authentication.delay.ms; 0: none).
	FailedAuthDelay time.Duration
	// BruteForce throttles failed authentications per source address (sasl_throttle.go).
	BruteForce BruteForceConfig
}

// checkSASL validates the SASL part of a server's configuration.
func checkSASL(cfg SASLConfig) error {
	for _, m := range cfg.Mechanisms {
		if newMech(m, nil, nil) == nil {
			return fmt.Errorf("gateway: SASL mechanism %q not supported (have %v)", m, append(DefaultMechanisms, MechOAuthBearer))
		}
		if m == MechOAuthBearer && cfg.OAuthBearer == nil {
			return errors.New("gateway: SASL mechanism OAUTHBEARER needs SASLConfig.OAuthBearer (a token validator)")
		}
	}
	if cfg.FailedAuthDelay < 0 {
		return fmt.Errorf("gateway: SASLConfig.FailedAuthDelay %v is negative", cfg.FailedAuthDelay)
	}
	return nil
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
	stepped   bool      // the exchange in progress has had its first token
	failed    bool      // the exchange in progress already counted as a failure
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
		if s.cfg.SASL.OAuthBearer != nil {
			return append(slices.Clip(DefaultMechanisms), MechOAuthBearer)
		}
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
	case !slices.Contains(s.mechanisms(), req.Mechanism) || newMech(req.Mechanism, nil, nil) == nil:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		cs.closing = fmt.Errorf("gateway: client asked for SASL mechanism %q; enabled: %v", req.Mechanism, s.mechanisms())
		return resp, nil
	case cs.authed && req.Mechanism != cs.mechName:
		resp.ErrorCode = kerr.UnsupportedSaslMechanism.Code
		cs.closing = fmt.Errorf("gateway: SASL mechanism change not allowed during re-authentication (%s to %s)", cs.mechName, req.Mechanism)
		return resp, nil
	}
	cs.mech, cs.mechName = newMech(req.Mechanism, s.creds, s.cfg.SASL.OAuthBearer), req.Mechanism
	cs.stepped, cs.failed = false, false
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
	if done && !cs.expiry.IsZero() {
		// Kafka sends 0 for a credential already past its expiry (accepted within the clock
		// skew): the session is over at the next request other than a re-authentication.
		resp.SessionLifetimeMillis = max(0, clock.Until(s.clock, cs.expiry).Milliseconds())
	}
	return resp, nil
}

// saslStep feeds one client token to the exchange in progress; when it completes, the
// connection is authenticated (or re-authenticated: same principal required).
func (s *Server) saslStep(ctx context.Context, cs *connState, token []byte) (challenge []byte, done bool, err error) {
	mech := cs.mech
	if !cs.stepped {
		// The first token of an exchange: a source locked out for failing too often is
		// refused here, before any credential is looked up.
		cs.stepped = true
		if ok, retry := s.throttle.allow(cs.host, s.clock.Now()); !ok {
			cs.mech = nil
			err := &authError{msg: fmt.Sprintf("Authentication failed: too many failed authentications from this address; retry in %v",
				retry.Round(time.Second))}
			s.saslFailDelay(ctx)
			return nil, false, err
		}
	}
	challenge, user, done, err := mech.step(ctx, token)
	if err == nil && done && cs.authed && "User:"+user != cs.principal {
		err = clientErr(fmt.Sprintf("Cannot change principals during re-authentication from %s: User:%s", cs.principal, user))
	}
	if rj, ok := mech.(interface{ rejected() bool }); ok && err == nil && rj.rejected() {
		// OAUTHBEARER refused the token (its error JSON goes out as a challenge): the
		// attempt has failed although the exchange waits for the client's ^A.
		s.saslFailed(cs, errors.New("token refused by the validator"))
	}
	if err != nil {
		cs.mech = nil
		s.saslFailed(cs, err)
		s.saslFailDelay(ctx)
		return nil, false, err
	}
	if !done {
		return challenge, false, nil
	}
	cs.mech, cs.raw = nil, false
	reauth := cs.authed
	cs.authed, cs.user, cs.principal = true, user, "User:"+user
	now := s.clock.Now()
	cs.expiry = time.Time{}
	if s.cfg.SASL.ReauthAfter > 0 {
		cs.expiry = now.Add(s.cfg.SASL.ReauthAfter)
	}
	if em, ok := mech.(interface{ sessionExpiry() time.Time }); ok {
		// A credential that expires (an OAuth token) ends the session when it does.
		if exp := em.sessionExpiry(); !exp.IsZero() && (cs.expiry.IsZero() || exp.Before(cs.expiry)) {
			cs.expiry = exp
		}
	}
	cs.setMax(s.cfg.MaxFrameBytes)
	s.log.Debug("gateway: SASL authenticated", "principal", cs.principal, "mechanism", cs.mechName, "reauthentication", reauth)
	if s.authHook != nil {
		s.authHook(cs.principal, reauth)
	}
	return challenge, true, nil
}

// saslFailed logs a failed exchange and counts it against the client's source (once per
// exchange).
func (s *Server) saslFailed(cs *connState, err error) {
	if cs.failed {
		return
	}
	cs.failed = true
	var detail error
	var ae *authError
	if errors.As(err, &ae) {
		detail = ae.detail
	}
	s.log.Info("gateway: SASL authentication failed", "mechanism", cs.mechName, "listener", cs.lis.proto.String(), "host", cs.host, "err", err, "detail", detail)
	locked, untracked := s.throttle.failed(cs.host, s.clock.Now())
	if locked {
		s.log.Warn("gateway: too many failed SASL authentications; source locked out (later failures from it are not logged one by one)", "host", cs.host)
	}
	if untracked {
		s.log.Warn("gateway: brute-force throttle table full; new failing sources are not throttled until entries expire")
	}
}

// saslFailDelay waits SASLConfig.FailedAuthDelay before a failure is answered (or until
// the server closes).
func (s *Server) saslFailDelay(ctx context.Context) {
	d := s.cfg.SASL.FailedAuthDelay
	if d <= 0 {
		return
	}
	t := s.clock.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C():
	case <-ctx.Done():
	case <-s.ctx.Done():
	}
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
