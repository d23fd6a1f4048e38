package gateway

import (
	"bytes"
	"context"
	"encoding/base64"
	"strconv"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/broker/brokerop"
	"github.com/meshkafka/meshkafka/internal/scramkey"
)

// plainConnState is the state of a connection on a PLAINTEXT listener.
func plainConnState() *connState {
	return &connState{lis: listenerInfo{proto: Plaintext}, principal: AnonymousPrincipal, authed: true, setMax: func(int) {}}
}

// fixedCreds serves one user, "alice" with password "alice-secret", for both mechanisms.
func fixedCreds(t testing.TB) credentials {
	var creds []brokerop.ScramCredential
	for _, m := range scramkey.Mechanisms {
		c, err := scramkey.New(m, "alice-secret", scramkey.MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		creds = append(creds, brokerop.ScramCredential{Mechanism: int8(m), Iterations: c.Iterations, Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey})
	}
	return func(_ context.Context, user string) ([]brokerop.ScramCredential, error) {
		if user != "alice" {
			return nil, errUnknownUser
		}
		return creds, nil
	}
}

// scramClient computes a client's messages (RFC 5802 §3) independently of the server code.
type scramClient struct {
	m                  scramkey.Mechanism
	user, pass, cnonce string
	first              string
}

func (c *scramClient) clientFirst() string {
	c.first = "n=" + c.user + ",r=" + c.cnonce
	return "n,," + c.first
}

func (c *scramClient) clientFinal(t testing.TB, serverFirst, echoNonce string) (final, wantVerifier string) {
	attrs := map[string]string{}
	for _, kv := range strings.Split(serverFirst, ",") {
		attrs[kv[:1]] = kv[2:]
	}
	salt, _ := base64.StdEncoding.DecodeString(attrs["s"])
	iters, _ := strconv.Atoi(attrs["i"])
	salted, err := scramkey.Salted(c.m, c.pass, salt, iters)
	if err != nil {
		t.Fatal(err)
	}
	h := c.m.Hash()
	clientKey := hmacOf(h, salted, []byte("Client Key"))
	sum := h()
	sum.Write(clientKey)
	wop := "c=biws,r=" + echoNonce + attrs["r"]
	auth := []byte(c.first + "," + serverFirst + "," + wop)
	sig := hmacOf(h, sum.Sum(nil), auth)
	for i := range sig {
		sig[i] ^= clientKey[i]
	}
	return wop + ",p=" + base64.StdEncoding.EncodeToString(sig),
		"v=" + base64.StdEncoding.EncodeToString(hmacOf(h, hmacOf(h, salted, []byte("Server Key")), auth))
}

// RFC 7677 §3, byte for byte: the server-first and server-final messages of the example.
func TestScramRFC7677Example(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted, _ := scramkey.Salted(scramkey.SHA256, "pencil", salt, 4096)
	c, _ := scramkey.FromSalted(scramkey.SHA256, salted, salt, 4096)
	creds := func(_ context.Context, user string) ([]brokerop.ScramCredential, error) {
		return []brokerop.ScramCredential{{Mechanism: 1, Iterations: 4096, Salt: c.Salt, StoredKey: c.StoredKey, ServerKey: c.ServerKey}}, nil
	}
	m := &scramMech{m: scramkey.SHA256, creds: creds, nonce: func() string { return "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0" }}
	sf, _, _, err := m.step(context.Background(), []byte("n,,n=user,r=rOprNGfwEbeRWgbNEkqO"))
	if err != nil || string(sf) != "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096" {
		t.Fatalf("server-first %q %v", sf, err)
	}
	v, user, done, err := m.step(context.Background(), []byte("c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="))
	if err != nil || !done || user != "user" || string(v) != "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=" {
		t.Fatalf("server-final %q user %q done %v err %v", v, user, done, err)
	}
}

// Whole exchanges: right password accepted (also with librdkafka's doubled nonce), wrong
// one, unknown user and a replay refused, both mechanisms.
func TestScramMechConversation(t *testing.T) {
	creds := fixedCreds(t)
	for _, name := range []string{MechScramSHA256, MechScramSHA512} {
		for _, tc := range []struct {
			user, pass, echo string
			ok               bool
		}{
			{"alice", "alice-secret", "", true},
			{"alice", "alice-secret", "cnonce-123", true}, // librdkafka: client nonce sent again in front
			{"alice", "wrong", "", false},
		} {
			mech := newMech(name, creds, nil)
			cl := &scramClient{m: scramkey.ByName(name), user: tc.user, pass: tc.pass, cnonce: "cnonce-123"}
			sfirst, _, done, err := mech.step(context.Background(), []byte(cl.clientFirst()))
			if err != nil || done {
				t.Fatalf("%s: client-first: %v done=%v", name, err, done)
			}
			final, verifier := cl.clientFinal(t, string(sfirst), tc.echo)
			sfinal, user, done, err := mech.step(context.Background(), []byte(final))
			if !tc.ok {
				if err == nil || err.Error() != failedMessage(name) {
					t.Fatalf("%s wrong password: err %v", name, err)
				}
				continue
			}
			if err != nil || !done || user != "alice" || string(sfinal) != verifier {
				t.Fatalf("%s: final %q (want %q) user %q done %v err %v", name, sfinal, verifier, user, done, err)
			}
			if _, _, _, err := mech.step(context.Background(), []byte(final)); err == nil {
				t.Fatalf("%s: a replayed final message was accepted", name)
			}
		}
	}
	// A tampered nonce is refused.
	mech := newMech(MechScramSHA256, creds, nil)
	cl := &scramClient{m: scramkey.SHA256, user: "alice", pass: "alice-secret", cnonce: "abc"}
	sfirst, _, _, _ := mech.step(context.Background(), []byte(cl.clientFirst()))
	final, _ := cl.clientFinal(t, strings.Replace(string(sfirst), "r=abc", "r=abd", 1), "")
	if _, _, _, err := mech.step(context.Background(), []byte(final)); err == nil {
		t.Fatal("tampered nonce accepted")
	}
	// Unknown user: the same message as a wrong password.
	if _, _, _, err := newMech(MechScramSHA256, creds, nil).step(context.Background(), []byte("n,,n=mallory,r=abc")); err == nil ||
		err.Error() != failedMessage(MechScramSHA256) {
		t.Fatalf("unknown user: %v", err)
	}
	// Channel binding and a foreign authorization id are refused.
	for _, first := range []string{"p=tls-unique,,n=alice,r=abc", "n,a=bob,n=alice,r=abc", "n,,n=al=41ice,r=abc", "n,,r=abc,n=alice"} {
		if _, _, _, err := newMech(MechScramSHA256, creds, nil).step(context.Background(), []byte(first)); err == nil {
			t.Fatalf("client-first %q accepted", first)
		}
	}
	if _, _, _, err := newMech(MechScramSHA256, creds, nil).step(context.Background(), []byte("n,a=alice,n=alice,r=abc")); err != nil {
		t.Fatalf("authzid equal to the user refused: %v", err)
	}
}

func TestPlainMech(t *testing.T) {
	creds := fixedCreds(t)
	for _, tc := range []struct {
		token string
		ok    bool
	}{
		{"\x00alice\x00alice-secret", true},
		{"alice\x00alice\x00alice-secret", true},
		{"bob\x00alice\x00alice-secret", false},
		{"\x00alice\x00wrong", false},
		{"\x00mallory\x00alice-secret", false},
		{"\x00alice", false},
		{"\x00\x00x", false},
		{"\x00alice\x00", false},
		{"\x00alice\x00alice-secret\x00", false},
	} {
		_, user, done, err := newMech(MechPlain, creds, nil).step(context.Background(), []byte(tc.token))
		if ok := err == nil && done && user == "alice"; ok != tc.ok {
			t.Errorf("token %q: user %q done %v err %v, want ok=%v", tc.token, user, done, err, tc.ok)
		}
	}
}

func FuzzParsePlain(f *testing.F) {
	f.Add([]byte("\x00alice\x00secret"))
	f.Add([]byte("a\x00a\x00b"))
	f.Add([]byte("\x00\x00"))
	f.Fuzz(func(t *testing.T, tok []byte) {
		u, p, err := ParsePlain(tok)
		if err != nil {
			return
		}
		if u == "" || p == "" || strings.Contains(u, "\x00") || strings.Contains(p, "\x00") {
			t.Fatalf("accepted %q: user %q password %q", tok, u, p)
		}
		if !bytes.HasSuffix(tok, []byte("\x00"+u+"\x00"+p)) {
			t.Fatalf("user/password %q/%q not the token's fields %q", u, p, tok)
		}
	})
}

func FuzzParseClientFirst(f *testing.F) {
	f.Add("n,,n=alice,r=abc")
	f.Add("n,a=al=2Cice,n=al=3Dice,r=x,ext=1")
	f.Add("y,,n=,r=")
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := ParseClientFirst(msg)
		if err != nil {
			return
		}
		if cf.User == "" || !printableNonce(cf.Nonce) || msg != cf.GS2+cf.Bare {
			t.Fatalf("%q parsed to %+v", msg, cf)
		}
	})
}

