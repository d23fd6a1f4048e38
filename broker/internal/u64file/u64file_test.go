package u64file

import (
	"bytes"
	"testing"
)

// FuzzDecode: Decode never panics, and what it accepts encodes back to the same bytes.
func FuzzDecode(f *testing.F) {
	f.Add(Encode("PI", 1000))
	f.Add([]byte("PI"))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := Decode(b, "PI", "test")
		if err != nil {
			return
		}
		if re := Encode("PI", v); !bytes.Equal(re, b) {
			t.Fatalf("decoded %d from %x, re-encoded %x", v, b, re)
		}
	})
}
