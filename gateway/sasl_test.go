package gateway_test

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/broker"
	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/internal/clock"
	"github.com/meshkafka/meshkafka/internal/gatewaytest"
	"github.com/meshkafka/meshkafka/internal/kafkaclients"
	"github.com/meshkafka/meshkafka/wal"
)

// secBackend is the in-memory data backend with the broker's durable SCRAM credentials.
type secBackend struct {
	*gatewaytest.MemBackend
	*broker.Credentials
}

// secServer is a gateway with a PLAINTEXT, an SSL and a SASL_SSL and a SASL_PLAINTEXT
// listener, all at once.
type secServer struct {
	srv       *gateway.Server
	addr      map[gateway.SecurityProtocol]string
	certs     *gatewaytest.Certs
	credsPath string

	mu         sync.Mutex
	principals []string
	reauths    int
}

func (s *secServer) authed() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.principals)
}

func startSecure(t *testing.T, clientAuth string, sasl gateway.SASLConfig) *secServer {
	t.Helper()
	dir := t.TempDir()
	certs := gatewaytest.NewCerts(t, dir, "alice")
	credsPath := filepath.Join(dir, "scram.credentials")
	creds, err := broker.OpenCredentials(&broker.FileCredentialStore{FS: wal.OSFS(), Path: credsPath})
	if err != nil {
		t.Fatal(err)
	}
	tcfg, _, err := gateway.NewTLSConfig(gateway.TLSOptions{CertFile: certs.Cert, KeyFile: certs.Key, ClientCAFile: certs.CA, ClientAuth: clientAuth})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := gateway.NewServer(gateway.Config{Backend: secBackend{gatewaytest.NewMem(1), creds}, AdvertisedHost: "127.0.0.1",
		Logger: slog.New(slog.DiscardHandler), TLS: tcfg, SASL: sasl})
	if err != nil {
		t.Fatal(err)
	}
	s := &secServer{srv: srv, addr: map[gateway.SecurityProtocol]string{}, certs: certs, credsPath: credsPath}
	gateway.SetAuthHook(srv, func(p string, reauth bool) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.principals = append(s.principals, p)
		if reauth {
			s.reauths++
		}
	})
	var wg sync.WaitGroup
	for _, p := range []gateway.SecurityProtocol{gateway.Plaintext, gateway.SSL, gateway.SASLPlaintext, gateway.SASLSSL} {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		s.addr[p] = ln.Addr().String()
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.ServeListener(ln, p, 0); !errors.Is(err, gateway.ErrServerClosed) {
				t.Errorf("%s: Serve returned %v", p, err)
			}
		}()
	}
	t.Cleanup(func() { srv.Close(); wg.Wait() })
	return s
}

func (s *secServer) clientTLS(t *testing.T, withCert bool) *tls.Config {
	cfg := s.certs.ClientTLS()
	if withCert {
		c, err := tls.LoadX509KeyPair(s.certs.ClientCert, s.certs.ClientKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Certificates = []tls.Certificate{c}
	}
	return cfg
}

// addUser creates a user with both SCRAM mechanisms through AlterUserScramCredentials (API 51)
// on the PLAINTEXT listener, as an admin would with kadm.
func (s *secServer) addUser(t *testing.T, user, pass string) {
	t.Helper()
	adm := kadm.NewClient(kafkaclients.KgoClient(t, s.addr[gateway.Plaintext]))
	res, err := adm.AlterUserSCRAMs(context.Background(), nil, []kadm.UpsertSCRAM{
		{User: user, Mechanism: kadm.ScramSha256, Iterations: 4096, Password: pass},
		{User: user, Mechanism: kadm.ScramSha512, Iterations: 8192, Password: pass},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.Error(); err != nil {
		t.Fatal(err)
	}
}

func produceConsume(t *testing.T, addr, topic string, opts ...kgo.Opt) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	prod := kafkaclients.KgoClient(t, addr, append(opts, kgo.AllowAutoTopicCreation(), kgo.RecordRetries(2), kgo.RequestRetries(2))...)
	recs := makeRecords(topic, 5)
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return err
	}
	cons := kafkaclients.KgoClient(t, addr, append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	var got []*kgo.Record
	for len(got) < len(recs) {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			return err
		}
		got = append(got, fs.Records()...)
	}
	for i := range recs {
		if !sameRecord(recs[i], got[i]) {
			t.Fatalf("record %d: got %+v want %+v", i, got[i], recs[i])
		}
	}
	return nil
}

// kgo produces and consumes over SASL_SSL and SASL_PLAINTEXT with every mechanism; the
// clients stay on their listener (Metadata advertises its port); the principal is the user.
func TestSASLKgo(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{})
	s.addUser(t, "alice", "alice-secret")
	mechs := map[string]sasl.Mechanism{
		"SCRAM-SHA-256": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism(),
		"SCRAM-SHA-512": scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism(),
		"PLAIN":         plain.Auth{User: "alice", Pass: "alice-secret"}.AsMechanism(),
	}
	for name, m := range mechs {
		for _, p := range []gateway.SecurityProtocol{gateway.SASLSSL, gateway.SASLPlaintext} {
			opts := []kgo.Opt{kgo.SASL(m)}
			if p.TLS() {
				opts = append(opts, kgo.DialTLSConfig(s.clientTLS(t, false)))
			}
			topic := strings.ToLower(strings.ReplaceAll(name+"-"+p.String(), "_", "-"))
			if err := produceConsume(t, s.addr[p], topic, opts...); err != nil {
				t.Fatalf("%s over %s: %v", name, p, err)
			}
		}
	}
	if got := s.authed(); len(got) == 0 || slices.ContainsFunc(got, func(p string) bool { return p != "User:alice" }) {
		t.Fatalf("principals %v, want only User:alice", got)
	}
}

