package main

import (
	"strings"
	"testing"
)

func TestUngroupImports(t *testing.T) {
	src := "package p\n\nimport (\n\t\"os\"\n\n\t// the clock\n\t\"time\"\n\tkgo \"github.com/twmb/franz-go/pkg/kgo\"\n)\n\nimport \"fmt\"\n\nfunc f() {}\n"
	want := "package p\n\n\nimport \"os\"\n\n\nimport \"time\"\nimport kgo \"github.com/twmb/franz-go/pkg/kgo\"\n\n\nimport \"fmt\"\n\nfunc f() {}\n"
	if got := string(ungroupImports([]byte(src))); got != want {
		t.Fatalf("got\n%q\nwant\n%q", got, want)
	}
	if n, m := strings.Count(src, "\n"), strings.Count(want, "\n"); n != m {
		t.Fatalf("%d lines became %d", n, m)
	}
	// A file without a grouped block is unchanged; so is a parenthesised block that is not
	// an import declaration.
	for _, s := range []string{"package p\n\nimport \"os\"\n", "package p\n\nconst (\n\ta = 1\n)\n"} {
		if got := string(ungroupImports([]byte(s))); got != s {
			t.Fatalf("%q rewritten to %q", s, got)
		}
	}
}
