package compress_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/report"
)

// TestSweepMethodsRecipe: sweep_methods is checked (names, duplicates, a
// sweep, the prune stage's own method, unstructured pruning, scope), and
// Normalize writes the effective list and the calibration defaults of
// the listed methods, idempotently.
func TestSweepMethodsRecipe(t *testing.T) {
	const head = "version: 1\neval:\n  text: t.txt\n"
	bad := []struct{ recipe, want string }{
		{"prune:\n  sparsity: 0.5\nsweep: [0.3]\nsweep_methods: [magnitude, obs]\n", `bad.yaml:7: sweep_methods[1] "obs": want magnitude, wanda or sparsegpt`},
		{"prune:\n  sparsity: 0.5\nsweep: [0.3]\nsweep_methods: [Wanda, magnitude]\n", `sweep_methods[0] "Wanda"`},
		{"prune:\n  sparsity: 0.5\nsweep: [0.3]\nsweep_methods: [magnitude, wanda, magnitude]\n", "lists magnitude twice"},
		{"prune:\n  sparsity: 0.5\nsweep_methods: [magnitude, wanda]\n", "give a sweep too"},
		{"prune:\n  method: wanda\n  sparsity: 0.5\nsweep: [0.3]\nsweep_methods: [magnitude, sparsegpt]\n", "lacks the prune stage's method wanda"},
		{"prune:\n  method: structured\n  structured: rows\n  sparsity: 0.5\nsweep: [0.3]\nsweep_methods: [magnitude]\n", "the prune stage is structured"},
		{"prune:\n  sparsity: 0.5\n  scope: global\nsweep: [0.3]\nsweep_methods: [magnitude, wanda]\n", "scope global does not apply"},
		{"prune:\n  pattern: '2:4'\nsweep: [0.3]\nsweep_methods: [magnitude]\n", "an N:M pattern fixes"},
		{"sae: {}\nsweep_methods: [magnitude]\n", "give a prune stage and a sweep"},
		{"prune:\n  sparsity: 0.5\n  calib: {samples: 8}\nsweep: [0.3]\nsweep_methods: [magnitude]\n", "calib, owl, damp and block_size tune"},
	}
	for i, tt := range bad {
		r, err := compress.ParseRecipe("bad.yaml", []byte(head+tt.recipe))
		if err == nil {
			err = r.Normalize()
		}
		if !errors.Is(err, compress.ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("case %d: err %v, want ErrInvalid and %q", i, err, tt.want)
		}
	}

	// Default: the prune stage's method alone, written back.
	r, err := compress.ParseRecipe("ok.yaml", []byte(head+"prune:\n  method: sparsegpt\n  sparsity: 0.5\nsweep: [0.3, 0.5]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Normalize(); err != nil || !slices.Equal(r.SweepMethods, []string{"sparsegpt"}) {
		t.Errorf("default sweep_methods %v (err %v)", r.SweepMethods, err)
	}
	// A magnitude run comparing calibrated methods takes their calib keys
	// and defaults; normalizing again changes nothing.
	r, err = compress.ParseRecipe("ok.yaml", []byte(head+"prune:\n  sparsity: 0.5\n  calib: {samples: 8}\nsweep: [0.3, 0.5]\n"))
	if err != nil {
		t.Fatal(err)
	}
	methods := []string{"magnitude", " sparsegpt"}
	r.Apply(compress.Override{SweepMethods: &methods})
	for range 2 {
		if err := r.Normalize(); err != nil {
			t.Fatal(err)
		}
	}
	p := r.Prune
	if !slices.Equal(r.SweepMethods, []string{"magnitude", "sparsegpt"}) || p.Method != "magnitude" || p.Calib == nil ||
		p.Calib.Samples != 8 || p.Calib.Len == 0 || p.Calib.Source != "self" || p.Damp != 0.01 || p.BlockSize != 128 {
		t.Errorf("normalized: sweep_methods %v, prune %+v calib %+v", r.SweepMethods, p, p.Calib)
	}
	y, err := r.YAML()
	if err != nil || !strings.Contains(string(y), "sweep_methods:\n  - magnitude\n  - sparsegpt\n") {
		t.Errorf("printed recipe (err %v):\n%s", err, y)
	}
}

// runRecipe runs a recipe on stories260k and returns its report.
func runRecipe(t *testing.T, s260, yaml string) *report.Report {
	t.Helper()
	r, err := compress.ParseRecipe("sweep.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	plan, err := compress.NewPlan(ctx, s260, filepath.Join(t.TempDir(), "out"), r, compress.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	rep, err := plan.Run(ctx)
	if err != nil && !errors.Is(err, compress.ErrGateFailed) {
		t.Fatal(err)
	}
	return rep
}

// TestSweepMethods compares magnitude, wanda and sparsegpt in the sweep
// of a magnitude run on stories260k: a point per sparsity and method, in
// sweep order; magnitude's points are exactly those of a plain magnitude
// sweep; the calibrated methods beat magnitude; the best passing sparsity
// is magnitude's although wanda passes higher; the headline compares the
// three at the run's sparsity, best first; report.md and report.html
// show the method.
func TestSweepMethods(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	text := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	common := "version: 1\nprune:\n  sparsity: 0.3\n  calib: {samples: 8, len: 64, seed: 3}\neval:\n  text: " + text + "\ngates:\n  max_ppl_ratio: 1.4\nsweep: [0.1, 0.3, 0.5]\n"
	plain := runRecipe(t, s260, strings.Replace(common, "  calib: {samples: 8, len: 64, seed: 3}\n", "", 1))
	rep := runRecipe(t, s260, common+"sweep_methods: [magnitude, wanda, sparsegpt]\n")

	if len(plain.Sweep) != 3 || len(rep.Sweep) != 9 {
		t.Fatalf("%d plain points, %d compared points", len(plain.Sweep), len(rep.Sweep))
	}
	by := map[string][]report.Point{}
	for i, p := range rep.Sweep {
		want := []string{"magnitude", "wanda", "sparsegpt"}[i%3]
		if p.Method != want || p.Sparsity != []float64{0.1, 0.3, 0.5}[i/3] {
			t.Errorf("point %d: %s at %g, want %s", i, p.Method, p.Sparsity, want)
		}
		by[p.Method] = append(by[p.Method], p)
	}
	for i, p := range plain.Sweep {
		m := by["magnitude"][i]
		if p.Method != "magnitude" || m.PPL != p.PPL || m.KLMean != p.KLMean || m.Top1 != p.Top1 || m.Bytes != p.Bytes || *m.Passed != *p.Passed {
			t.Errorf("magnitude point %d %+v differs from the plain sweep's %+v", i, m, p)
		}
	}
	for i := 1; i < 3; i++ { // 30% and 50%
		if w, s, m := by["wanda"][i], by["sparsegpt"][i], by["magnitude"][i]; w.PPLRatio >= m.PPLRatio || s.PPLRatio >= m.PPLRatio {
			t.Errorf("at %g: wanda ×%.3f, sparsegpt ×%.3f, magnitude ×%.3f", m.Sparsity, w.PPLRatio, s.PPLRatio, m.PPLRatio)
		}
	}
	// Magnitude passes ×1.4 at 0.1 only; wanda passes at 0.3 too, which
	// does not count: the run is magnitude.
	if !*by["wanda"][1].Passed || *by["magnitude"][1].Passed {
		t.Fatalf("gate ×1.4 at 0.3: wanda ×%.4f, magnitude ×%.4f", by["wanda"][1].PPLRatio, by["magnitude"][1].PPLRatio)
	}
	if rep.Best == nil || *rep.Best != 0.1 || plain.Best == nil || *plain.Best != 0.1 {
		deref := func(p *float64) any {
			if p == nil {
				return nil
			}
			return *p
		}
		t.Errorf("best %v, plain best %v; want 0.1 (magnitude's)", deref(rep.Best), deref(plain.Best))
	}

	h := rep.Headline()
	c := rep.Comparison()
	if len(c) != 3 || c[2].Method != "magnitude" || c[0].PPLRatio > c[1].PPLRatio {
		t.Fatalf("comparison %+v", c)
	}
	want := "; at 30% sparsity, perplexity ×" + fmtRatio(c[0].PPLRatio) + " with " + c[0].Method + ", ×" + fmtRatio(c[1].PPLRatio) + " with " + c[1].Method +
		", ×" + fmtRatio(c[2].PPLRatio) + " with magnitude — gates failed: max_ppl_ratio"
	if !strings.HasSuffix(h, want) || strings.Contains(h, "\n") {
		t.Errorf("headline %q\nwant it to end with %q", h, want)
	}
	if strings.Contains(plain.Headline(), "sparsity,") {
		t.Errorf("a sweep of one method compares nothing: %q", plain.Headline())
	}
	md := string(rep.Markdown())
	for _, w := range []string{"| sparsity | method |", "| 0.3 | wanda |", "| 0.5 | sparsegpt |", "Highest sparsity passing every gate (magnitude, the run's method): **0.1**"} {
		if !strings.Contains(md, w) {
			t.Errorf("report.md lacks %q", w)
		}
	}
	page, err := os.ReadFile(filepath.Join(rep.Output, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{">magnitude</text>", ">wanda</text>", ">sparsegpt</text>", ">original (dense)</text>", "<td>sparsegpt</td>"} {
		if !strings.Contains(strings.ReplaceAll(string(page), "\n", ""), w) {
			t.Errorf("report.html lacks %q", w)
		}
	}
}

func fmtRatio(x float64) string { return fmt.Sprintf("%.3f", x) }