func TestSASLWrongPasswordKgo(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{})
	s.addUser(t, "alice", "alice-secret")
	for _, m := range []sasl.Mechanism{
		scram.Auth{User: "alice", Pass: "nope"}.AsSha256Mechanism(),
		scram.Auth{User: "mallory", Pass: "alice-secret"}.AsSha512Mechanism(),
		plain.Auth{User: "alice", Pass: "nope"}.AsMechanism(),
	} {
		cl := kafkaclients.KgoClient(t, s.addr[gateway.SASLSSL], kgo.SASL(m), kgo.DialTLSConfig(s.clientTLS(t, false)), kgo.RequestRetries(0))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := cl.Ping(ctx)
		cancel()
		if !errors.Is(err, kerr.SaslAuthenticationFailed) {
			t.Fatalf("%s: ping error %v, want SASL_AUTHENTICATION_FAILED", m.Name(), err)
		}
	}
	if got := s.authed(); len(got) != 0 {
		t.Fatalf("authenticated with a wrong password: %v", got)
	}
}

// SSL with required client certificates: the principal is the certificate's subject; a
// client without a certificate is refused in the handshake.
func TestSSLMutualTLSKgo(t *testing.T) {
	s := startSecure(t, "required", gateway.SASLConfig{})
	if err := produceConsume(t, s.addr[gateway.SSL], "mtls", kgo.DialTLSConfig(s.clientTLS(t, true))); err != nil {
		t.Fatal(err)
	}
	want := "User:" + s.certs.ClientSubject
	if got := s.authed(); len(got) == 0 || got[0] != want || want != "User:CN=alice,O=meshkafka" {
		t.Fatalf("principals %v, want %s", got, want)
	}
	c, err := tls.Dial("tcp", s.addr[gateway.SSL], s.clientTLS(t, false))
	if err == nil {
		// TLS 1.3: the refusal arrives with the first read.
		c.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = c.Write(encode(kmsg.NewPtrApiVersionsRequest(), 1))
		if err == nil {
			_, err = c.Read(make([]byte, 1))
		}
		c.Close()
	}
	if err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

// A plaintext client on a TLS port and a TLS client on a plaintext port are closed.
func TestProtocolMismatchCloses(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{})
	r := dial(t, s.addr[gateway.SSL])
	r.write(encode(kmsg.NewPtrApiVersionsRequest(), 1))
	r.expectClosed()
	c, err := tls.Dial("tcp", s.addr[gateway.Plaintext], s.clientTLS(t, false))
	if err == nil {
		c.Close()
		t.Fatal("TLS handshake with a PLAINTEXT listener succeeded")
	}
}

func handshake(r *rawConn, v int16, mech string, corr int32) *kmsg.SASLHandshakeResponse {
	req := kmsg.NewPtrSASLHandshakeRequest()
	req.Version, req.Mechanism = v, mech
	return r.roundTrip(req, corr).(*kmsg.SASLHandshakeResponse)
}

func authenticate(r *rawConn, v int16, token string, corr int32) *kmsg.SASLAuthenticateResponse {
	req := kmsg.NewPtrSASLAuthenticateRequest()
	req.Version, req.SASLAuthBytes = v, []byte(token)
	return r.roundTrip(req, corr).(*kmsg.SASLAuthenticateResponse)
}

