// Command benchplot draws the partition-scaling series of a benchjson report (bench.json) as
// one SVG a person can look at: one panel per benchmark and metric, the partition count on a
// logarithmic x axis, one line per implementation (ours, kfake, ...).
//
//	go tool task bench                  # writes bench.json
//	go run ./cmd/benchplot -in bench.json -out docs/scale.svg
//
// A panel's y axis is logarithmic when its values span more than a factor of 50 (and are all
// positive), linear from 0 otherwise. Panels come in the report's order; -metrics limits them
// to a comma-separated list of metric names.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strings"
)

// report is the part of cmd/benchjson's output this command reads.
type report struct {
	Scaling []series `json:"scaling"`
}

type series struct {
	Name   string  `json:"name"`
	Impl   string  `json:"impl"`
	Metric string  `json:"metric"`
	Points []point `json:"points"`
}

type point struct {
	Partitions int64   `json:"partitions"`
	Value      float64 `json:"value"`
}

// panel is one benchmark+metric with a line per implementation.
type panel struct {
	title string
	lines []series
}

func main() {
	in := flag.String("in", "bench.json", "benchjson report to read")
	out := flag.String("out", "docs/scale.svg", "SVG file to write")
	metrics := flag.String("metrics", "", "comma-separated metrics to draw (default: all)")
	flag.Usage = func() {
		fmt.Fprintln(flag.CommandLine.Output(), "benchplot: draws a benchjson report's scale benchmarks (ours beside the peer's) as an SVG line chart\n\nusage: benchplot [-in bench.json] [-out docs/scale.svg] [-metrics m1,m2]\n\nflags:")
		flag.PrintDefaults()
	}
	flag.Parse()
	f, err := os.Open(*in)
	if err != nil {
		fail(err)
	}
	defer f.Close()
	var rep report
	if err := json.NewDecoder(f).Decode(&rep); err != nil {
		fail(fmt.Errorf("%s: %w", *in, err))
	}
	var keep []string
	if *metrics != "" {
		keep = strings.Split(*metrics, ",")
	}
	panels := group(rep.Scaling, keep)
	if len(panels) == 0 {
		fail(fmt.Errorf("%s has no scaling series to draw", *in))
	}
	w, err := os.Create(*out)
	if err != nil {
		fail(err)
	}
	if err := render(w, panels); err != nil {
		w.Close()
		fail(err)
	}
	if err := w.Close(); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "benchplot:", err)
	os.Exit(1)
}

// group puts the series into panels by name and metric, keeping the first appearance order.
func group(ss []series, keep []string) []*panel {
	byKey := map[string]*panel{}
	var out []*panel
	for _, s := range ss {
		if len(keep) > 0 && !slices.Contains(keep, s.Metric) {
			continue
		}
		key := s.Name + " — " + s.Metric
		p := byKey[key]
		if p == nil {
			p = &panel{title: key}
			byKey[key] = p
			out = append(out, p)
		}
		p.lines = append(p.lines, s)
	}
	for _, p := range out {
		sort.Slice(p.lines, func(i, j int) bool { return implRank(p.lines[i].Impl) < implRank(p.lines[j].Impl) })
	}
	return out
}

// implRank puts ours first so it always gets the first colour.
func implRank(impl string) string {
	if impl == "ours" {
		return ""
	}
	return impl
}

var colours = []string{"#d62728", "#1f77b4", "#2ca02c", "#9467bd"}

const (
	panelW, panelH = 360, 240
	cols           = 3
	marginL        = 64
	marginR        = 16
	marginT        = 36
	marginB        = 40
)

// render writes the panels as one SVG.
func render(w io.Writer, panels []*panel) error {
	rows := (len(panels) + cols - 1) / cols
	width, height := cols*panelW, rows*panelH
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="11">`+"\n", width, height)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	for i, p := range panels {
		drawPanel(&b, p, float64((i%cols)*panelW), float64((i/cols)*panelH))
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func drawPanel(b *strings.Builder, p *panel, x0, y0 float64) {
	minX, maxX := math.Inf(1), math.Inf(-1)
	minY, maxY := math.Inf(1), math.Inf(-1)
	for _, s := range p.lines {
		for _, pt := range s.Points {
			minX, maxX = math.Min(minX, float64(pt.Partitions)), math.Max(maxX, float64(pt.Partitions))
			minY, maxY = math.Min(minY, pt.Value), math.Max(maxY, pt.Value)
		}
	}
	minX = math.Max(minX, 1)
	logX := func(v float64) float64 { return math.Log10(math.Max(v, 1)) }
	lx0, lx1 := logX(minX), logX(maxX)
	if lx1 == lx0 {
		lx1 = lx0 + 1
	}
	logY := minY > 0 && maxY/minY > 50
	var fy func(float64) float64
	var y0v, y1v float64
	if logY {
		y0v, y1v = math.Floor(math.Log10(minY)), math.Ceil(math.Log10(maxY))
		fy = func(v float64) float64 { return math.Log10(v) }
	} else {
		y0v, y1v = math.Min(0, minY), maxY*1.1
		if y1v == y0v {
			y1v = y0v + 1
		}
		fy = func(v float64) float64 { return v }
	}
	plotW, plotH := float64(panelW-marginL-marginR), float64(panelH-marginT-marginB)
	px := func(v float64) float64 { return x0 + marginL + (logX(v)-lx0)/(lx1-lx0)*plotW }
	py := func(v float64) float64 { return y0 + marginT + plotH - (fy(v)-y0v)/(y1v-y0v)*plotH }

	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-weight="bold">%s</text>`+"\n", x0+8, y0+16, html.EscapeString(p.title))
	fmt.Fprintf(b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#888"/>`+"\n", x0+marginL, y0+marginT, plotW, plotH)
	// x ticks at the partition counts measured
	ticks := map[int64]bool{}
	for _, s := range p.lines {
		for _, pt := range s.Points {
			ticks[pt.Partitions] = true
		}
	}
	for n := range ticks {
		x := px(float64(n))
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", x, y0+marginT, x, y0+marginT+plotH)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", x, y0+marginT+plotH+14, human(float64(n)))
	}
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#555">partitions</text>`+"\n", x0+marginL+plotW/2, y0+marginT+plotH+30)
	// y ticks: 5 linear steps or one per decade
	var yt []float64
	if logY {
		for e := y0v; e <= y1v; e++ {
			yt = append(yt, math.Pow(10, e))
		}
	} else {
		for i := 0; i <= 4; i++ {
			yt = append(yt, y0v+(y1v-y0v)*float64(i)/4)
		}
	}
	for _, v := range yt {
		y := py(v)
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#eee"/>`+"\n", x0+marginL, y, x0+marginL+plotW, y)
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" text-anchor="end">%s</text>`+"\n", x0+marginL-4, y+4, human(v))
	}
	for i, s := range p.lines {
		c := colours[i%len(colours)]
		var pts []string
		for _, pt := range s.Points {
			if logY && pt.Value <= 0 {
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(float64(pt.Partitions)), py(pt.Value)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", c, strings.Join(pts, " "))
		for _, xy := range pts {
			x, y, _ := strings.Cut(xy, ",")
			fmt.Fprintf(b, `<circle cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", x, y, c)
		}
		fmt.Fprintf(b, `<text x="%.1f" y="%.1f" fill="%s">%s</text>`+"\n", x0+marginL+8+float64(i)*70, y0+marginT+14, c, html.EscapeString(s.Impl))
	}
}

// human renders a number compactly: 1.5k, 20M, 0.25.
func human(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e9:
		return trim(v/1e9) + "G"
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string {
	s := fmt.Sprintf("%.2f", v)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}
