package kafkapipe

import (
	"bytes"
	"strings"
	"testing"
)

func TestPreamble(t *testing.T) {
	var b bytes.Buffer
	if err := WritePreamble(&b, "127.0.0.1:9092"); err != nil {
		t.Fatal(err)
	}
	if got := b.Bytes(); !bytes.Equal(got[:3], []byte{0, 0, 14}) {
		t.Fatalf("header % x", got[:3])
	}
	b.WriteString("kafka bytes")
	adv, err := ReadPreamble(&b)
	if err != nil || adv != "127.0.0.1:9092" || b.String() != "kafka bytes" {
		t.Fatalf("%q %v, rest %q", adv, err, b.String())
	}
	for _, bad := range []string{"", strings.Repeat("h", 1025), "\xff:1"} {
		if err := WritePreamble(&bytes.Buffer{}, bad); err == nil {
			t.Errorf("WritePreamble(%q) accepted", bad)
		}
	}
	for _, bad := range [][]byte{{1, 0, 1, 'x'}, {0, 0, 0}, {0, 0, 5, 'a', 'b'}, {0, 0, 4, 'h', 'o', 's', 't'}, {0, 4, 1}} {
		if _, err := ReadPreamble(bytes.NewReader(bad)); err == nil {
			t.Errorf("ReadPreamble(% x) accepted", bad)
		}
	}
}

func FuzzReadPreamble(f *testing.F) {
	var b bytes.Buffer
	_ = WritePreamble(&b, "[::1]:9092")
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 1, ':'})
	f.Fuzz(func(t *testing.T, p []byte) {
		adv, err := ReadPreamble(bytes.NewReader(p))
		if err != nil {
			return
		}
		var out bytes.Buffer
		if err := WritePreamble(&out, adv); err != nil {
			t.Fatalf("accepted %q does not write back: %v", adv, err)
		}
		if !bytes.HasPrefix(p, out.Bytes()) {
			t.Fatalf("accepted % x re-encodes as % x", p, out.Bytes())
		}
	})
}
