package compress_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
)

// TestRecoverStage prunes stories260k by magnitude to 50%, recovers it
// for a few steps on self-sampled windows, distilled from the original,
// and evaluates it: the pruned weights stay exactly zero, the report has
// the loss of every step, the fidelity before recovery and a different
// one after, the stages are timed, the intermediate checkpoint is gone,
// and the HTML page draws the loss curve.
func TestRecoverStage(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	text := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	r, err := compress.ParseRecipe("recover.yaml", []byte(`version: 1
prune:
  sparsity: 0.5
recover:
  steps: 6
  batch: 2
  ctx: 32
  samples: 4
  seed: 1
eval:
  text: `+text+`
  ctx: 128
`))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	plan, err := compress.NewPlan(ctx, s260, out, r, compress.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if v := plan.Recipe().Recover; v.LR != 1e-3 || v.Optimizer != "adamw" || v.Schedule != "constant" || *v.Distill != 1 || v.Accum != 1 {
		t.Errorf("normalized recover stage %+v", v)
	}
	rep, err := plan.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}

	// Every target is exactly half zeros, in the files and the report.
	m, err := checkpoint.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	pruned := 0
	for _, tn := range rep.Tensors {
		if !tn.Pruned {
			continue
		}
		pruned++
		w, err := m.Float32(tn.Name)
		if err != nil {
			t.Fatal(err)
		}
		zeros := 0
		for _, x := range w {
			if x == 0 {
				zeros++
			}
		}
		if zeros != len(w)/2 || *tn.Nonzeros != int64(len(w)-zeros) {
			t.Errorf("%s: %d of %d zero, report nnz %d", tn.Name, zeros, len(w), *tn.Nonzeros)
		}
	}
	if pruned != 35 || rep.Totals.PrunedTensors != 35 || rep.Totals.TargetSparsity != 0.5 {
		t.Errorf("%d pruned tensors, totals %+v", pruned, rep.Totals)
	}

	// report.json: the recovery with its loss curve, before and after.
	saved, err := report.Load(filepath.Join(out, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	rc := saved.Recovery
	if rc == nil {
		t.Fatal("report.json has no recovery")
	}
	if len(rc.Loss) != 6 || rc.Steps != 6 || rc.Batch != 2 || rc.Ctx != 32 || rc.Distill != 1 || rc.Data.Source != "self" || rc.Data.Windows != 4 ||
		rc.Tokens != 6*2*32 || rc.Teacher != s260 {
		t.Errorf("recovery %+v", rc)
	}
	if rc.Loss[5] >= rc.Loss[0] {
		t.Errorf("loss %v does not fall", rc.Loss)
	}
	b, a := rc.Before, saved.Fid
	if b == nil || a == nil {
		t.Fatalf("fidelity before %v, after %v", b, a)
	}
	// Magnitude 50% on stories260k scores 66.48 at ctx 512 (the README).
	if b.PPL < 30 || b.PPL == a.PPL || b.BasePPL != a.BasePPL || b.Ctx != 128 {
		t.Errorf("perplexity before recovery %g, after %g (original %g)", b.PPL, a.PPL, a.BasePPL)
	}
	if a.KLMean >= b.KLMean {
		t.Errorf("KL %g after recovery, %g before", a.KLMean, b.KLMean)
	}
	var stages []string
	for _, tm := range saved.Timings {
		stages = append(stages, tm.Stage)
	}
	if got := strings.Join(stages, ","); got != "load,prune,recover,write,eval,total" {
		t.Errorf("stages %s", got)
	}

	// lmsparse.json describes the run from the original.
	js, err := os.ReadFile(filepath.Join(out, manifest.File))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"command": "compress"`, `"method": "magnitude 50% per tensor"`, `"training": {`, `"keep_mask": true`} {
		if !strings.Contains(string(js), want) {
			t.Errorf("lmsparse.json lacks %s", want)
		}
	}
	weights, err := os.ReadFile(filepath.Join(s260, "model.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	if sum := sha256.Sum256(weights); len(saved.Inputs) == 0 || saved.Inputs[0].SHA256 != hex.EncodeToString(sum[:]) {
		t.Errorf("inputs %+v: want the original's files", saved.Inputs)
	}

	// The reports: Markdown's before/after table, the HTML loss chart.
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "#### Recovery") || !strings.Contains(string(md), "| | original | pruned | recovered |") {
		t.Errorf("report.md lacks the recovery:\n%s", md)
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	for _, want := range []string{`id="recovery"`, `id="recover-loss"><svg`, "Recovery loss"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
	// The intermediate checkpoint is gone.
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if e.Name() != "out" {
			t.Errorf("left beside the output: %s", e.Name())
		}
	}
}

// TestRecoverRecipeErrors: a recover stage's bad values are recipe errors
// naming the line, before any work.
func TestRecoverRecipeErrors(t *testing.T) {
	for _, c := range []struct{ recipe, want string }{
		{"version: 1\nsae:\n  latents: 8\nrecover:\n  steps: 5\n", "bad.yaml:4: a recover stage needs a prune stage"},
		{"version: 1\nprune:\n  sparsity: 0.5\nrecover:\n  steps: 0\n", "bad.yaml:5: recover.steps 0: want at least 1"},
		{"version: 1\nprune:\n  sparsity: 0.5\nrecover:\n  batch: 2\n  lr: -0.01\n", "bad.yaml:6: recover.lr -0.01: want a positive learning rate"},
		{"version: 1\nprune:\n  sparsity: 0.5\nrecover:\n  optimizer: lion\n", "bad.yaml:5: recover.optimizer \"lion\": want adamw or sgd"},
		{"version: 1\nprune:\n  sparsity: 0.5\nrecover:\n  distill: 2\n", "bad.yaml:5: recover.distill 2: want 0 … 1"},
		{"version: 1\nprune:\n  sparsity: 0.5\nrecover:\n  lr: 0.01\n  min_lr: 0.1\n", "bad.yaml:6: recover.min_lr 0.1: want 0 … 0.01 (lr)"},
		{"version: 1\nprune:\n  sparsity: 0.5\nrecover:\n  text: t.txt\n  samples: 8\n", "bad.yaml:6: recover.samples"},
	} {
		r, err := compress.ParseRecipe("bad.yaml", []byte(c.recipe))
		if err == nil {
			err = r.Normalize()
		}
		if !errors.Is(err, compress.ErrInvalid) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %s…", c.recipe, err, c.want)
		}
	}
	// "recover:" alone takes every default.
	r, err := compress.ParseRecipe("ok.yaml", []byte("version: 1\nprune:\n  sparsity: 0.5\nrecover:\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Normalize(); err != nil {
		t.Fatal(err)
	}
	if v := r.Recover; v == nil || v.Steps != 100 || v.Batch != 8 || v.Samples != 256 || *v.Distill != 1 {
		t.Errorf("defaults %+v", v)
	}

	// What only the model can tell fails in NewPlan, naming the stage.
	s260 := sharedtest.Path(t, "models/stories260k")
	for _, c := range []struct{ recipe, want string }{
		{"version: 1\nprune:\n  sparsity: 0.5\nrecover:\n  ctx: 1024\n", "bad.yaml:4: recover: ctx 1024 is longer than the model's 512 positions"},
		{"version: 1\nprune:\n  sparsity: 0.5\n  include: [model.embed_tokens.weight]\nrecover:\n  steps: 5\n", "bad.yaml:4: model.embed_tokens.weight is pruned but is not a block weight"},
	} {
		r, err := compress.ParseRecipe("bad.yaml", []byte(c.recipe))
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "out")
		p, err := compress.NewPlan(context.Background(), s260, out, r, compress.Options{Threads: 1})
		if err == nil {
			p.Close()
		}
		if !errors.Is(err, compress.ErrInvalid) || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %s…", c.recipe, err, c.want)
		}
		if _, err := os.Stat(out); !os.IsNotExist(err) {
			t.Errorf("%s written", out)
		}
	}
}
