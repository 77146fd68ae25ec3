package html

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"slices"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/lmsparse/lmsparse/report"
)

// SVG charts, drawn with gonum.org/v1/plot.

// svg renders p as an inline SVG element (the XML prolog removed).
func svg(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	wt, err := p.WriterTo(w, h, "svg")
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return "", err
	}
	s := buf.String()
	if i := strings.Index(s, "<svg"); i > 0 {
		s = s[i:]
	}
	return template.HTML(s), nil
}

var (
	colorBefore = color.RGBA{R: 160, G: 160, B: 160, A: 255}
	colorAfter  = color.RGBA{R: 31, G: 119, B: 180, A: 255}
	colorKL     = color.RGBA{R: 214, G: 39, B: 40, A: 255}
)

// LayerSparsityChart draws the sparsity of every layer of r as bars.
func LayerSparsityChart(r *report.Report) (*plot.Plot, error) {
	layers := r.Layers()
	vals := make(plotter.Values, len(layers))
	names := make([]string, len(layers))
	for i, l := range layers {
		vals[i] = 100 * l.Sparsity()
		names[i] = shortLayer(l)
	}
	p := newPlot()
	p.Title.Text = "Sparsity per layer"
	p.Y.Label.Text = "% of parameters zero"
	p.Y.Min, p.Y.Max = 0, 100
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return nil, err
	}
	bars.Color = colorAfter
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(names...)
	return p, nil
}

// LayerReconChart draws the mean reconstruction error ‖WX − ŴX‖²/‖WX‖²
// of each layer's pruned projections (calibrated methods), or returns nil
// when no tensor has one.
func LayerReconChart(r *report.Report) *plot.Plot {
	var vals plotter.Values
	var names []string
	for _, l := range r.Layers() {
		if l.ReconTensors > 0 {
			vals = append(vals, l.ReconError)
			names = append(names, shortLayer(l))
		}
	}
	if len(vals) == 0 {
		return nil
	}
	p := newPlot()
	p.Title.Text = "Reconstruction error per layer"
	p.Y.Label.Text = "mean ‖WX − ŴX‖² / ‖WX‖²"
	p.Y.Min = 0
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return nil
	}
	bars.Color = colorKL
	bars.LineStyle.Width = 0
	p.Add(bars)
	p.NominalX(names...)
	return p
}

// LayerBytesChart draws the bytes of every layer of r before and after,
// side by side.
func LayerBytesChart(r *report.Report) (*plot.Plot, error) {
	layers := r.Layers()
	before, after := make(plotter.Values, len(layers)), make(plotter.Values, len(layers))
	names := make([]string, len(layers))
	for i, l := range layers {
		before[i] = float64(l.BytesBefore) / 1e3
		after[i] = float64(l.BytesAfter) / 1e3
		names[i] = shortLayer(l)
	}
	p := newPlot()
	p.Title.Text = "Bytes per layer"
	p.Y.Label.Text = "kB"
	p.Y.Min = 0
	w := vg.Points(9)
	b1, err := plotter.NewBarChart(before, w)
	if err != nil {
		return nil, err
	}
	b1.Color, b1.LineStyle.Width, b1.Offset = colorBefore, 0, -w/2
	b2, err := plotter.NewBarChart(after, w)
	if err != nil {
		return nil, err
	}
	b2.Color, b2.LineStyle.Width, b2.Offset = colorAfter, 0, w/2
	p.Add(b1, b2)
	p.Legend.Add("before", b1)
	p.Legend.Add("after", b2)
	p.Legend.Top, p.Legend.Left = true, true
	// Leave room above the bars for the legend.
	top := 0.0
	for i := range before {
		top = max(top, before[i], after[i])
	}
	p.Y.Max = 1.3 * top
	p.NominalX(names...)
	return p, nil
}

