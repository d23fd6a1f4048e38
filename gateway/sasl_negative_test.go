package gateway_test

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/meshkafka/meshkafka/gateway"
	"github.com/meshkafka/meshkafka/kafkawire"
)

// The negative cases not covered by TestSASLStateRules, TestProtocolMismatchCloses,
// TestSASLWrongPasswordKgo and the OAUTHBEARER tests, on SASL_SSL (TLS) and SASL_PLAINTEXT:
// each gets Kafka's error or a closed connection, unknown users cannot be told from wrong
// passwords, and afterwards a client on the same server still produces and consumes.
func TestSASLNegativeCases(t *testing.T) {
	s := startSecure(t, "none", gateway.SASLConfig{})
	s.addUser(t, "alice", "alice-secret")
	dialTLS := func(t *testing.T) *rawConn {
		c, err := tls.Dial("tcp", s.addr[gateway.SASLSSL], s.clientTLS(t, false))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(10 * time.Second))
		return &rawConn{t: t, c: c, fr: kafkawire.NewFrameReader(c, 0)}
	}
	dials := map[string]func(t *testing.T) *rawConn{
		"SASL_SSL":       dialTLS,
		"SASL_PLAINTEXT": func(t *testing.T) *rawConn { return dial(t, s.addr[gateway.SASLPlaintext]) },
	}
	failed := func(t *testing.T, resp *kmsg.SASLAuthenticateResponse) string {
		t.Helper()
		if resp.ErrorCode != kerr.SaslAuthenticationFailed.Code || resp.ErrorMessage == nil {
			t.Fatalf("answer %+v, want SASL_AUTHENTICATION_FAILED with a message", resp)
		}
		return *resp.ErrorMessage
	}
	for lname, dialer := range dials {
		t.Run(lname, func(t *testing.T) {
			t.Run("PLAIN: unknown user and wrong password get one message", func(t *testing.T) {
				var msgs []string
				for _, tok := range []string{"\x00mallory\x00alice-secret", "\x00alice\x00wrong"} {
					r := dialer(t)
					handshake(r, 1, "PLAIN", 1)
					msgs = append(msgs, failed(t, authenticate(r, 2, tok, 2)))
					r.expectClosed()
				}
				if msgs[0] != msgs[1] {
					t.Fatalf("unknown user %q, wrong password %q", msgs[0], msgs[1])
				}
			})
			t.Run("SCRAM: unknown user and wrong proof get Kafka's message", func(t *testing.T) {
				want := "Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"
				r := dialer(t)
				handshake(r, 1, "SCRAM-SHA-512", 1)
				if msg := failed(t, authenticate(r, 2, "n,,n=mallory,r=clientnonce", 2)); msg != want {
					t.Fatalf("unknown user: %q", msg)
				}
				r.expectClosed()

				r = dialer(t)
				handshake(r, 1, "SCRAM-SHA-512", 1)
				first := authenticate(r, 2, "n,,n=alice,r=clientnonce", 2)
				if first.ErrorCode != 0 {
					t.Fatalf("client-first: %+v", first)
				}
				nonce, _, _ := strings.Cut(strings.TrimPrefix(string(first.SASLAuthBytes), "r="), ",")
				final := "c=biws,r=" + nonce + ",p=" + base64.StdEncoding.EncodeToString(make([]byte, 64))
				if msg := failed(t, authenticate(r, 2, final, 3)); msg != want {
					t.Fatalf("wrong proof: %q", msg)
				}
				r.expectClosed()
			})
			t.Run("raw SASL token before any handshake closes", func(t *testing.T) {
				r := dialer(t)
				tok := []byte("\x00alice\x00alice-secret")
				r.write(append(binary.BigEndian.AppendUint32(nil, uint32(len(tok))), tok...))
				r.expectClosed()
			})
			t.Run("SaslAuthenticate before SaslHandshake closes", func(t *testing.T) {
				r := dialer(t)
				r.write(encode(&kmsg.SASLAuthenticateRequest{Version: 2, SASLAuthBytes: []byte("n,,n=alice,r=x")}, 1))
				r.expectClosed()
			})
			t.Run("second SaslHandshake during an exchange is ILLEGAL_SASL_STATE, closed", func(t *testing.T) {
				r := dialer(t)
				handshake(r, 1, "SCRAM-SHA-256", 1)
				if resp := handshake(r, 1, "SCRAM-SHA-256", 2); resp.ErrorCode != kerr.IllegalSaslState.Code {
					t.Fatalf("second handshake: %+v", resp)
				}
				r.expectClosed()
			})
			t.Run("oversized SASL tokens close", func(t *testing.T) {
				r := dialer(t) // in SaslAuthenticate
				handshake(r, 1, "SCRAM-SHA-256", 1)
				// The server closes as soon as it has read the length, so the write may fail.
				if _, err := r.c.Write(encode(&kmsg.SASLAuthenticateRequest{Version: 1, SASLAuthBytes: make([]byte, 513<<10)}, 2)); err == nil {
					r.expectClosed()
				}

				r = dialer(t) // a raw token after SaslHandshake v0: only its length is read
				handshake(r, 0, "PLAIN", 1)
				r.write(binary.BigEndian.AppendUint32(nil, 100<<20))
				r.expectClosed()

				r = dialer(t) // a huge frame before anything
				r.write(binary.BigEndian.AppendUint32(nil, 1<<30))
				r.expectClosed()
			})
		})
	}
	t.Run("TLS client to SASL_PLAINTEXT, plaintext client to SASL_SSL", func(t *testing.T) {
		c, err := tls.Dial("tcp", s.addr[gateway.SASLPlaintext], s.clientTLS(t, false))
		if err == nil {
			c.Close()
			t.Fatal("TLS handshake with a SASL_PLAINTEXT listener succeeded")
		}
		r := dial(t, s.addr[gateway.SASLSSL])
		r.write(encode(kmsg.NewPtrSASLHandshakeRequest(), 1))
		r.expectClosed()
	})
	// Nothing else broke: a SCRAM client still produces and consumes over SASL_SSL.
	if err := produceConsume(t, s.addr[gateway.SASLSSL], "after-negatives", kgo.DialTLSConfig(s.clientTLS(t, false)),
		kgo.SASL(scram.Auth{User: "alice", Pass: "alice-secret"}.AsSha256Mechanism())); err != nil {
		t.Fatal(err)
	}
}