func metadataReq() *kmsg.MetadataRequest {
	req := kmsg.NewPtrMetadataRequest()
	req.Version = 9
	return req
}

// The SASL state rules, byte by byte on SASL_PLAINTEXT.
func TestSASLStateRules(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{Mechanisms: []string{"SCRAM-SHA-512", "PLAIN"}})
	s.addUser(t, "alice", "alice-secret")
	addr := s.addr[gateway.SASLPlaintext]

	t.Run("request before authentication closes", func(t *testing.T) {
		r := dial(t, addr)
		r.roundTrip(kmsg.NewPtrApiVersionsRequest(), 1) // allowed
		r.write(encode(metadataReq(), 2))
		r.expectClosed()
	})
	t.Run("SaslAuthenticate before SaslHandshake closes", func(t *testing.T) {
		r := dial(t, addr)
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 1, []byte("\x00alice\x00alice-secret")
		r.write(encode(req, 1))
		r.expectClosed()
	})
	t.Run("unsupported mechanism lists the enabled ones and closes", func(t *testing.T) {
		r := dial(t, addr)
		resp := handshake(r, 1, "SCRAM-SHA-256", 1)
		if resp.ErrorCode != kerr.UnsupportedSaslMechanism.Code || !slices.Equal(resp.SupportedMechanisms, []string{"SCRAM-SHA-512", "PLAIN"}) {
			t.Fatalf("handshake answer %+v", resp)
		}
		r.expectClosed()
	})
	t.Run("wrong password: SASL_AUTHENTICATION_FAILED with a message, then closed", func(t *testing.T) {
		r := dial(t, addr)
		if resp := handshake(r, 1, "PLAIN", 1); resp.ErrorCode != 0 {
			t.Fatalf("handshake: %+v", resp)
		}
		resp := authenticate(r, 2, "\x00alice\x00wrong", 2)
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil || !strings.Contains(*resp.ErrorMessage, "Invalid username or password") {
			t.Fatalf("authenticate answer %+v", resp)
		}
		r.expectClosed()
	})
	t.Run("oversized token before authentication closes", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "PLAIN", 1)
		req := kmsg.NewPtrSASLAuthenticateRequest()
		req.Version, req.SASLAuthBytes = 1, make([]byte, 600<<10)
		r.write(encode(req, 2))
		r.expectClosed()
	})
	t.Run("v1 success, then served; second SaslAuthenticate is ILLEGAL_SASL_STATE", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 1, "PLAIN", 1)
		if resp := authenticate(r, 1, "\x00alice\x00alice-secret", 2); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 0 {
			t.Fatalf("authenticate: %+v", resp)
		}
		if m := r.roundTrip(metadataReq(), 3).(*kmsg.MetadataResponse); len(m.Brokers) != 1 {
			t.Fatalf("metadata after authentication: %+v", m)
		}
		if resp := authenticate(r, 1, "\x00alice\x00alice-secret", 4); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("second authenticate: %+v", resp)
		}
	})
	t.Run("v0 handshake: raw token framing", func(t *testing.T) {
		r := dial(t, addr)
		if resp := handshake(r, 0, "PLAIN", 1); resp.ErrorCode != 0 {
			t.Fatalf("handshake v0: %+v", resp)
		}
		tok := []byte("\x00alice\x00alice-secret")
		r.write(binary.BigEndian.AppendUint32(nil, uint32(len(tok))))
		r.write(tok)
		if frame, err := r.readFrame(); err != nil || len(frame) != 0 {
			t.Fatalf("raw answer %q %v, want an empty token", frame, err)
		}
		if m := r.roundTrip(metadataReq(), 2).(*kmsg.MetadataResponse); len(m.Brokers) != 1 {
			t.Fatalf("metadata after v0 authentication: %+v", m)
		}
	})
	t.Run("v0 handshake: wrong raw token closes", func(t *testing.T) {
		r := dial(t, addr)
		handshake(r, 0, "PLAIN", 1)
		tok := []byte("\x00alice\x00wrong")
		r.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...))
		r.expectClosed()
	})
	t.Run("SaslHandshake on a PLAINTEXT listener is ILLEGAL_SASL_STATE", func(t *testing.T) {
		r := dial(t, s.addr[gateway.Plaintext])
		if resp := handshake(r, 1, "PLAIN", 1); resp.ErrorCode != kerr.IllegalSaslState.Code {
			t.Fatalf("handshake on PLAINTEXT: %+v", resp)
		}
	})
}

