package gateway

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/xdg-go/scram"

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

// A whole SCRAM exchange against xdg-go's client (a second, independent client after kgo's
// in the end-to-end tests): right password accepted, wrong one refused, both mechanisms.
func TestScramMechConversation(t *testing.T) {
	creds := fixedCreds(t)
	for _, m := range []struct {
		name string
		h    scram.HashGeneratorFcn
	}{{MechScramSHA256, scram.SHA256}, {MechScramSHA512, scram.SHA512}} {
		for _, pass := range []string{"alice-secret", "wrong"} {
			cl, err := m.h.NewClient("alice", pass, "")
			if err != nil {
				t.Fatal(err)
			}
			conv := cl.NewConversation()
			mech := newMech(m.name, creds)
			first, _ := conv.Step("")
			sfirst, _, done, err := mech.step(context.Background(), []byte(first))
			if err != nil || done {
				t.Fatalf("%s: client-first: %v done=%v", m.name, err, done)
			}
			final, err := conv.Step(string(sfirst))
			if err != nil {
				t.Fatal(err)
			}
			sfinal, user, done, err := mech.step(context.Background(), []byte(final))
			if pass != "alice-secret" {
				if err == nil || !strings.Contains(err.Error(), "invalid credentials with SASL mechanism "+m.name) {
					t.Fatalf("%s wrong password: err %v", m.name, err)
				}
				continue
			}
			if err != nil || !done || user != "alice" {
				t.Fatalf("%s: final: user %q done %v err %v", m.name, user, done, err)
			}
			if _, err := conv.Step(string(sfinal)); err != nil || !conv.Valid() {
				t.Fatalf("%s: client rejects the server signature: %v", m.name, err)
			}
			if _, _, _, err := mech.step(context.Background(), []byte(final)); err == nil {
				t.Fatalf("%s: a replayed final message was accepted", m.name)
			}
		}
	}
	// Unknown user: the same message as a wrong password.
	cl, _ := scram.SHA256.NewClient("mallory", "x", "")
	first, _ := cl.NewConversation().Step("")
	if _, _, _, err := newMech(MechScramSHA256, creds).step(context.Background(), []byte(first)); err == nil ||
		err.Error() != failedMessage(MechScramSHA256) {
		t.Fatalf("unknown user: %v", err)
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
		_, user, done, err := newMech(MechPlain, creds).step(context.Background(), []byte(tc.token))
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
			m := newMech(name, creds)
			sfirst, _, done, err := m.step(context.Background(), first)
			if err != nil {
				continue
			}
			if done {
				t.Fatal("done after client-first")
			}
			if !bytes.HasPrefix(sfirst, []byte("r=")) {
				t.Fatalf("server-first %q", sfirst)
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
