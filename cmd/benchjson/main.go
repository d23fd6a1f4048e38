// Command benchjson turns `go test -bench` output into the project's JSON benchmark report.
//
// Benchmarks follow the naming convention Benchmark<Area>/<case...>/impl=<name>: results that
// differ only in their impl= element are grouped, so our figure and the peer's (kfake, Rust iroh,
// a plain write+fsync loop, ...) sit side by side, and for every metric both report the report
// adds ours/peer ratios. Lines that are not benchmark results are passed to stderr unchanged so
// failures stay visible.
//
// Benchmarks with a partitions=N element also get a scaling series: for each implementation
// and metric, the figure at every N of otherwise identical benchmarks, and each figure over
// the figure at the smallest N, so how a cost grows with the partition count reads off one
// entry (cmd/benchplot draws them).
//
// Usage: go test -run '^$' -bench . ./... | go run ./cmd/benchjson
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Group is one benchmark case with the figures of every implementation measured.
type Group struct {
	Name    string                        `json:"name"`
	Package string                        `json:"package,omitempty"`
	Impls   map[string]map[string]float64 `json:"impls"`
	// Ratios[peer][metric] = ours / peer, for every metric both have.
	Ratios map[string]map[string]float64 `json:"ratios_ours_over_peer,omitempty"`
}

// Series is how one implementation's metric of one benchmark varies with its partitions=N
// element.
type Series struct {
	Name   string `json:"name"` // the benchmark name with partitions=N taken out
	Impl   string `json:"impl"`
	Metric string `json:"metric"`
	// Points are (partitions, value) by increasing partitions; Relative is each value over
	// the value at the smallest partition count (absent where that is 0).
	Points []Point `json:"points"`
}

// Point is one figure of a Series.
type Point struct {
	Partitions int64    `json:"partitions"`
	Value      float64  `json:"value"`
	Relative   *float64 `json:"relative_to_fewest,omitempty"`
}

// Report is the whole output.
type Report struct {
	Groups  []*Group  `json:"benchmarks"`
	Scaling []*Series `json:"scaling,omitempty"`
	Failed  bool      `json:"failed"`
}

var procSuffix = regexp.MustCompile(`-\d+$`)

func parse(r io.Reader, passthrough io.Writer) *Report {
	groups := map[string]*Group{}
	var order []string
	rep := &Report{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimPrefix(line, "pkg: ")
		}
		if strings.HasPrefix(line, "FAIL") || strings.HasPrefix(line, "--- FAIL") || strings.HasPrefix(line, "panic:") {
			rep.Failed = true
		}
		f := strings.Fields(line)
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			fmt.Fprintln(passthrough, line)
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			fmt.Fprintln(passthrough, line)
			continue
		}
		name := procSuffix.ReplaceAllString(strings.TrimPrefix(f[0], "Benchmark"), "")
		impl := "ours"
		var parts []string
		for _, p := range strings.Split(name, "/") {
			if v, ok := strings.CutPrefix(p, "impl="); ok {
				impl = v
				continue
			}
			parts = append(parts, p)
		}
		key := strings.Join(parts, "/")
		g := groups[key]
		if g == nil {
			g = &Group{Name: key, Package: pkg, Impls: map[string]map[string]float64{}}
			groups[key] = g
			order = append(order, key)
		}
		m := map[string]float64{}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				break
			}
			m[f[i+1]] = v
		}
		g.Impls[impl] = m
	}
	for _, k := range order {
		g := groups[k]
		ours := g.Impls["ours"]
		for peer, pm := range g.Impls {
			if peer == "ours" || ours == nil {
				continue
			}
			for metric, pv := range pm {
				ov, ok := ours[metric]
				if !ok || pv == 0 {
					continue
				}
				if g.Ratios == nil {
					g.Ratios = map[string]map[string]float64{}
				}
				if g.Ratios[peer] == nil {
					g.Ratios[peer] = map[string]float64{}
				}
				g.Ratios[peer][metric] = ov / pv
			}
		}
		rep.Groups = append(rep.Groups, g)
	}
	sort.SliceStable(rep.Groups, func(i, j int) bool { return rep.Groups[i].Package < rep.Groups[j].Package })
	rep.Scaling = scaling(rep.Groups)
	return rep
}

// scaling builds the partitions=N series of the groups (see the package doc).
func scaling(groups []*Group) []*Series {
	series := map[string]*Series{}
	var order []string
	for _, g := range groups {
		var n int64 = -1
		var rest []string
		for _, p := range strings.Split(g.Name, "/") {
			if v, ok := strings.CutPrefix(p, "partitions="); ok {
				if x, err := strconv.ParseInt(v, 10, 64); err == nil {
					n = x
					continue
				}
			}
			rest = append(rest, p)
		}
		if n < 0 {
			continue
		}
		name := strings.Join(rest, "/")
		for impl, metrics := range g.Impls {
			for metric, v := range metrics {
				if metric == "ns/op" {
					continue
				}
				key := name + "\x00" + impl + "\x00" + metric
				s := series[key]
				if s == nil {
					s = &Series{Name: name, Impl: impl, Metric: metric}
					series[key] = s
					order = append(order, key)
				}
				s.Points = append(s.Points, Point{Partitions: n, Value: v})
			}
		}
	}
	sort.Strings(order)
	var out []*Series
	for _, k := range order {
		s := series[k]
		if len(s.Points) < 2 {
			continue
		}
		sort.Slice(s.Points, func(i, j int) bool { return s.Points[i].Partitions < s.Points[j].Partitions })
		if base := s.Points[0].Value; base != 0 {
			for i := range s.Points {
				r := s.Points[i].Value / base
				s.Points[i].Relative = &r
			}
		}
		out = append(out, s)
	}
	return out
}

func main() {
	if len(os.Args) > 1 {
		if os.Args[1] == "-h" || os.Args[1] == "-help" || os.Args[1] == "--help" {
			fmt.Println("benchjson: reads `go test -bench` output on stdin and prints it as JSON, each of our figures beside the peer's measured in the same run (see the package doc)\n\nusage: go test -run '^$' -bench . ./... | benchjson > bench.json")
			return
		}
		fmt.Fprintln(os.Stderr, "benchjson takes no arguments: it reads `go test -bench` output on stdin (see benchjson --help)")
		os.Exit(2)
	}
	rep := parse(os.Stdin, os.Stderr)
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if rep.Failed {
		os.Exit(1)
	}
}