// methodColors are the sweep's series colours by prune method; other
// methods take the rest of the palette.
var (
	methodColors = map[string]color.Color{
		"magnitude": color.RGBA{R: 255, G: 127, B: 14, A: 255},
		"wanda":     color.RGBA{R: 44, G: 160, B: 44, A: 255},
		"sparsegpt": color.RGBA{R: 31, G: 119, B: 180, A: 255},
	}
	otherColors = []color.Color{color.RGBA{R: 148, G: 103, B: 189, A: 255}, color.RGBA{R: 140, G: 86, B: 75, A: 255}, color.RGBA{R: 227, G: 119, B: 194, A: 255}}
	glyphs      = []draw.GlyphDrawer{draw.CircleGlyph{}, draw.TriangleGlyph{}, draw.SquareGlyph{}, draw.PyramidGlyph{}, draw.RingGlyph{}}
)

// SweepMetric is one metric a sweep chart draws against sparsity.
type SweepMetric struct {
	Title, YLabel string
	Value         func(report.Point) float64
	// Base is the original model's value, drawn as a dashed grey line
	// (NaN: none).
	Base float64
	// Gate is the gate's threshold in the metric's units, drawn as a
	// dashed red line labelled GateLabel (NaN: no gate on this metric).
	Gate      float64
	GateLabel string
	// LogY asks for a logarithmic y axis when the values span 10× or
	// more (ticks at 1, 2 and 5 of every decade, [Ticks125]); the axis is
	// linear otherwise, so it always has numbers.
	LogY bool
	// Falling marks a metric that falls as sparsity grows (top-1
	// agreement): the legend goes to the bottom left, away from the data.
	Falling bool
}

// SweepChart draws metric m of the sweep of r against sparsity: one line
// per prune method (report.Report.SweepMethods) with a legend, the
// original's value and the gate's threshold as horizontal lines, a red
// cross on every point that fails a gate, and the run's own sparsity as
// a dotted vertical line. The y range leaves room for the legend.
func SweepChart(r *report.Report, m SweepMetric) (*plot.Plot, error) {
	p := newPlot()
	p.Title.Text = m.Title
	p.X.Label.Text = "sparsity (%)"
	lo, hi := math.Inf(1), math.Inf(-1)
	xlo, xhi := math.Inf(1), math.Inf(-1)
	for _, s := range r.Sweep {
		v := m.Value(s)
		lo, hi = min(lo, v), max(hi, v)
		xlo, xhi = min(xlo, 100*s.Sparsity), max(xhi, 100*s.Sparsity)
	}
	for _, v := range []float64{m.Base, m.Gate} {
		if !math.IsNaN(v) {
			lo, hi = min(lo, v), max(hi, v)
		}
	}
	p.Y.Label.Text = m.YLabel
	logY := m.LogY && lo > 0 && hi >= 10*lo
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = Ticks125{}
		p.Y.Label.Text = m.YLabel + " (log scale)"
	}
	other := 0
	var failed plotter.XYs
	for i, meth := range r.SweepMethods() {
		var pts plotter.XYs
		for _, s := range r.Sweep {
			if r.MethodOf(s) == meth {
				pts = append(pts, plotter.XY{X: 100 * s.Sparsity, Y: m.Value(s)})
				if s.Passed != nil && !*s.Passed {
					failed = append(failed, pts[len(pts)-1])
				}
			}
		}
		line, points, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", meth, err)
		}
		c, ok := methodColors[meth]
		if !ok {
			c = otherColors[other%len(otherColors)]
			other++
		}
		line.Color, points.Color, points.Shape = c, c, glyphs[i%len(glyphs)]
		p.Add(line, points)
		p.Legend.Add(meth, line, points)
	}
	hline := func(y float64, c color.Color, dashes []vg.Length, label string) error {
		if math.IsNaN(y) || len(r.Sweep) == 0 {
			return nil
		}
		line, err := plotter.NewLine(plotter.XYs{{X: xlo, Y: y}, {X: xhi, Y: y}})
		if err != nil {
			return err
		}
		line.Color, line.Dashes = c, dashes
		p.Add(line)
		p.Legend.Add(label, line)
		return nil
	}
	if err := hline(m.Base, colorBefore, []vg.Length{vg.Points(4), vg.Points(3)}, "original (dense)"); err != nil {
		return nil, err
	}
	if err := hline(m.Gate, colorKL, []vg.Length{vg.Points(6), vg.Points(2)}, m.GateLabel); err != nil {
		return nil, err
	}
	if len(failed) > 0 {
		sc, err := plotter.NewScatter(failed)
		if err != nil {
			return nil, err
		}
		sc.Color, sc.Shape, sc.Radius = colorKL, draw.CrossGlyph{}, vg.Points(5)
		p.Add(sc)
		p.Legend.Add("fails a gate", sc)
	}
	// Room for the legend: a third of the height above (or below) the data.
	span := hi - lo
	switch {
	case logY && m.Falling:
		p.Y.Min = lo / math.Pow(hi/lo, 0.5)
	case logY:
		p.Y.Max = hi * math.Pow(hi/lo, 0.5)
	case span == 0:
		p.Y.Min, p.Y.Max = lo-1, hi+1
	case m.Falling:
		p.Y.Min = lo - 0.8*span
	default:
		p.Y.Max = hi + 0.8*span
	}
	if _, s := r.PruneStage(); s != nil && len(r.Sweep) > 0 {
		x := 100 * *s
		line, err := plotter.NewLine(plotter.XYs{{X: x, Y: p.Y.Min}, {X: x, Y: p.Y.Max}})
		if err != nil {
			return nil, err
		}
		line.Color, line.Dashes = color.Black, []vg.Length{vg.Points(1), vg.Points(2)}
		p.Add(line)
		p.Legend.Add(fmt.Sprintf("this run (%g%%)", x), line)
	}
	p.Legend.Top, p.Legend.Left = !m.Falling, true
	p.Legend.XOffs, p.Legend.YOffs = vg.Points(6), vg.Points(-4)
	if m.Falling {
		p.Legend.YOffs = vg.Points(4)
	}
	return p, nil
}

