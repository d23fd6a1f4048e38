package main

import (
	"io"
	"strings"
	"testing"
)

func TestParseGroupsImplsAndRatios(t *testing.T) {
	in := `goos: linux
pkg: example.com/x/wal
BenchmarkWALAppend/1KiB/impl=ours-2         	     100	  10000 ns/op	 400.00 MB/s
BenchmarkWALAppend/1KiB/impl=plainfsync-2   	     100	  12000 ns/op	 500.00 MB/s
BenchmarkSolo-2 	 5	 7 ns/op	 3 records/s
PASS
`
	rep := parse(strings.NewReader(in), io.Discard)
	if rep.Failed {
		t.Fatal("report marked failed")
	}
	if len(rep.Groups) != 2 {
		t.Fatalf("got %d groups, want 2", len(rep.Groups))
	}
	g := rep.Groups[0]
	if g.Name != "WALAppend/1KiB" || g.Package != "example.com/x/wal" {
		t.Fatalf("group = %+v", g)
	}
	if got := g.Impls["plainfsync"]["MB/s"]; got != 500 {
		t.Fatalf("peer MB/s = %v", got)
	}
	if got := g.Ratios["plainfsync"]["MB/s"]; got != 0.8 {
		t.Fatalf("ratio = %v, want 0.8", got)
	}
	if rep.Groups[1].Impls["ours"]["records/s"] != 3 {
		t.Fatalf("solo group = %+v", rep.Groups[1])
	}
}

func TestParseMarksFailure(t *testing.T) {
	rep := parse(strings.NewReader("--- FAIL: BenchmarkX\nFAIL\n"), io.Discard)
	if !rep.Failed {
		t.Fatal("failure not detected")
	}
}
