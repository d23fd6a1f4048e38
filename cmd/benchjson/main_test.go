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

func TestScalingSeries(t *testing.T) {
	in := `pkg: example.com/x/kafka
BenchmarkScale/partitions=1000/impl=ours-2   	1	 5 ns/op	 50 records/s	 7 fsyncs/req
BenchmarkScale/partitions=4/impl=ours-2      	1	 5 ns/op	 100 records/s	 0 fsyncs/req
BenchmarkScale/partitions=4/impl=kfake-2     	1	 5 ns/op	 80 records/s
BenchmarkScale/partitions=10000/impl=ours-2  	1	 5 ns/op	 25 records/s	 9 fsyncs/req
BenchmarkOther/x=1-2                         	1	 5 ns/op	 1 records/s
`
	rep := parse(strings.NewReader(in), io.Discard)
	var recs, fsyncs *Series
	for _, s := range rep.Scaling {
		switch {
		case s.Name == "Scale" && s.Impl == "ours" && s.Metric == "records/s":
			recs = s
		case s.Name == "Scale" && s.Impl == "ours" && s.Metric == "fsyncs/req":
			fsyncs = s
		case s.Impl == "kfake":
			t.Fatalf("a one-point series was kept: %+v", s)
		}
	}
	if recs == nil || len(recs.Points) != 3 {
		t.Fatalf("records/s series = %+v", recs)
	}
	for i, want := range []struct {
		n   int64
		v   float64
		rel float64
	}{{4, 100, 1}, {1000, 50, 0.5}, {10000, 25, 0.25}} {
		p := recs.Points[i]
		if p.Partitions != want.n || p.Value != want.v || p.Relative == nil || *p.Relative != want.rel {
			t.Fatalf("point %d = %+v (relative %v), want %+v", i, p, p.Relative, want)
		}
	}
	if fsyncs == nil || fsyncs.Points[0].Relative != nil {
		t.Fatalf("a series starting at 0 has no relative figures: %+v", fsyncs)
	}
}
