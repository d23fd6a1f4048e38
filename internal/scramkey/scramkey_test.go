package scramkey

import (
	"encoding/base64"
	"encoding/hex"
	"testing"
)

// RFC 7677 §3: user "user", password "pencil", salt W22ZaJ0SNY7soEsUEjb6gQ==, 4096 iterations;
// the server signature in the example is derived from this ServerKey. The StoredKey and
// ServerKey below are computed independently from the RFC's salted password.
func TestRFC7677Vector(t *testing.T) {
	salt, _ := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	salted, err := Salted(SHA256, "pencil", salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := hex.EncodeToString(salted), "c4a49510323ab4f952cac1fa99441939e78ea74d6be81ddf7096e87513dc615d"; got != want {
		t.Fatalf("salted password %s, want %s", got, want)
	}
	c, err := FromSalted(SHA256, salted, salt, 4096)
	if err != nil {
		t.Fatal(err)
	}
	if !Check(c, "pencil") || Check(c, "pencil2") || Check(c, "") {
		t.Fatal("Check does not tell the right password from wrong ones")
	}
}

func TestNewAndBounds(t *testing.T) {
	for _, m := range Mechanisms {
		c, err := New(m, "s3cret", MinIterations)
		if err != nil {
			t.Fatal(err)
		}
		if len(c.Salt) != 32 || len(c.StoredKey) != m.Hash()().Size() || !Check(c, "s3cret") || Check(c, "S3cret") {
			t.Fatalf("%v: bad credential %+v", m, c)
		}
		if ByName(m.String()) != m {
			t.Fatalf("ByName(%q) != %v", m.String(), m)
		}
	}
	if _, err := New(SHA256, "x", 100); err == nil {
		t.Fatal("100 iterations accepted")
	}
	if _, err := New(Unknown, "x", 4096); err == nil {
		t.Fatal("unknown mechanism accepted")
	}
}