// Re-authentication (KIP-368) on an injected clock: the session lifetime is announced, a
// request after expiry closes the connection, and re-authenticating in time extends it;
// changing the principal on re-authentication is refused.
func TestSASLReauthentication(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	s := startSecure(t, "none", gateway.SASLConfig{ReauthAfter: time.Minute, Clock: clk})
	s.addUser(t, "alice", "alice-secret")
	s.addUser(t, "bob", "bob-secret")
	addr := s.addr[gateway.SASLPlaintext]
	login := func(r *rawConn, user, pass string, corr int32) *kmsg.SASLAuthenticateResponse {
		if resp := handshake(r, 1, "PLAIN", corr); resp.ErrorCode != 0 {
			t.Fatalf("handshake: %+v", resp)
		}
		return authenticate(r, 2, "\x00"+user+"\x00"+pass, corr+1)
	}

	expired := dial(t, addr)
	if resp := login(expired, "alice", "alice-secret", 1); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 60_000 {
		t.Fatalf("session lifetime %+v, want 60000 ms", resp)
	}
	renewed := dial(t, addr)
	login(renewed, "alice", "alice-secret", 1)
	changer := dial(t, addr)
	login(changer, "alice", "alice-secret", 1)

	clk.Advance(50 * time.Second)
	renewed.roundTrip(metadataReq(), 3)
	if resp := login(renewed, "alice", "alice-secret", 4); resp.ErrorCode != 0 || resp.SessionLifetimeMillis != 60_000 {
		t.Fatalf("re-authentication: %+v", resp)
	}
	if resp := login(changer, "bob", "bob-secret", 4); resp.ErrorCode != kerr.SaslAuthenticationFailed.Code ||
		!strings.Contains(*resp.ErrorMessage, "Cannot change principals") {
		t.Fatalf("principal change on re-authentication: %+v", resp)
	}
	changer.expectClosed()

	clk.Advance(20 * time.Second) // 70 s: the first session is over, the renewed one is not
	expired.write(encode(metadataReq(), 3))
	expired.expectClosed()
	renewed.roundTrip(metadataReq(), 6)
	clk.Advance(50 * time.Second) // 120 s: the renewed session (from 50 s) is over too
	renewed.write(encode(metadataReq(), 7))
	renewed.expectClosed()

	// Past the end, starting a re-authentication does not open the door to other requests.
	late := dial(t, addr)
	login(late, "alice", "alice-secret", 1)
	clk.Advance(61 * time.Second)
	if resp := handshake(late, 1, "PLAIN", 3); resp.ErrorCode != 0 {
		t.Fatalf("late re-authentication handshake: %+v", resp)
	}
	late.write(encode(metadataReq(), 4))
	late.expectClosed()
}

