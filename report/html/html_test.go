package html_test

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"gonum.org/v1/plot"

	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/report/html"
)

// sample is a small report with every section: pruned and untouched
// tensors, fidelity, a passing and a failing gate, a three-point sweep.
func sample() *report.Report {
	nz := func(n int64) *int64 { return &n }
	pass, fail := true, false
	best := 0.5
	return &report.Report{
		Schema: report.Schema, Tool: "lmsparse test", Model: "m", Output: "o",
		Tensors: []report.Tensor{
			{Name: "model.embed_tokens.weight", DType: "F32", Shape: []int64{4, 2}, Parameters: 8, Nonzeros: nz(8), BytesBefore: 32, BytesAfter: 32},
			{Name: "model.layers.0.mlp.up_proj.weight", Pruned: true, Encoding: "csr", DType: "F32", Shape: []int64{4, 4}, Parameters: 16, Nonzeros: nz(8), Sparsity: 0.5, BytesBefore: 64, BytesAfter: 60},
			{Name: "model.layers.10.mlp.up_proj.weight", Pruned: true, Encoding: "dense", DType: "F32", Shape: []int64{4, 4}, Parameters: 16, Nonzeros: nz(4), Sparsity: 0.75, BytesBefore: 64, BytesAfter: 64},
			{Name: "model.layers.2.mlp.up_proj.weight", Pruned: true, Encoding: "dense", DType: "F32", Shape: []int64{4, 4}, Parameters: 16, Nonzeros: nz(12), Sparsity: 0.25, BytesBefore: 64, BytesAfter: 64},
		},
		Totals: report.Totals{Totals: manifest.Totals{Tensors: 4, PrunedTensors: 3, Parameters: 56, Nonzeros: 32, BytesBefore: 224, BytesAfter: 220, Ratio: 224.0 / 220}},
		Fid:    &report.Fidelity{Text: "t.txt", PPL: 7, BasePPL: 6, PPLRatio: 7.0 / 6, KLMean: 0.1, Top1: 0.9},
		Gates:  []report.Gate{{Name: "max_kl", Op: "<=", Threshold: 0.2, Value: 0.1, Passed: true}, {Name: "min_top1", Op: ">=", Threshold: 0.95, Value: 0.9, Passed: false}},
		Sweep:  []report.Point{{Sparsity: 0.3, PPL: 6.5, KLMean: 0.05, Passed: &pass}, {Sparsity: 0.5, PPL: 7, KLMean: 0.1, Passed: &pass}, {Sparsity: 0.7, PPL: 20, KLMean: 1, Passed: &fail}},
		Best:   &best,
	}
}

func TestHTMLSelfContained(t *testing.T) {
	h, err := html.Render(sample())
	if err != nil {
		t.Fatal(err)
	}
	s := string(h)
	if n := strings.Count(s, "<svg"); n != 5 {
		t.Errorf("%d inline SVG charts, want 5 (sparsity, bytes, ppl, KL and top-1 curves)", n)
	}
	for _, bad := range []string{"<script", " src=", "<link", "url(http", "@import"} {
		if strings.Contains(s, bad) {
			t.Errorf("page contains %q: it must be self-contained", bad)
		}
	}
	for _, want := range []string{`id="headline"`, "Sparsity per layer", "Perplexity vs sparsity", `class="fail">FAIL`} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	h2, _ := html.Render(sample())
	if !bytes.Equal(h, h2) {
		t.Error("rendering twice gives different pages")
	}
}

// TestCharts: the standalone charts are the page's, with their ids; a
// sweep of one point draws no curves.
func TestCharts(t *testing.T) {
	r := sample()
	cs, err := html.Charts(r)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := html.Render(r)
	var ids []string
	for _, c := range cs {
		ids = append(ids, c.ID)
		if !bytes.HasPrefix(c.SVG, []byte("<svg")) || !bytes.Contains(page, c.SVG) {
			t.Errorf("chart %s is not the page's inline SVG", c.ID)
		}
	}
	if got := strings.Join(ids, ","); got != "layer-sparsity,layer-bytes,sweep-ppl,sweep-kl,sweep-top1" {
		t.Errorf("charts %s", got)
	}
	r.Sweep = r.Sweep[:1]
	if cs, _ := html.Charts(r); len(cs) != 2 {
		t.Errorf("%d charts with a one-point sweep, want 2", len(cs))
	}
}

