package report

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/manifest"
)

func sample() *Report {
	nz := func(n int64) *int64 { return &n }
	pass, fail := true, false
	best := 0.5
	return &Report{
		Schema: Schema, Tool: "lmsparse test", Model: "m", Output: "o",
		Tensors: []Tensor{
			{Name: "model.embed_tokens.weight", DType: "F32", Shape: []int64{4, 2}, Parameters: 8, Nonzeros: nz(8), BytesBefore: 32, BytesAfter: 32},
			{Name: "model.layers.0.mlp.up_proj.weight", Pruned: true, Encoding: "csr", DType: "F32", Shape: []int64{4, 4}, Parameters: 16, Nonzeros: nz(8), Sparsity: 0.5, BytesBefore: 64, BytesAfter: 60},
			{Name: "model.layers.10.mlp.up_proj.weight", Pruned: true, Encoding: "dense", DType: "F32", Shape: []int64{4, 4}, Parameters: 16, Nonzeros: nz(4), Sparsity: 0.75, BytesBefore: 64, BytesAfter: 64},
			{Name: "model.layers.2.mlp.up_proj.weight", Pruned: true, Encoding: "dense", DType: "F32", Shape: []int64{4, 4}, Parameters: 16, Nonzeros: nz(12), Sparsity: 0.25, BytesBefore: 64, BytesAfter: 64},
		},
		Totals: Totals{Totals: manifest.Totals{Tensors: 4, PrunedTensors: 3, Parameters: 56, Nonzeros: 32, BytesBefore: 224, BytesAfter: 220, Ratio: 224.0 / 220}},
		Fid:    &Fidelity{Text: "t.txt", PPL: 7, BasePPL: 6, PPLRatio: 7.0 / 6, KLMean: 0.1, Top1: 0.9},
		Gates:  []Gate{{Name: "max_kl", Op: "<=", Threshold: 0.2, Value: 0.1, Passed: true}, {Name: "min_top1", Op: ">=", Threshold: 0.95, Value: 0.9, Passed: false}},
		Sweep:  []Point{{Sparsity: 0.3, PPL: 6.5, KLMean: 0.05, Passed: &pass}, {Sparsity: 0.5, PPL: 7, KLMean: 0.1, Passed: &pass}, {Sparsity: 0.7, PPL: 20, KLMean: 1, Passed: &fail}},
		Best:   &best,
	}
}

func TestLayers(t *testing.T) {
	ls := sample().Layers()
	var names []string
	for _, l := range ls {
		names = append(names, l.Name)
	}
	if got := strings.Join(names, ","); got != "layer 0,layer 2,layer 10,other" {
		t.Errorf("layers %s", got)
	}
	if ls[1].Sparsity() != 0.25 || ls[3].Parameters != 8 {
		t.Errorf("layer sums: %+v", ls)
	}
}

func TestMarkdown(t *testing.T) {
	md := string(sample().Markdown())
	for _, want := range []string{"### ❌ lmsparse: m is 1.02× smaller", "gates failed: min_top1", "| min_top1 | >= 0.95 | 0.9 | ❌ FAIL |",
		"| max_kl | <= 0.2 | 0.1 | ✅ pass |", "Highest sparsity passing every gate: **0.5**", "| layer 10 | 16 | 75.00% |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestLoadRoundTrip(t *testing.T) {
	r := sample()
	b, err := r.JSON()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "report.json")
	os.WriteFile(p, b, 0o644)
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Markdown(), r.Markdown()) {
		t.Error("Markdown differs after a JSON round trip")
	}
	var m map[string]any
	json.Unmarshal(b, &m)
	m["schema"] = "lmsparse.report/v0"
	b2, _ := json.Marshal(m)
	os.WriteFile(p, b2, 0o644)
	if _, err := Load(p); err == nil || !strings.Contains(err.Error(), "schema") {
		t.Errorf("old schema: err = %v", err)
	}
}