// Ticks125 marks a log axis at 1, 2 and 5 of every decade, labelled, and
// at the other digits, unlabelled: a range of 10× or more always has at
// least two labels (plot.LogTicks labels the powers of 10 only, so a
// range inside one decade has none). When fewer than two labelled ticks
// fall in the range, every digit is labelled.
type Ticks125 struct{}

// Ticks implements plot.Ticker.
func (Ticks125) Ticks(lo, hi float64) []plot.Tick {
	if lo <= 0 || hi <= lo {
		return plot.DefaultTicks{}.Ticks(lo, hi)
	}
	var ticks []plot.Tick
	labelled := 0
	for e := int(math.Floor(math.Log10(lo))); e <= int(math.Ceil(math.Log10(hi))); e++ {
		for d := 1; d <= 9; d++ {
			v := float64(d) * math.Pow10(e)
			if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
				continue
			}
			t := plot.Tick{Value: v}
			if d == 1 || d == 2 || d == 5 {
				t.Label = strconv.FormatFloat(v, 'g', -1, 64)
				labelled++
			}
			ticks = append(ticks, t)
		}
	}
	if labelled < 2 {
		for i := range ticks {
			ticks[i].Label = strconv.FormatFloat(ticks[i].Value, 'g', -1, 64)
		}
	}
	return ticks
}