// TestRecoveryChart: a recovery adds its loss curve, shown in the
// Recovery section beside the before/after table.
func TestRecoveryChart(t *testing.T) {
	r := sample()
	r.Recovery = &report.Recovery{Steps: 3, Batch: 2, Ctx: 32, Optimizer: "adamw", LR: 0.001, Distill: 1,
		Data: manifest.TrainingData{Source: "self", Windows: 4}, Loss: []float64{2, 1.5, 1.25}, Before: &report.Fidelity{PPL: 66, BasePPL: 6, PPLRatio: 11}}
	cs, err := html.Charts(r)
	if err != nil {
		t.Fatal(err)
	}
	if last := cs[len(cs)-1]; last.ID != "recover-loss" || !bytes.Contains(last.SVG, []byte("Recovery loss")) {
		t.Errorf("last chart %s", last.ID)
	}
	h, err := html.Render(r)
	if err != nil {
		t.Fatal(err)
	}
	s := string(h)
	if n := strings.Count(s, "<svg"); n != 6 {
		t.Errorf("%d inline SVG charts, want 6", n)
	}
	rec, charts := strings.Index(s, "<h2>Recovery</h2>"), strings.Index(s, "<h2>Charts</h2>")
	if rec < 0 || !strings.Contains(s[rec:charts], `id="recover-loss"><svg`) || !strings.Contains(s[rec:charts], `<table id="recovery">`) {
		t.Error("the Recovery section lacks its table or loss chart")
	}
	r.Recovery.Loss = r.Recovery.Loss[:1] // one step still draws
	if _, err := html.Render(r); err != nil {
		t.Errorf("one step: %v", err)
	}
}

// TestHTMLInChromium loads the page in headless Chromium (Debian's
// chromium package; skipped when it is absent) and checks the rendered
// DOM: the headline, the tables and the four charts.
func TestHTMLInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("skipping: chromium not installed (apt-get install chromium)")
	}
	h, err := html.Render(sample())
	if err != nil {
		t.Fatal(err)
	}
	page := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(page, h, 0o644); err != nil {
		t.Fatal(err)
	}
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
	dom, err := exec.Command(chromium, append(flags, "--dump-dom", "file://"+page)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	s := string(dom)
	for _, want := range []string{"lmsparse: m is", "gates failed: min_top1", `id="layer-sparsity"`, `id="layer-bytes"`, `id="sweep-ppl"`, `id="sweep-kl"`, `id="sweep-top1"`,
		`id="layers"`, `id="tensors"`, "Highest sparsity passing every gate"} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if n := strings.Count(s, "<svg"); n != 5 {
		t.Errorf("rendered page has %d SVG charts, want 5", n)
	}
}

// methodReport is a report whose sweep compares three methods, with
// perplexities from lo up (×step per sparsity).
func methodReport(lo, step float64) *report.Report {
	r := sample()
	r.Recipe = map[string]any{"prune": map[string]any{"method": "wanda", "sparsity": 0.5}}
	r.Fid.BasePPL = lo * 0.99
	r.Sweep = nil
	for i, s := range []float64{0.3, 0.5, 0.7} {
		for j, m := range []string{"magnitude", "wanda", "sparsegpt"} {
			ppl := lo * math.Pow(step, float64(i)) * (1 + 0.05*float64(2-j))
			r.Sweep = append(r.Sweep, report.Point{Sparsity: s, Method: m, PPL: ppl, PPLRatio: ppl / r.Fid.BasePPL, KLMean: 0.1 * float64(i+j)})
		}
	}
	return r
}

// text returns the strings of an SVG's text elements.
func text(svg []byte) []string {
	var out []string
	parts := strings.Split(string(svg), "</text>")
	for _, part := range parts[:len(parts)-1] {
		out = append(out, part[strings.LastIndex(part, ">")+1:])
	}
	return out
}

