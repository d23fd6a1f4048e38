package key_test

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshkafka/meshkafka/mesh/key"
)

// RFC 8032 test vector 1; the base32 forms were computed independently
// (Python base64.b32encode, lowercased, padding stripped).
const (
	rfcSeed   = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
	rfcPubHex = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
	rfcPubB32 = "25njqamcweflpvkl73j4szahhihoc4xt3ktcgjnpaingr5yhkena"
	rfcShort  = "25njqamcweflpvkl"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestKnownVector(t *testing.T) {
	sk, err := key.SecretKeyFromBytes(mustHex(t, rfcSeed))
	if err != nil {
		t.Fatal(err)
	}
	pk := sk.Public()
	if got := pk.Hex(); got != rfcPubHex {
		t.Fatalf("public hex = %s, want %s", got, rfcPubHex)
	}
	if got := pk.String(); got != rfcPubB32 {
		t.Fatalf("String = %s, want %s", got, rfcPubB32)
	}
	if got := pk.ShortString(); got != rfcShort {
		t.Fatalf("ShortString = %s, want %s", got, rfcShort)
	}
	if !bytes.Equal(sk.Bytes(), mustHex(t, rfcSeed)) {
		t.Fatal("Bytes does not return the seed")
	}
	// RFC 8032 test 1 signature of the empty message.
	wantSig := "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
	if got := hex.EncodeToString(sk.Sign(nil)); got != wantSig {
		t.Fatalf("Sign = %s, want %s", got, wantSig)
	}
}

func TestParsePublicKey(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"base32 lower", rfcPubB32, true},
		{"base32 upper", strings.ToUpper(rfcPubB32), true},
		{"hex", rfcPubHex, true},
		{"hex upper", strings.ToUpper(rfcPubHex), true},
		{"empty", "", false},
		{"short", rfcPubB32[:51], false},
		{"long", rfcPubB32 + "a", false},
		{"padded", rfcPubB32 + "====", false},
		{"bad base32 char", "1" + rfcPubB32[1:], false},
		{"trailing bits", rfcPubB32[:51] + "b", false},
		{"bad hex", "zz" + rfcPubHex[2:], false},
		// y = 2 is not the y coordinate of any curve point.
		{"not on curve", "02" + strings.Repeat("00", 31), false},
		// y = 3 is.
		{"on curve", "03" + strings.Repeat("00", 31), true},
		{"zero key (y=0 is on the curve)", strings.Repeat("00", 32), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pk, err := key.ParsePublicKey(tt.in)
			if (err == nil) != tt.ok {
				t.Fatalf("ParsePublicKey(%q) err = %v, want ok=%v", tt.in, err, tt.ok)
			}
			if tt.ok && tt.name != "on curve" && !strings.Contains(tt.name, "zero") && pk.Hex() != rfcPubHex {
				t.Fatalf("parsed %s, want %s", pk.Hex(), rfcPubHex)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for range 50 {
		sk := key.GenerateSecretKey()
		pk := sk.Public()
		got, err := key.ParsePublicKey(pk.String())
		if err != nil || got != pk {
			t.Fatalf("round trip %s: %v %v", pk, got, err)
		}
		got, err = key.ParsePublicKey(pk.Hex())
		if err != nil || got != pk {
			t.Fatalf("hex round trip %s: %v", pk, err)
		}
		b := pk.Bytes()
		got, err = key.PublicKeyFromBytes(b[:])
		if err != nil || got != pk {
			t.Fatalf("bytes round trip: %v", err)
		}
		sk2, err := key.ParseSecretKey(sk.String())
		if err != nil || sk2.Public() != pk {
			t.Fatalf("secret round trip: %v", err)
		}
		msg := []byte("hello")
		sig := sk.Sign(msg)
		if !pk.Verify(msg, sig) {
			t.Fatal("valid signature rejected")
		}
		sig[0] ^= 1
		if pk.Verify(msg, sig) {
			t.Fatal("corrupt signature accepted")
		}
		if pk.Verify(msg, sig[:10]) {
			t.Fatal("short signature accepted")
		}
		var txt key.PublicKey
		if err := txt.UnmarshalText([]byte(pk.String())); err != nil || txt != pk {
			t.Fatal("text unmarshal")
		}
	}
}

func TestBadLengths(t *testing.T) {
	if _, err := key.SecretKeyFromBytes(make([]byte, 31)); err == nil {
		t.Fatal("31-byte seed accepted")
	}
	if _, err := key.PublicKeyFromBytes(make([]byte, 33)); err == nil {
		t.Fatal("33-byte public key accepted")
	}
}

func TestLoadOrCreate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "identity")
	k1, err := key.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, want 0600", st.Mode().Perm())
	}
	k2, err := key.LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if k1.Public() != k2.Public() {
		t.Fatal("reload gave a different key")
	}
	left, _ := filepath.Glob(filepath.Join(dir, "sub", ".identity-*"))
	if len(left) != 0 {
		t.Fatalf("temp files left behind: %v", left)
	}
}