// DescribeUserScramCredentials / AlterUserScramCredentials through kadm: mechanisms and
// iterations only, Kafka's errors, durable in the broker's file (never the password).
func TestScramCredentialAPIs(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{})
	s.addUser(t, "alice", "alice-secret")
	adm := kadm.NewClient(kafkaclients.KgoClient(t, s.addr[gateway.Plaintext]))
	ctx := context.Background()
	d, err := adm.DescribeUserSCRAMs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	a := d["alice"]
	if a.Err != nil || len(a.CredInfos) != 2 || a.CredInfos[0].Mechanism != kadm.ScramSha256 || a.CredInfos[0].Iterations != 4096 ||
		a.CredInfos[1].Mechanism != kadm.ScramSha512 || a.CredInfos[1].Iterations != 8192 {
		t.Fatalf("describe: %+v", d)
	}
	d, err = adm.DescribeUserSCRAMs(ctx, "nobody")
	if err != nil || !errors.Is(d["nobody"].Err, kerr.ResourceNotFound) {
		t.Fatalf("describe unknown user: %+v %v", d, err)
	}
	// kadm checks iterations itself, so the bad upsertions go raw.
	areq := kmsg.NewPtrAlterUserSCRAMCredentialsRequest()
	del := kmsg.NewAlterUserSCRAMCredentialsRequestDeletion()
	del.Name, del.Mechanism = "ghost", 1
	areq.Deletions = append(areq.Deletions, del)
	for _, u := range []struct {
		name       string
		mech       int8
		iterations int32
	}{{"weak", 1, 100}, {"odd", 3, 4096}, {"twice", 1, 4096}, {"twice", 1, 4096}} {
		up := kmsg.NewAlterUserSCRAMCredentialsRequestUpsertion()
		up.Name, up.Mechanism, up.Iterations, up.Salt, up.SaltedPassword = u.name, u.mech, u.iterations, []byte("salt"), make([]byte, 32)
		areq.Upsertions = append(areq.Upsertions, up)
	}
	aresp, err := areq.RequestWith(ctx, kafkaclients.KgoClient(t, s.addr[gateway.Plaintext]))
	if err != nil {
		t.Fatal(err)
	}
	codes := map[string]int16{}
	for _, r := range aresp.Results {
		codes[r.User] = r.ErrorCode
		if r.ErrorMessage == nil || *r.ErrorMessage == "" {
			t.Errorf("user %s: no error message", r.User)
		}
	}
	if want := map[string]int16{"ghost": kerr.ResourceNotFound.Code, "weak": kerr.UnacceptableCredential.Code,
		"odd": kerr.UnsupportedSaslMechanism.Code, "twice": kerr.DuplicateResource.Code}; !maps.Equal(codes, want) {
		t.Fatalf("alter errors %v, want %v", codes, want)
	}
	if d, err := adm.DescribeUserSCRAMs(ctx); err != nil || len(d) != 1 {
		t.Fatalf("failed alterations stored something: %+v %v", d, err)
	}
	if res, err := adm.AlterUserSCRAMs(ctx, []kadm.DeleteSCRAM{{User: "alice", Mechanism: kadm.ScramSha512}}, nil); err != nil || res.Error() != nil {
		t.Fatalf("delete: %+v %v", res, err)
	}
	// The SHA-512 credential is gone: SCRAM-SHA-512 fails, SCRAM-SHA-256 still works.
	cl := kafkaclients.KgoClient(t, s.addr[gateway.SASLPlaintext], kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()), kgo.RequestRetries(0))
	if err := cl.Ping(ctx); !errors.Is(err, kerr.SaslAuthenticationFailed) {
		t.Fatalf("SCRAM-SHA-512 after deletion: %v", err)
	}
	if err := produceConsume(t, s.addr[gateway.SASLPlaintext], "after-delete", kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(s.credsPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), "alice-secret") || !strings.Contains(string(raw), "StoredKey") {
		t.Fatalf("credentials file holds the password or no keys:\n%s", raw)
	}
	if fi, _ := os.Stat(s.credsPath); fi.Mode().Perm() != 0o600 {
		t.Fatalf("credentials file mode %v", fi.Mode().Perm())
	}
}

// A rotated certificate is served to the next connection without a restart; a broken
// rotation keeps the previous certificate.
func TestTLSCertificateReload(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{})
	serial := func() string {
		t.Helper()
		c, err := tls.Dial("tcp", s.addr[gateway.SSL], s.clientTLS(t, false))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	first := serial()
	next := s.certs.RotateServer(t).String()
	if got := serial(); got != next || got == first {
		t.Fatalf("after rotation serial %s, want %s (was %s)", got, next, first)
	}
	// A half-written key: the previous certificate stays.
	if err := os.WriteFile(s.certs.Key, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := serial(); got != next {
		t.Fatalf("broken rotation: serial %s, want the previous %s", got, next)
	}
	last := s.certs.RotateServer(t).String()
	if got := serial(); got != last {
		t.Fatalf("after the repaired rotation serial %s, want %s", got, last)
	}
}

// kgo re-authenticates (KIP-368) on its own connections: with a 1 ms session lifetime it
// re-authenticates before every request (its pessimism makes the expiry already past), so
// ten sequential produces are ten re-authentications on the server, all accepted. The
// server's clock is fake and never moves, so no session ends on the server side.
func TestSASLReauthenticationKgo(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	s := startSecure(t, "none", gateway.SASLConfig{ReauthAfter: time.Millisecond, Clock: clk})
	s.addUser(t, "alice", "alice-secret")
	cl := kafkaclients.KgoClient(t, s.addr[gateway.SASLSSL], kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha512Mechanism()),
		kgo.DialTLSConfig(s.clientTLS(t, false)), kgo.AllowAutoTopicCreation())
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte("first")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	before := len(s.authed())
	for i := range 10 {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: "reauth", Value: []byte{byte(i)}}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	got := s.authed()
	s.mu.Lock()
	reauths := s.reauths
	s.mu.Unlock()
	if len(got)-before < 10 || reauths < 10 {
		t.Fatalf("%d authentications (%d re-authentications) for 10 produces with a 1 ms session, want ≥ 10 re-authentications", len(got)-before, reauths)
	}
	if slices.ContainsFunc(got, func(p string) bool { return p != "User:alice" }) {
		t.Fatalf("principals %v", got)
	}
}