// TestSweepChartMethods: the sweep charts draw a legend entry per method
// (and the original's perplexity), and the perplexity axis has numbers
// whether the values sit inside one decade (6.19–9.11: linear) or span
// several (log, labelled 1-2-5).
func TestSweepChartMethods(t *testing.T) {
	ppl := func(p report.Point) float64 { return p.PPL }
	for _, tt := range []struct {
		lo, step float64
		log      bool
		labels   []string
	}{
		{6.19, 1.2, false, nil},
		{6.19, 8, true, []string{"10", "20", "50", "100", "200"}},
	} {
		r := methodReport(tt.lo, tt.step)
		name := fmt.Sprintf("%.3g–%.3g", r.Sweep[0].PPL, r.Sweep[len(r.Sweep)-3].PPL)
		cs, err := html.Charts(r)
		if err != nil {
			t.Fatal(err)
		}
		var pplSVG, klSVG []byte
		for _, c := range cs {
			switch c.ID {
			case "sweep-ppl":
				pplSVG = c.SVG
			case "sweep-kl":
				klSVG = c.SVG
			}
		}
		got := text(pplSVG)
		for _, w := range []string{"magnitude", "wanda", "sparsegpt", "original (dense)"} {
			if !slices.Contains(got, w) {
				t.Errorf("%s: perplexity chart lacks the legend entry %q: %q", name, w, got)
			}
			if w != "original (dense)" && !slices.Contains(text(klSVG), w) {
				t.Errorf("KL chart lacks the legend entry %q", w)
			}
		}
		p, err := html.SweepChart(r, html.SweepMetric{Title: "t", YLabel: "perplexity", Value: ppl, Base: r.Fid.BasePPL, Gate: math.NaN(), LogY: true})
		if err != nil {
			t.Fatal(err)
		}
		if _, isLog := p.Y.Scale.(plot.LogScale); isLog != tt.log || strings.Contains(p.Y.Label.Text, "log") != tt.log {
			t.Errorf("%s: log axis %v (label %q), want %v", name, isLog, p.Y.Label.Text, tt.log)
		}
		var labels []string
		for _, tk := range p.Y.Tick.Marker.Ticks(p.Y.Min, p.Y.Max) {
			if tk.Label != "" && tk.Value >= p.Y.Min && tk.Value <= p.Y.Max {
				labels = append(labels, tk.Label)
				if !slices.Contains(got, tk.Label) {
					t.Errorf("%s: y label %q not in the SVG", name, tk.Label)
				}
			}
		}
		if len(labels) < 2 || (tt.labels != nil && (len(labels) < len(tt.labels) || !slices.Equal(labels[:len(tt.labels)], tt.labels))) {
			t.Errorf("%s: y tick labels %q, want at least 2 (%q)", name, labels, tt.labels)
		}
	}
	// Inside one decade Ticks125 labels every digit rather than none.
	var labels []string
	for _, tk := range (html.Ticks125{}).Ticks(6.19, 9.11) {
		labels = append(labels, tk.Label)
	}
	if !slices.Equal(labels, []string{"7", "8", "9"}) {
		t.Errorf("Ticks125 on 6.19–9.11: %q", labels)
	}
}

// TestSweepChartGates: each sweep chart draws its gate's threshold, marks
// the points that fail a gate and the run's own sparsity; a chart whose
// metric has no gate draws no gate line.
func TestSweepChartGates(t *testing.T) {
	r := methodReport(6.19, 1.5)
	r.Gates = []report.Gate{{Name: "max_ppl_ratio", Op: "<=", Threshold: 1.2}, {Name: "min_top1", Op: ">=", Threshold: 0.9}}
	pass, fail := true, false
	for i := range r.Sweep {
		r.Sweep[i].Top1 = 1 - r.Sweep[i].Sparsity/2
		r.Sweep[i].Passed = &pass
		if r.Sweep[i].Sparsity > 0.5 {
			r.Sweep[i].Passed = &fail
		}
	}
	cs, err := html.Charts(r)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{
		"sweep-ppl":  {"gate: ≤ 1.2× original", "fails a gate", "this run (50%)", "original (dense)"},
		"sweep-kl":   {"fails a gate", "this run (50%)"},
		"sweep-top1": {"gate: ≥ 90%", "fails a gate", "this run (50%)"},
	}
	for _, c := range cs {
		w, ok := want[c.ID]
		if !ok {
			continue
		}
		delete(want, c.ID)
		got := text(c.SVG)
		for _, s := range w {
			if !slices.Contains(got, s) {
				t.Errorf("%s lacks %q: %q", c.ID, s, got)
			}
		}
		if c.ID == "sweep-kl" && slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "gate") }) {
			t.Errorf("the KL chart draws a gate the run does not have: %q", got)
		}
	}
	if len(want) > 0 {
		t.Errorf("charts missing: %v", want)
	}
}
