// Command benchjson turns `go test -bench` output into the project's JSON benchmark report.
//
// Benchmarks follow the naming convention Benchmark<Area>/<case...>/impl=<name>: results that
// differ only in their impl= element are grouped, so our figure and the peer's (kfake, Rust iroh,
// a plain write+fsync loop, ...) sit side by side, and for every metric both report the report
// adds ours/peer ratios. Lines that are not benchmark results are passed to stderr unchanged so
// failures stay visible.
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

// Report is the whole output.
type Report struct {
	Groups []*Group `json:"benchmarks"`
	Failed bool     `json:"failed"`
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
	return rep
}

func main() {
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