// LossChart draws the loss of every step of r's recovery, or returns nil
// without one.
func LossChart(r *report.Report) (*plot.Plot, error) {
	rc := r.Recovery
	if rc == nil || len(rc.Loss) == 0 {
		return nil, nil
	}
	pts := make(plotter.XYs, len(rc.Loss))
	for i, l := range rc.Loss {
		pts[i].X, pts[i].Y = float64(i+1), l
	}
	p := newPlot()
	p.Title.Text = "Recovery loss"
	p.X.Label.Text = "step"
	switch {
	case rc.Distill == 1:
		p.Y.Label.Text = "KL(original‖model) (nats)"
	case rc.Distill == 0:
		p.Y.Label.Text = "cross-entropy (nats)"
	default:
		p.Y.Label.Text = fmt.Sprintf("%g·CE + %g·KL (nats)", 1-rc.Distill, rc.Distill)
	}
	p.Y.Min = 0
	line, err := plotter.NewLine(pts)
	if err != nil {
		return nil, err
	}
	line.Color = colorAfter
	p.Add(line)
	if len(pts) < 30 { // few steps: mark each
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.Color = colorAfter
		p.Add(sc)
	}
	return p, nil
}

func shortLayer(l report.Layer) string {
	if l.Index < 0 {
		return "other"
	}
	return fmt.Sprint(l.Index)
}

// Every chart has the same size, so the page lays them out in a grid.
const (
	chartW = 4.4 * vg.Inch
	chartH = 3.2 * vg.Inch
)

// newPlot is plot.New with the text in Liberation Sans, the page's font
// (metric-compatible with Arial and Helvetica, which the page falls back
// to), so the widths gonum/plot lays the labels out with hold in the
// browser.
func newPlot() *plot.Plot {
	p := plot.New()
	for _, f := range []*font.Font{&p.Title.TextStyle.Font, &p.X.Label.TextStyle.Font, &p.Y.Label.TextStyle.Font,
		&p.X.Tick.Label.Font, &p.Y.Tick.Label.Font, &p.Legend.TextStyle.Font} {
		f.Variant = "Sans"
	}
	p.Legend.TextStyle.Font.Size = vg.Points(9)
	return p
}

// namedMetric is a sweep metric with its chart id.
type namedMetric struct {
	id string
	SweepMetric
}

// sweepMetrics are the sweep's charts: perplexity (log axis when wide),
// KL and top-1 agreement, each with its gate when the run has one.
func sweepMetrics(r *report.Report) []namedMetric {
	base := math.NaN()
	if r.Fid != nil {
		base = r.Fid.BasePPL
	}
	// gate returns the threshold of the named gate times scale and its
	// legend label (format gets the threshold), or NaN.
	gate := func(name string, scale float64, format string) (float64, string) {
		for _, g := range r.Gates {
			if g.Name == name {
				return scale * g.Threshold, fmt.Sprintf(format, g.Threshold)
			}
		}
		return math.NaN(), ""
	}
	ppl := namedMetric{"sweep-ppl", SweepMetric{Title: "Perplexity vs sparsity", YLabel: "perplexity", Base: base, Gate: math.NaN(), LogY: true,
		Value: func(p report.Point) float64 { return p.PPL }}}
	if !math.IsNaN(base) {
		ppl.Gate, ppl.GateLabel = gate("max_ppl_ratio", base, "gate: ≤ %g× original")
	}
	kl := namedMetric{"sweep-kl", SweepMetric{Title: "KL(base‖model) vs sparsity", YLabel: "mean KL (nats)", Base: math.NaN(),
		Value: func(p report.Point) float64 { return p.KLMean }}}
	kl.Gate, kl.GateLabel = gate("max_kl", 1, "gate: ≤ %g nats")
	top1 := namedMetric{"sweep-top1", SweepMetric{Title: "Top-1 agreement vs sparsity", YLabel: "top-1 agreement (%)", Base: math.NaN(), Falling: true,
		Value: func(p report.Point) float64 { return 100 * p.Top1 }}}
	top1.Gate, top1.GateLabel = gate("min_top1", 100, "gate: ≥ %g")
	if !math.IsNaN(top1.Gate) {
		top1.GateLabel = fmt.Sprintf("gate: ≥ %g%%", top1.Gate)
	}
	return []namedMetric{ppl, kl, top1}
}

// Chart is one rendered SVG chart of the report.
type Chart struct {
	ID  string // layer-sparsity, layer-bytes, layer-recon, sweep-ppl, sweep-kl, sweep-top1, recover-loss
	SVG []byte
}

