package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
)

// cmdPlot draws press → offer latency (p50 and p99, log scale) against offered load
// (log scale) for every system in a results file (`loadgen run -json`), as SVG.
func cmdPlot(args []string) error {
	fs := flag.NewFlagSet("plot", flag.ContinueOnError)
	in := fs.String("in", "", "results, one JSON object per line (loadgen run -json)")
	out := fs.String("out", "", "the SVG file to write")
	title := fs.String("title", "Press → offer latency against offered load (500 buttons, 200 phones, one Mosquitto)", "title")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return errors.New("plot: -in and -out are required")
	}
	f, err := os.Open(*in)
	if err != nil {
		return err
	}
	defer f.Close()
	series := map[string][]loadResult{}
	var labels []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var r loadResult
		if json.Unmarshal(sc.Bytes(), &r) != nil || r.Lat.N == 0 || r.OfferedRate <= 0 {
			continue // verdict lines, blind runs
		}
		if _, ok := series[r.Label]; !ok {
			labels = append(labels, r.Label)
		}
		series[r.Label] = append(series[r.Label], r)
	}
	if err := sc.Err(); err != nil {
		return err
	}
	if len(series) == 0 {
		return fmt.Errorf("plot: no gated runs with latencies in %s", *in)
	}
	return os.WriteFile(*out, []byte(svgPlot(*title, labels, series)), 0o644)
}

func svgPlot(title string, labels []string, series map[string][]loadResult) string {
	const w, h, left, right, top, bottom = 820.0, 500.0, 80.0, 190.0, 50.0, 60.0
	xmin, xmax, ymin, ymax := math.Inf(1), math.Inf(-1), math.Inf(1), math.Inf(-1)
	for _, rs := range series {
		for _, r := range rs {
			xmin, xmax = math.Min(xmin, r.OfferedRate), math.Max(xmax, r.OfferedRate)
			ymin, ymax = math.Min(ymin, math.Max(r.Lat.P50, 0.1)), math.Max(ymax, r.Lat.P99)
		}
	}
	lx0, lx1 := math.Floor(math.Log10(xmin)), math.Ceil(math.Log10(xmax))
	ly0, ly1 := math.Floor(math.Log10(ymin)), math.Ceil(math.Log10(ymax))
	if lx1 == lx0 {
		lx1++
	}
	if ly1 == ly0 {
		ly1++
	}
	px := func(x float64) float64 { return left + (math.Log10(x)-lx0)/(lx1-lx0)*(w-left-right) }
	py := func(y float64) float64 {
		return h - bottom - (math.Log10(math.Max(y, 0.1))-ly0)/(ly1-ly0)*(h-top-bottom)
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" viewBox="0 0 %.0f %.0f" font-family="sans-serif" font-size="12">`+"\n", w, h, w, h)
	fmt.Fprintf(&b, `<rect width="100%%" height="100%%" fill="white"/>`+"\n")
	fmt.Fprintf(&b, `<text x="%.0f" y="24" font-size="14" font-weight="bold">%s</text>`+"\n", left, esc(title))
	// Grid and axes: decades, with 2 and 5 between.
	for e := lx0; e <= lx1; e++ {
		for _, m := range []float64{1, 2, 5} {
			x := m * math.Pow(10, e)
			if math.Log10(x) > lx1+1e-9 {
				break
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.0f" x2="%.1f" y2="%.0f" stroke="#ddd"/>`+"\n", px(x), top, px(x), h-bottom)
			fmt.Fprintf(&b, `<text x="%.1f" y="%.0f" text-anchor="middle">%s</text>`+"\n", px(x), h-bottom+16, num(x))
		}
	}
	for e := ly0; e <= ly1; e++ {
		for _, m := range []float64{1, 2, 5} {
			y := m * math.Pow(10, e)
			if math.Log10(y) > ly1+1e-9 {
				break
			}
			fmt.Fprintf(&b, `<line x1="%.0f" y1="%.1f" x2="%.0f" y2="%.1f" stroke="#ddd"/>`+"\n", left, py(y), w-right, py(y))
			fmt.Fprintf(&b, `<text x="%.0f" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, py(y)+4, num(y))
		}
	}
	fmt.Fprintf(&b, `<rect x="%.0f" y="%.0f" width="%.0f" height="%.0f" fill="none" stroke="#333"/>`+"\n", left, top, w-left-right, h-top-bottom)
	fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" text-anchor="middle">offered load, presses/s (each then cancelled: 2 MQTT messages)</text>`+"\n", left+(w-left-right)/2, h-18)
	fmt.Fprintf(&b, `<text transform="translate(20 %.0f) rotate(-90)" text-anchor="middle">press → offer on the phone, ms (log)</text>`+"\n", top+(h-top-bottom)/2)
	colors := []string{"#1f6fb4", "#d2531b", "#2a9d3f", "#8e44ad"}
	for i, l := range labels {
		rs := slices.Clone(series[l])
		slices.SortFunc(rs, func(a, b loadResult) int { return int(a.OfferedRate - b.OfferedRate) })
		c := colors[i%len(colors)]
		for _, q := range []struct {
			name string
			dash string
			v    func(loadResult) float64
		}{{"p50", "", func(r loadResult) float64 { return r.Lat.P50 }}, {"p99", ` stroke-dasharray="6 4"`, func(r loadResult) float64 { return r.Lat.P99 }}} {
			var pts []string
			for _, r := range rs {
				pts = append(pts, fmt.Sprintf("%.1f,%.1f", px(r.OfferedRate), py(q.v(r))))
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", px(r.OfferedRate), py(q.v(r)), c)
			}
			fmt.Fprintf(&b, `<polyline points="%s" fill="none" stroke="%s" stroke-width="2"%s/>`+"\n", strings.Join(pts, " "), c, q.dash)
		}
		ly := top + 20 + float64(i)*58
		fmt.Fprintf(&b, `<text x="%.0f" y="%.0f" font-weight="bold" fill="%s">%s</text>`+"\n", w-right+14, ly, c, esc(l))
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2"/><text x="%.0f" y="%.0f">p50</text>`+"\n", w-right+14, ly+14, w-right+44, ly+14, c, w-right+50, ly+18)
		fmt.Fprintf(&b, `<line x1="%.0f" y1="%.0f" x2="%.0f" y2="%.0f" stroke="%s" stroke-width="2" stroke-dasharray="6 4"/><text x="%.0f" y="%.0f">p99</text>`+"\n", w-right+14, ly+30, w-right+44, ly+30, c, w-right+50, ly+34)
	}
	b.WriteString("</svg>\n")
	return b.String()
}

func num(x float64) string {
	switch {
	case x >= 1000:
		return fmt.Sprintf("%gk", x/1000)
	default:
		return fmt.Sprintf("%g", x)
	}
}

func esc(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}