func TestIdentityFileFormats(t *testing.T) {
	dir := t.TempDir()
	sk := key.GenerateSecretKey()
	ossh, err := sk.MarshalOpenSSH()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(ossh), "-----BEGIN OPENSSH PRIVATE KEY-----") {
		t.Fatalf("not OpenSSH: %q", ossh[:40])
	}
	for name, content := range map[string]string{
		"openssh": string(ossh),
		"base32":  sk.String() + "\n",
		"hex":     "  " + hex.EncodeToString(sk.Bytes()) + "\n",
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := key.LoadOrCreate(p)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got.Public() != sk.Public() {
			t.Fatalf("%s: loaded another key", name)
		}
	}
	// What LoadOrCreate writes is OpenSSH.
	p := filepath.Join(dir, "new")
	k, err := key.LoadOrCreate(p)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(p)
	got, err := key.ParseSecretKeyFile(b)
	if err != nil || got.Public() != k.Public() || !strings.HasPrefix(string(b), "-----BEGIN OPENSSH") {
		t.Fatalf("written file %q: %v", b, err)
	}
}

func TestLoadOrCreateCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "identity")
	for _, garbage := range [][]byte{
		[]byte("this is not a key\n"),
		[]byte("-----BEGIN OPENSSH PRIVATE KEY-----\ngarbage\n-----END OPENSSH PRIVATE KEY-----\n"),
		{},
	} {
		if err := os.WriteFile(path, garbage, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := key.LoadOrCreate(path)
		if err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("err = %v, want a corrupt-file error", err)
		}
		got, _ := os.ReadFile(path)
		if !bytes.Equal(got, garbage) {
			t.Fatal("corrupt identity file was modified")
		}
	}
}

func FuzzParsePublicKey(f *testing.F) {
	f.Add(rfcPubB32)
	f.Add(rfcPubHex)
	f.Add(strings.ToUpper(rfcPubB32))
	f.Add("")
	f.Add(strings.Repeat("z", 52))
	f.Fuzz(func(t *testing.T, s string) {
		pk, err := key.ParsePublicKey(s)
		if err != nil {
			return
		}
		// Whatever parses must print in the canonical form and parse back.
		again, err := key.ParsePublicKey(pk.String())
		if err != nil || again != pk {
			t.Fatalf("canonical form %q does not round-trip: %v", pk.String(), err)
		}
		if len(pk.String()) != 52 || strings.ToLower(pk.String()) != pk.String() {
			t.Fatalf("bad canonical form %q", pk.String())
		}
	})
}

func FuzzParseSecretKeyFile(f *testing.F) {
	sk := key.GenerateSecretKey()
	ossh, _ := sk.MarshalOpenSSH()
	f.Add(ossh)
	f.Add([]byte(sk.String()))
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\n\n-----END OPENSSH PRIVATE KEY-----"))
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := key.ParseSecretKeyFile(b)
		if err != nil {
			return
		}
		// Whatever loads must survive our own file format.
		out, err := k.MarshalOpenSSH()
		if err != nil {
			t.Fatal(err)
		}
		back, err := key.ParseSecretKeyFile(out)
		if err != nil || back.Public() != k.Public() {
			t.Fatalf("re-encoded key does not load back: %v", err)
		}
	})
}