func FuzzParseClientFinal(f *testing.F) {
	f.Add("c=biws,r=abcdef,p=AAAA")
	f.Add("c=,r=,p=")
	f.Add("c=biws,r=x,ext=y,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=")
	f.Fuzz(func(t *testing.T, msg string) {
		cf, err := ParseClientFinal(msg)
		if err != nil {
			return
		}
		if len(cf.Proof) == 0 || !strings.HasPrefix(msg, cf.WithoutProof+",p=") {
			t.Fatalf("%q parsed to %+v", msg, cf)
		}
	})
}

// FuzzScramServer feeds arbitrary client-first and client-final messages to the server side
// of SCRAM: it must never panic, and never authenticate without the password.
func FuzzScramServer(f *testing.F) {
	f.Add([]byte("n,,n=alice,r=abc"), []byte("c=biws,r=abcdef,p=AAAA"))
	f.Add([]byte("n,a=alice,n=alice,r=x"), []byte("c=biws,r=x,p="))
	f.Add([]byte("y,,n=al=2Cice,r=x"), []byte(""))
	f.Add([]byte("p=tls-unique,,n=alice,r=x"), []byte("c=,r=,p=,x=y"))
	creds := fixedCreds(f)
	f.Fuzz(func(t *testing.T, first, final []byte) {
		for _, name := range []string{MechScramSHA256, MechScramSHA512} {
			m := newMech(name, creds, nil)
			sfirst, _, done, err := m.step(context.Background(), first)
			if err != nil {
				continue
			}
			if done || !bytes.HasPrefix(sfirst, []byte("r=")) {
				t.Fatalf("server-first %q done %v", sfirst, done)
			}
			if _, _, done, err := m.step(context.Background(), final); err == nil || done {
				t.Fatalf("final %q authenticated without the password (done %v err %v)", final, done, err)
			}
		}
	})
}

func FuzzParseListeners(f *testing.F) {
	f.Add("SASL_SSL://:9093,PLAINTEXT://:9092")
	f.Add("ssl://[::1]:0")
	f.Add("PLAINTEXT://host:99999")
	f.Fuzz(func(t *testing.T, s string) {
		ls, err := ParseListeners(s)
		if err != nil {
			return
		}
		var again []string
		for _, l := range ls {
			again = append(again, l.String())
		}
		ls2, err := ParseListeners(strings.Join(again, ","))
		if err != nil || len(ls2) != len(ls) {
			t.Fatalf("%q parsed to %v, which does not parse back: %v", s, ls, err)
		}
		for i := range ls {
			if ls[i] != ls2[i] {
				t.Fatalf("%q: %v != %v", s, ls[i], ls2[i])
			}
		}
	})
}