// TestMarkdownRecovery: a recover stage adds a section with its setup and
// the before/after table; the JSON keeps it.
func TestMarkdownRecovery(t *testing.T) {
	r := sample()
	r.Recovery = &Recovery{Steps: 3, Batch: 2, Accum: 1, Ctx: 32, Optimizer: "adamw", LR: 0.001, Schedule: "constant", Distill: 1,
		Data: manifest.TrainingData{Source: "self", Windows: 4, Len: 32}, Tokens: 192, Seconds: 0.5, TokensPerS: 384,
		Loss: []float64{2, 1.5, 1.25}, Before: &Fidelity{PPL: 66, BasePPL: 6, PPLRatio: 11, KLMean: 2.5, Top1: 0.25}}
	md := string(r.Markdown())
	for _, want := range []string{"#### Recovery", "Recovered by 3 steps of 2×32 tokens, adamw, lr 0.001, distill 1, on 4 windows sampled from the original (seed 0): loss 2.0000 → 1.2500; 192 tokens in 0.5 s (384 tokens/s).",
		"| perplexity | 6 | 66 (×11.0000) | 7 (×1.1667) |", "| top-1 agreement | | 25.00% | 90.00% |"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	b, _ := r.JSON()
	for _, want := range []string{`"recovery": {`, `"loss": [`, `"before": {`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("report.json lacks %s", want)
		}
	}
	if strings.Contains(string(sample().Markdown()), "Recovery") {
		t.Error("a report without recovery has a Recovery section")
	}
}

// methodSample is sample with a sweep comparing three methods of a wanda
// run at 0.5 (its recipe a struct, as compress's is before JSON).
func methodSample() *Report {
	r := sample()
	type prune struct {
		Method   string  `json:"method"`
		Sparsity float64 `json:"sparsity"`
	}
	r.Recipe = struct {
		Prune prune `json:"prune"`
	}{prune{"wanda", 0.5}}
	r.Sweep = nil
	for _, s := range []float64{0.3, 0.5} {
		for i, m := range []string{"magnitude", "wanda", "sparsegpt"} {
			ratio := []float64{1.93, 1.12, 1.081}[i] * s * 2
			r.Sweep = append(r.Sweep, Point{Sparsity: s, Method: m, PPL: 6 * ratio, PPLRatio: ratio})
		}
	}
	return r
}

// TestHeadlineComparison: with points of other methods at the run's
// sparsity the headline compares them, best first, on one line; the
// comparison survives report.json; without them there is none.
func TestHeadlineComparison(t *testing.T) {
	r := methodSample()
	want := "; at 50% sparsity, perplexity ×1.081 with sparsegpt, ×1.120 with wanda, ×1.930 with magnitude — gates failed: min_top1"
	if h := r.Headline(); !strings.HasSuffix(h, want) || strings.Contains(h, "\n") {
		t.Errorf("headline %q\nwant the suffix %q", h, want)
	}
	if m, s := r.PruneStage(); m != "wanda" || s == nil || *s != 0.5 {
		t.Errorf("prune stage %s %v", m, s)
	}
	b, _ := r.JSON()
	p := filepath.Join(t.TempDir(), "report.json")
	os.WriteFile(p, b, 0o644)
	got, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got.Headline() != r.Headline() || !bytes.Equal(got.Markdown(), r.Markdown()) {
		t.Errorf("after report.json: %q", got.Headline())
	}
	md := string(r.Markdown())
	for _, w := range []string{"| sparsity | method | perplexity |", "| 0.5 | sparsegpt | ", "passing every gate (wanda, the run's method): **0.5**"} {
		if !strings.Contains(md, w) {
			t.Errorf("markdown lacks %q:\n%s", w, md)
		}
	}

	// At another sparsity, or with the run's method alone: no comparison.
	r.Recipe = map[string]any{"prune": map[string]any{"method": "wanda", "sparsity": 0.4}}
	if strings.Contains(r.Headline(), "at 50%") {
		t.Errorf("run at 0.4: %q", r.Headline())
	}
	r = sample() // points without a method are the run's (magnitude, the default)
	r.Recipe = map[string]any{"prune": map[string]any{"sparsity": 0.5}}
	if h := r.Headline(); strings.Contains(h, "sparsity,") || r.MethodOf(r.Sweep[0]) != "magnitude" || r.BestOf() != "" {
		t.Errorf("one method: %q, method %q", h, r.MethodOf(r.Sweep[0]))
	}
}
