package sparsify_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/sparsify"
)

// pruneAndScore prunes stories260k with opts into a new directory and
// returns the manifest and the perplexity on the TinyStories sample.
func pruneAndScore(t *testing.T, opts sparsify.Options) (*manifest.Manifest, float64) {
	t.Helper()
	s260 := sharedtest.Path(t, "models/stories260k")
	text := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	ctx := context.Background()
	job, err := sparsify.Plan(ctx, s260, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	dir := filepath.Join(t.TempDir(), "out")
	out, err := checkpoint.Create(dir, checkpoint.OutputOptions{InputDir: job.InputDir()})
	if err != nil {
		t.Fatal(err)
	}
	man, err := job.Execute(ctx, out)
	if err != nil {
		out.Abort()
		t.Fatal(err)
	}
	if err := out.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	held, err := eval.ReadText(text)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := eval.LoadTokenizer(s260, "")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := eval.Compare(ctx, dir, "", held, tok, eval.Options{}, model.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	return man, rep.PPL
}

// TestCalibratedQuality: on stories260k, calibrated on 64 windows of 128
// tokens sampled from the model (seed 0), Wanda and SparseGPT at 50% stay
// at or below the perplexity of an independent float64 implementation
// (31.21 and 31.66, issue 13: each ≤ 32), at 30% ≤ 8.0; magnitude at 50%
// gives 66.48. Every target ends with exactly the sparsity asked per row
// (Wanda) and the pruned tensors' sparsity is 50%.
func TestCalibratedQuality(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the model")
	}
	// The default calibration, sampled once for the four runs.
	wins, err := sparsify.CalibrationWindows(context.Background(), sharedtest.Path(t, "models/stories260k"), sparsify.Calibration{}, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(wins) != sparsify.DefaultCalibSamples || len(wins[0]) != sparsify.DefaultCalibLen {
		t.Fatalf("%d windows of %d tokens", len(wins), len(wins[0]))
	}
	for _, c := range []struct {
		alg      sparsify.Algorithm
		sparsity float64
		max      float64
	}{
		{sparsify.Wanda, 0.5, 32}, {sparsify.SparseGPT, 0.5, 32},
		{sparsify.Wanda, 0.3, 8.0}, {sparsify.SparseGPT, 0.3, 8.0},
	} {
		man, ppl := pruneAndScore(t, sparsify.Options{Method: prune.Method{Sparsity: c.sparsity, Scope: prune.ScopeTensor}, Algorithm: c.alg, Threads: 2,
			Calib: sparsify.Calibration{Windows: wins}})
		t.Logf("%s %g: perplexity %.4f", c.alg, c.sparsity, ppl)
		if ppl > c.max {
			t.Errorf("%s at %g: perplexity %.4f, want ≤ %g", c.alg, c.sparsity, ppl, c.max)
		}
		// Exactly S per row (Wanda) or column block (SparseGPT), rounded
		// half to even there: within 0.5% of S over the tensors.
		if got := man.Totals.TargetSparsity; got < c.sparsity-0.005 || got > c.sparsity+0.005 {
			t.Errorf("%s at %g: pruned tensors' sparsity %g", c.alg, c.sparsity, got)
		}
		cal := man.Calibration
		if cal == nil || cal.Source != "windows" || cal.Samples != sparsify.DefaultCalibSamples || cal.Len != sparsify.DefaultCalibLen || len(cal.TokensSHA256) != 64 {
			t.Errorf("calibration record %+v", cal)
		}
		for _, row := range man.Tensors {
			if row.Pruned && (row.ReconError == nil || *row.ReconError <= 0 || *row.ReconError >= 1) {
				t.Errorf("%s: reconstruction error %v", row.Name, row.ReconError)
			}
		}
	}
}

// TestCalibrationWindows: the same seed gives the same sampled windows
// (their sha256), another seed others; a text gives its consecutive
// windows, fewer than asked with a note.
func TestCalibrationWindows(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the model")
	}
	text := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}, Algorithm: sparsify.Wanda, Threads: 2,
		Calib: sparsify.Calibration{Samples: 4, Len: 64}}
	sha := func(o sparsify.Options) string {
		man, _ := pruneAndScore(t, o)
		return man.Calibration.TokensSHA256
	}
	a, b := sha(base), sha(base)
	other := base
	other.Calib.Seed = 1
	if a != b || a == sha(other) {
		t.Errorf("seeded samples: %s, %s (same seed), other seed differs: %v", a, b, a != sha(other))
	}
	fromText := base
	fromText.Calib = sparsify.Calibration{Text: text, Samples: 100, Len: 128}
	man, _ := pruneAndScore(t, fromText)
	// 1879 tokens: 14 windows of 128.
	if c := man.Calibration; c.Samples != 14 || c.Source != text {
		t.Errorf("calibration from text: %+v", c)
	}
}

// TestCalibratedErrors: requests a calibrated method cannot carry out are
// refused when planning, before anything is written.
func TestCalibratedErrors(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	onnxModel := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.txt")
	os.WriteFile(empty, nil, 0o644)
	noTok := filepath.Join(dir, "notok")
	os.MkdirAll(noTok, 0o755)
	for _, f := range []string{"config.json", "model.safetensors"} {
		b, _ := os.ReadFile(filepath.Join(s260, f))
		os.WriteFile(filepath.Join(noTok, f), b, 0o644)
	}
	half := prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}
	for _, c := range []struct {
		name  string
		model string
		opts  sparsify.Options
	}{
		{"missing text", s260, sparsify.Options{Method: half, Algorithm: sparsify.SparseGPT, Calib: sparsify.Calibration{Text: filepath.Join(dir, "nope.txt")}}},
		{"empty text", s260, sparsify.Options{Method: half, Algorithm: sparsify.SparseGPT, Calib: sparsify.Calibration{Text: empty}}},
		{"window too long", s260, sparsify.Options{Method: half, Algorithm: sparsify.Wanda, Calib: sparsify.Calibration{Len: 4096}}},
		{"negative damping", s260, sparsify.Options{Method: half, Algorithm: sparsify.SparseGPT, Damp: -1}},
		{"global scope", s260, sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeGlobal}, Algorithm: sparsify.Wanda}},
		{"structured", s260, sparsify.Options{Method: prune.Method{Sparsity: 0.5, Structured: prune.StructRows}, Algorithm: sparsify.Wanda}},
		{"onnx", onnxModel, sparsify.Options{Method: half, Algorithm: sparsify.SparseGPT}},
		{"no tokenizer", noTok, sparsify.Options{Method: half, Algorithm: sparsify.SparseGPT}},
		{"owl with N:M", s260, sparsify.Options{Method: prune.Method{N: 2, M: 4}, Algorithm: sparsify.Wanda, OWL: &sparsify.OWL{}}},
	} {
		job, err := sparsify.Plan(context.Background(), c.model, c.opts)
		if err == nil {
			job.Close()
			t.Errorf("%s: planned", c.name)
			continue
		}
		t.Logf("%s: %v", c.name, err)
	}
}