// lossChartID is the id of the recovery's loss curve, which the page shows
// in its Recovery section.
const lossChartID = "recover-loss"

// sparsities counts the distinct sparsities of r's sweep.
func sparsities(r *report.Report) int {
	var seen []float64
	for _, p := range r.Sweep {
		if !slices.Contains(seen, p.Sparsity) {
			seen = append(seen, p.Sparsity)
		}
	}
	return len(seen)
}

// Charts renders the charts of r as standalone SVG documents: the sparsity
// and the bytes per layer (and the reconstruction error of a calibrated
// method), with a sweep of more than one sparsity the perplexity and KL
// curves (one per prune method, the perplexity's with the original's as
// a dashed line), and with a recover stage its loss curve.
func Charts(r *report.Report) ([]Chart, error) {
	var out []Chart
	width := chartW
	add := func(id string, w vg.Length, p *plot.Plot, err error) error {
		if err != nil {
			return fmt.Errorf("chart %s: %w", id, err)
		}
		s, err := svg(p, w, chartH)
		if err != nil {
			return fmt.Errorf("chart %s: %w", id, err)
		}
		out = append(out, Chart{id, []byte(s)})
		return nil
	}
	if len(r.Layers()) > 0 { // nothing to draw otherwise
		sp, err := LayerSparsityChart(r)
		if err := add("layer-sparsity", width, sp, err); err != nil {
			return nil, err
		}
		by, err := LayerBytesChart(r)
		if err := add("layer-bytes", width, by, err); err != nil {
			return nil, err
		}
	}
	if recon := LayerReconChart(r); recon != nil {
		if err := add("layer-recon", width, recon, nil); err != nil {
			return nil, err
		}
	}
	if sparsities(r) > 1 {
		for _, m := range sweepMetrics(r) {
			c, err := SweepChart(r, m.SweepMetric)
			if err := add(m.id, chartW, c, err); err != nil {
				return nil, err
			}
		}
	}
	if loss, err := LossChart(r); loss != nil || err != nil {
		if err := add(lossChartID, chartW, loss, err); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Render renders report.html for r: one self-contained page (inline CSS
// and SVG, no scripts, nothing fetched) with the headline, totals,
// fidelity, the recovery (its before/after table and loss curve), gates,
// per-layer sparsity and bytes, and the sweep curves.
func Render(r *report.Report) ([]byte, error) {
	type chart struct {
		ID  string
		SVG template.HTML
	}
	cs, err := Charts(r)
	if err != nil {
		return nil, err
	}
	var charts []chart
	var loss template.HTML
	for _, c := range cs {
		if c.ID == lossChartID {
			loss = template.HTML(c.SVG)
			continue
		}
		charts = append(charts, chart{c.ID, template.HTML(c.SVG)})
	}
	data := struct {
		R         *report.Report
		Headline  string
		Charts    []chart
		LossChart template.HTML
		Layers    []report.Layer
	}{r, strings.TrimLeft(r.Headline(), "✅❌ "), charts, loss, r.Layers()}
	var buf bytes.Buffer
	if err := page.Execute(&buf, data); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"commas": report.Commas,
	"int":    func(n int) string { return report.Commas(int64(n)) },
	"pct":    func(x float64) string { return fmt.Sprintf("%.2f%%", 100*x) },
	"g":      func(x float64) string { return fmt.Sprintf("%.6g", x) },
	"deref":  func(p *float64) float64 { return *p },
	"verdict": func(p *bool) string {
		switch {
		case p == nil:
			return ""
		case *p:
			return "pass"
		}
		return "fail"
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>lmsparse report: {{.R.Model}}</title>
<style>
body { font-family: "Liberation Sans", Arial, Helvetica, sans-serif; margin: 2em auto; max-width: 72em; padding: 0 1em; color: #222; }
h1 { font-size: 1.3em; }
h2 { font-size: 1.1em; margin-top: 2em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
.pass { color: #1a7f37; font-weight: bold; }
.fail { color: #cf222e; font-weight: bold; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(22em, 1fr)); gap: 1em; }
.chart svg { width: 100%; height: auto; }
.chart svg text { font-family: "Liberation Sans", Arial, Helvetica, sans-serif !important; }
.muted { color: #666; font-size: 0.9em; }
.warn { background: #fff8c5; border-left: 4px solid #d4a72c; padding: 0.3em 0.6em; }
.badge { font-size: 0.8em; padding: 0.1em 0.4em; border-radius: 0.3em; color: #fff; }
.badge.pass { background: #1a7f37; color: #fff; }
.badge.fail { background: #cf222e; color: #fff; }
</style>
</head>
<body>
<h1 id="headline"><span class="badge {{if .R.Passed}}pass{{else}}fail{{end}}">{{if .R.Passed}}PASS{{else}}FAIL{{end}}</span> {{.Headline}}</h1>
<p class="muted">{{.R.Tool}} · model <code>{{.R.Model}}</code> · output <code>{{.R.Output}}</code></p>
{{range .R.Notes}}<p class="warn">⚠️ {{.}}</p>
{{end}}
<h2>Totals</h2>
<table id="totals">
<tr><th></th><th>before</th><th>after</th></tr>
<tr><td>tensor bytes</td><td>{{commas .R.Totals.BytesBefore}}</td><td>{{commas .R.Totals.BytesAfter}} ({{printf "%.3f" .R.Totals.Ratio}}× smaller)</td></tr>
{{if .R.Totals.FileBytesAfter}}<tr><td>weight files</td><td>{{commas .R.Totals.FileBytesBefore}}</td><td>{{commas .R.Totals.FileBytesAfter}}</td></tr>{{end}}
<tr><td>parameters</td><td>{{commas .R.Totals.Parameters}}</td><td>{{commas .R.Totals.Nonzeros}} nonzero</td></tr>
<tr><td>sparsity</td><td></td><td>{{pct .R.Totals.Sparsity}} (pruned tensors {{pct .R.Totals.TargetSparsity}}, {{.R.Totals.PrunedTensors}} of {{.R.Totals.Tensors}} tensors)</td></tr>
{{with .R.Fid}}<tr><td>perplexity</td><td>{{g .BasePPL}}</td><td>{{g .PPL}} (×{{printf "%.4f" .PPLRatio}})</td></tr>
<tr><td>bits per byte</td><td>{{printf "%.4f" .BaseBitsPerByte}}</td><td>{{printf "%.4f" .BitsPerByte}}</td></tr>
<tr><td>KL(base‖model)</td><td></td><td>mean {{g .KLMean}}, p50 {{g .KLP50}}, p90 {{g .KLP90}}, p99 {{g .KLP99}}, max {{g .KLMax}}</td></tr>
<tr><td>top-1 agreement</td><td></td><td>{{pct .Top1}}</td></tr>{{end}}
</table>
{{with .R.Fid}}<p class="muted">Fidelity on <code>{{.Text}}</code>: {{int .Tokens}} tokens, {{int .Scored}} scored, ctx {{.Ctx}}, stride {{.Stride}}.</p>{{end}}
{{with .R.Structured}}<p>Structured pruning: {{.}}.</p>{{end}}
{{with .R.SAE}}<p>Sparse autoencoder on <code>{{.Tensor}}</code>: {{.Latents}} latents{{if .K}}, k {{.K}}{{else}}, L1 {{g .L1}}{{end}};
{{commas .BytesBefore}} → {{commas .BytesAfter}} bytes; FVU {{printf "%.4f" .FVU}}, mean cosine {{printf "%.4f" .Cosine}}, L0 {{printf "%.2f" .L0}}, {{.Dead}} dead latents.</p>{{end}}

{{with .R.Recovery}}<h2>Recovery</h2>
<p>{{.Summary}}</p>
{{if and .Before $.R.Fid}}{{$b := .Before}}{{with $.R.Fid}}<table id="recovery">
<tr><th></th><th>original</th><th>pruned</th><th>recovered</th></tr>
<tr><td>perplexity</td><td>{{g .BasePPL}}</td><td>{{g $b.PPL}} (×{{printf "%.4f" $b.PPLRatio}})</td><td>{{g .PPL}} (×{{printf "%.4f" .PPLRatio}})</td></tr>
<tr><td>KL(base‖model) mean</td><td></td><td>{{g $b.KLMean}}</td><td>{{g .KLMean}}</td></tr>
<tr><td>top-1 agreement</td><td></td><td>{{pct $b.Top1}}</td><td>{{pct .Top1}}</td></tr>
</table>{{end}}{{end}}
{{if $.LossChart}}<div class="charts"><div class="chart" id="recover-loss">{{$.LossChart}}</div></div>{{end}}{{end}}

{{if .R.Gates}}<h2>Gates</h2>
<table id="gates">
<tr><th>gate</th><th>threshold</th><th>value</th><th>verdict</th></tr>
{{range .R.Gates}}<tr><td>{{.Name}}</td><td>{{.Op}} {{g .Threshold}}</td><td>{{g .Value}}</td><td class="{{if .Passed}}pass">pass{{else}}fail">FAIL{{end}}</td></tr>
{{end}}</table>{{end}}

<h2>Charts</h2>
<div class="charts">
{{range .Charts}}<div class="chart" id="{{.ID}}">{{.SVG}}</div>
{{end}}</div>

{{if .R.Sweep}}<h2>Sparsity sweep</h2>
<table id="sweep">
<tr><th>sparsity</th><th>method</th><th>perplexity</th><th>ppl ratio</th><th>KL mean</th><th>top-1</th><th>bytes</th><th>gates</th></tr>
{{range .R.Sweep}}<tr><td>{{g .Sparsity}}</td><td>{{$.R.MethodOf .}}</td><td>{{g .PPL}}</td><td>{{printf "%.4f" .PPLRatio}}</td><td>{{g .KLMean}}</td><td>{{pct .Top1}}</td><td>{{commas .Bytes}}</td><td class="{{verdict .Passed}}">{{verdict .Passed}}</td></tr>
{{end}}</table>
{{if .R.Best}}<p>Highest sparsity passing every gate{{.R.BestOf}}: <b>{{g (deref .R.Best)}}</b>.</p>{{else if .R.Gates}}<p>No sparsity of the sweep{{.R.BestOf}} passes every gate.</p>{{end}}{{end}}

<h2>Layers</h2>
<table id="layers">
<tr><th>layer</th><th>parameters</th><th>sparsity</th><th>bytes before</th><th>bytes after</th></tr>
{{range .Layers}}<tr><td>{{.Name}}</td><td>{{commas .Parameters}}</td><td>{{pct .Sparsity}}</td><td>{{commas .BytesBefore}}</td><td>{{commas .BytesAfter}}</td></tr>
{{end}}</table>

<h2>Tensors</h2>
<table id="tensors">
<tr><th>name</th><th>dtype</th><th>shape</th><th>encoding</th><th>sparsity</th><th>bytes before</th><th>bytes after</th></tr>
{{range .R.Tensors}}<tr><td>{{.Name}}</td><td>{{.DType}}</td><td>{{.Shape}}</td><td>{{.Shown}}</td><td>{{pct .Sparsity}}</td><td>{{commas .BytesBefore}}</td><td>{{commas .BytesAfter}}</td></tr>
{{end}}</table>

<p class="muted">{{range $i, $t := .R.Timings}}{{if $i}}, {{end}}{{$t.Stage}} {{printf "%.2f" $t.Seconds}} s{{end}}{{if .R.PeakRSS}} · peak RSS {{commas .R.PeakRSS}} bytes{{end}}</p>
</body>
</html>
`))
