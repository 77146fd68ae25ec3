package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/report"
)

func readReport(t *testing.T, dir string) *report.Report {
	t.Helper()
	r, err := report.Load(filepath.Join(dir, "report.json"))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func writeRecipe(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "recipe.yaml")
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestCompressMatchesCommands runs the acceptance recipe — prune 0.5, an
// SAE on the embedding, CSR storage, eval — and checks every report field
// against what prune, sae and eval print for the same settings, and the
// checkpoint against theirs.
func TestCompressMatchesCommands(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := t.TempDir()
	rec := writeRecipe(t, `version: 1
prune:
  sparsity: 0.5
sae:
  latents: 96
  k: 4
  epochs: 40
  seed: 7
store:
  format: csr
eval:
  text: `+sample+`
gates:
  max_ppl_ratio: 100
`)
	out := filepath.Join(base, "out")
	code, stdout, stderr := run(t, "compress", s260, "-o", out, "--recipe", rec)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "all gates passed") || !strings.Contains(stderr, "compress: sae:") {
		t.Errorf("stdout %q, stderr %q", stdout, stderr)
	}
	rep := readReport(t, out)
	// The same prune, then the same autoencoder, each on its own.
	pruned := filepath.Join(base, "pruned")
	var man manifest.Manifest
	json.Unmarshal([]byte(mustRun(t, "prune", s260, "-o", pruned, "--sparsity", "0.5", "--format", "csr", "--json")), &man)
	both := filepath.Join(base, "both")
	var sm manifest.Manifest
	json.Unmarshal([]byte(mustRun(t, "sae", pruned, "-o", both, "--latents", "96", "--k", "4", "--epochs", "40", "--seed", "7", "--json")), &sm)
	sameFiles(t, onlyCheckpoint(t, both), onlyCheckpoint(t, out))
	const emb = "model.embed_tokens.weight"
	if len(rep.Tensors) != len(man.Tensors) {
		t.Fatalf("%d tensors in the report, prune lists %d", len(rep.Tensors), len(man.Tensors))
	}
	for i, rt := range rep.Tensors {
		mt := man.Tensors[i]
		if rt.Name == emb {
			if rt.Encoding != "sae" || rt.BytesAfter != sm.SAE.TensorSize.After || rt.BytesBefore != sm.SAE.TensorSize.Before {
				t.Errorf("embedding row %+v, sae says %+v", rt, sm.SAE.TensorSize)
			}
			continue
		}
		if rt.Name != mt.Name || rt.Encoding != mt.Encoding || rt.BytesAfter != mt.BytesAfter || rt.BytesBefore != mt.BytesBefore ||
			*rt.Nonzeros != *mt.Nonzeros || rt.Sparsity != mt.Sparsity || rt.Pruned != mt.Pruned {
			t.Errorf("tensor %d: report %+v, prune %+v", i, rt, mt)
		}
	}
	wantAfter := man.Totals.BytesAfter - sm.SAE.TensorSize.Before + sm.SAE.TensorSize.After
	if rep.Totals.BytesAfter != wantAfter || rep.Totals.Nonzeros != man.Totals.Nonzeros || rep.Totals.TargetSparsity != man.Totals.TargetSparsity {
		t.Errorf("totals: report %+v, prune %+v and sae %+v", rep.Totals, man.Totals, sm.SAE.TensorSize)
	}
	s, row := rep.SAE, sm.SAE.Rows[0]
	if s == nil || s.Tensor != emb || s.Latents != 96 || s.K != 4 || s.BytesAfter != row.Bytes || s.FVU != row.FVU ||
		s.Cosine != row.Cosine || s.L0 != *row.L0 || s.Dead != *row.Dead {
		t.Errorf("report SAE %+v, sae row %+v", s, row)
	}
	// The same eval, on its own, of the checkpoint prune and sae made.
	ev := evalJSON(t, both, "--base", s260, "--text", sample)
	f := rep.Fid
	close := func(name string, a, b float64) {
		if math.Abs(a-b) > 1e-12*math.Max(1, math.Abs(b)) {
			t.Errorf("%s: report %v, eval %v", name, a, b)
		}
	}
	close("ppl", f.PPL, ev.PPL)
	close("base ppl", f.BasePPL, ev.KL.BasePPL)
	close("kl mean", f.KLMean, ev.KL.Mean)
	close("kl max", f.KLMax, ev.KL.Max)
	close("kl p99", f.KLP99, ev.KL.P99)
	close("kl p90", f.KLP90, ev.KL.P90)
	close("kl p50", f.KLP50, ev.KL.P50)
	close("top1", f.Top1, ev.KL.Top1)
	close("ln ppl ratio", f.LogPPLRatio, ev.KL.LogPPLRatio)
	close("bits per byte", f.BitsPerByte, *ev.BitsPerByte)
	if f.Scored != ev.Scored || f.Tokens != ev.Tokens || f.Ctx != ev.Ctx || f.Stride != ev.Stride {
		t.Errorf("fidelity %+v, eval %+v", f, ev)
	}
	if len(rep.Inputs) == 0 || rep.PeakRSS <= 0 || len(rep.Timings) < 4 || !rep.Passed || len(rep.Gates) != 1 {
		t.Errorf("report: inputs %v rss %d timings %v gates %v", rep.Inputs, rep.PeakRSS, rep.Timings, rep.Gates)
	}
	// lmsparse report re-renders the same Markdown and HTML.
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	os.Remove(filepath.Join(out, "report.md"))
	os.WriteFile(filepath.Join(out, "report.html"), nil, 0o644)
	mustRun(t, "report", out)
	md2, _ := os.ReadFile(filepath.Join(out, "report.md"))
	html2, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if string(md) != string(md2) || string(html) != string(html2) {
		t.Error("lmsparse report does not re-render the same files")
	}
}

// onlyCheckpoint copies the checkpoint files of dir (not the reports) into
// a new directory, for comparison with a prune output.
func onlyCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	out := t.TempDir()
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "report.") || e.Name() == manifest.File {
			continue
		}
		b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
		os.WriteFile(filepath.Join(out, e.Name()), b, 0o644)
	}
	return out
}

// TestCompressGates: the same run passes a loose gate and fails a tight
// one with exit 3, every file written and the gate named.
func TestCompressGates(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := t.TempDir()
	args := []string{"compress", s260, "--sparsity", "0.3", "--text", sample, "--format", "auto"}
	loose := filepath.Join(base, "loose")
	if code, _, stderr := run(t, append(args, "-o", loose, "--max-kl", "1", "--min-top1", "0.5", "--max-ppl-ratio", "2")...); code != 0 {
		t.Fatalf("loose gates: exit %d: %s", code, stderr)
	}
	tight := filepath.Join(base, "tight")
	code, stdout, stderr := run(t, append(args, "-o", tight, "--max-kl", "0.01", "--min-top1", "0.5")...)
	if code != exitGate {
		t.Fatalf("tight gate: exit %d, want 3: %s", code, stderr)
	}
	if !strings.Contains(stderr, "gate max_kl failed") || strings.Contains(stderr, "gate min_top1 failed") || !strings.Contains(stdout, "gates failed: max_kl") {
		t.Errorf("stdout %q stderr %q", stdout, stderr)
	}
	for _, f := range []string{"model.safetensors", "config.json", "lmsparse.json", "report.json", "report.md", "report.html"} {
		if _, err := os.Stat(filepath.Join(tight, f)); err != nil {
			t.Errorf("after a failed gate %s is missing", f)
		}
	}
	rep := readReport(t, tight)
	if rep.Passed || len(rep.FailedGates()) != 1 || rep.FailedGates()[0] != "max_kl" {
		t.Errorf("report gates %+v passed %v", rep.Gates, rep.Passed)
	}
	md, _ := os.ReadFile(filepath.Join(tight, "report.md"))
	html, _ := os.ReadFile(filepath.Join(tight, "report.html"))
	if !strings.Contains(string(md), "| max_kl | <= 0.01 |") || !strings.Contains(string(md), "❌ FAIL") || !strings.Contains(string(html), `class="fail">FAIL`) {
		t.Error("the reports do not name the failing gate")
	}
}

func TestCompressSweep(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, "compress", s260, "-o", out, "--sparsity", "0.3", "--text", sample, "--sweep", "0.1,0.3,0.5", "--max-ppl-ratio", "1.6", "--format", "auto")
	rep := readReport(t, out)
	if len(rep.Sweep) != 3 || rep.Best == nil || *rep.Best != 0.3 {
		t.Fatalf("sweep %+v best %v", rep.Sweep, rep.Best)
	}
	for i := 1; i < 3; i++ {
		if rep.Sweep[i].KLMean <= rep.Sweep[i-1].KLMean || rep.Sweep[i].PPL <= rep.Sweep[i-1].PPL || rep.Sweep[i].Bytes >= rep.Sweep[i-1].Bytes {
			t.Errorf("sweep not monotone: %+v", rep.Sweep)
		}
	}
	// The main run at 0.3 and the sweep point at 0.3 agree.
	if p := rep.Sweep[1]; math.Abs(p.PPL-rep.Fid.PPL) > 1e-9 || math.Abs(p.KLMean-rep.Fid.KLMean) > 1e-9 {
		t.Errorf("sweep point 0.3 %+v differs from the run %+v", p, rep.Fid)
	}
	html, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if strings.Count(string(html), "<svg") != 5 {
		t.Error("report.html should hold the sparsity, bytes, perplexity, KL and top-1 charts")
	}
	ents, _ := os.ReadDir(filepath.Dir(out))
	if len(ents) != 1 {
		t.Errorf("sweep left files beside the output: %v", ents)
	}
}

// TestCompressSweepMethods: --sweep-methods compares methods at every
// sweep sparsity; the headline ends with the comparison at the run's
// sparsity; a bad name is a usage error.
func TestCompressSweepMethods(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	out := filepath.Join(t.TempDir(), "out")
	args := []string{"compress", s260, "-o", out, "--sparsity", "0.5", "--method", "wanda", "--calib-samples", "8", "--calib-len", "64",
		"--text", sample, "--sweep", "0.3,0.5"}
	stdout := mustRun(t, append(args, "--sweep-methods", "magnitude,wanda")...)
	rep := readReport(t, out)
	if len(rep.Sweep) != 4 || rep.Sweep[0].Method != "magnitude" || rep.Sweep[3].Method != "wanda" {
		t.Fatalf("sweep %+v", rep.Sweep)
	}
	if !strings.Contains(stdout, "; at 50% sparsity, perplexity ×") || !strings.HasSuffix(strings.TrimSpace(stdout), " with magnitude") {
		t.Errorf("headline %q", stdout)
	}
	if code, _, stderr := run(t, append(args, "--sweep-methods", "wanda,obs", "--force")...); code != exitBadArgs || !strings.Contains(stderr, `sweep_methods[1] "obs"`) {
		t.Errorf("bad method: exit %d, stderr %q", code, stderr)
	}
}

func TestCompressRecipeErrors(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	base := t.TempDir()
	tests := []struct {
		recipe, want string
	}{
		{"version: 1\nprune:\n  sparsity: 0.5\n  sparsty: 0.2\n", ":4: unknown key sparsty"},
		{"version: 1\nprune:\n  sparsity: lots\n", "recipe.yaml:3: cannot unmarshal !!str `lots` into float64"},
		{"version: 1\nprune:\n  sparsity: 0.5\ngates:\n  max_kl: 0.1\n", "recipe.yaml:4: gates need an eval stage with text"},
		{"version: 1\nprune:\n  sparsity: 0.5\neval:\n  ctx: 128\n", "recipe.yaml:4: the eval stage needs text"},
		{"prune:\n  sparsity: 0.5\n", "version 0"},
		{"version: 1\nprune:\n  sparsity: 1.5\n", "recipe.yaml:3: sparsity 1.5 is outside [0, 1)"},
		{"version: 1\nprune:\n  pattern: 2-4\n", "recipe.yaml:3: prune.pattern \"2-4\""},
		{"version: 1\nprune:\n  sparsity: 0.5\nstore:\n  format: zip\n", "recipe.yaml:5: store.format \"zip\""},
		{"version: 1\n", "nothing to do"},
		{"version: 1\nprune:\n  sparsity: 0.5\n  overrides:\n    - match: 'model.layers.*.mlp.*'\n      sparsity: 2\n", "recipe.yaml:6: override sparsity 2"},
		{"version: 1\nprune:\n  sparsity: 0.5\n---\nversion: 1\n", "one YAML document"},
		{"version: 1\nprune:\n  sparsity: 0.5\nsweep: [0.3]\nsweep_methods: [magnitude, obs]\n", "recipe.yaml:5: sweep_methods[1] \"obs\": want magnitude, wanda or sparsegpt"},
	}
	for i, tt := range tests {
		rec := filepath.Join(base, "recipe.yaml")
		os.WriteFile(rec, []byte(tt.recipe), 0o644)
		out := filepath.Join(base, "out")
		code, _, stderr := run(t, "compress", s260, "-o", out, "--recipe", rec)
		if code != exitBadArgs || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("case %d: exit %d, stderr %q; want exit 2 and %q", i, code, stderr, tt.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("case %d: output created", i)
		}
	}
}

func TestCompressPrintRecipe(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	rec := writeRecipe(t, "version: 1\nprune:\n  sparsity: 0.5\n  overrides:\n    - match: 'model.layers.0.*'\n      sparsity: 0.2\nstore:\n  format: csr\n")
	out := mustRun(t, "compress", s260, "--recipe", rec, "--print-recipe", "--sparsity", "0.6", "--format", "auto", "--max-kl", "0.3", "--text", "x.txt")
	r, err := compress.ParseRecipe("printed", []byte(out))
	if err != nil {
		t.Fatalf("printed recipe does not parse: %v\n%s", err, out)
	}
	if *r.Prune.Sparsity != 0.6 || r.Prune.Method != "magnitude" || r.Prune.Scope != "tensor" || len(r.Prune.Overrides) != 1 ||
		r.Store.Format != "auto" || *r.Gates.MaxKL != 0.3 || r.Eval.Text != "x.txt" {
		t.Errorf("effective recipe:\n%s", out)
	}
}

// TestCompressInterrupted: cancelling a run (as SIGINT does) leaves no
// file under OUT's final name and nothing beside it.
func TestCompressInterrupted(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := t.TempDir()
	out := filepath.Join(base, "out")
	sweep := strings.TrimSuffix(strings.Repeat("0.1,0.2,0.3,0.4,0.5,0.6,", 20), ",")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(700*time.Millisecond, cancel)
	var so, se strings.Builder
	code := Main(ctx, []string{"compress", s260, "-o", out, "--sparsity", "0.5", "--text", sample, "--sweep", sweep, "--format", "csr"}, &so, &se)
	if code != exitFailure || !strings.Contains(se.String(), "lmsparse: interrupted by a signal") {
		t.Fatalf("exit %d, stderr %q", code, se.String())
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("an interrupted run left %v", names)
	}
}

// TestReportInChromium loads report.html in headless Chromium (Debian's
// chromium package; skipped when it is absent) and checks the rendered
// page: the headline, the tables and the four charts.
func TestReportInChromium(t *testing.T) {
	chromium, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("skipping: chromium not installed (apt-get install chromium)")
	}
	s260 := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	out := filepath.Join(t.TempDir(), "out")
	mustRun(t, "compress", s260, "-o", out, "--sparsity", "0.3", "--text", sample, "--sweep", "0.1,0.3,0.5", "--max-kl", "0.5")
	page := "file://" + filepath.Join(out, "report.html")
	flags := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync", "--user-data-dir=" + t.TempDir()}
	dom, err := exec.Command(chromium, append(flags, "--dump-dom", page)...).Output()
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	s := string(dom)
	for _, want := range []string{"lmsparse: ", "all gates passed", `id="layer-sparsity"`, `id="sweep-ppl"`, `id="sweep-kl"`, `id="sweep-top1"`, `id="layers"`, "Highest sparsity passing every gate"} {
		if !strings.Contains(s, want) {
			t.Errorf("rendered page lacks %q", want)
		}
	}
	if n := strings.Count(s, "<svg"); n != 5 {
		t.Errorf("rendered page has %d SVG charts, want 5", n)
	}
	if shot := os.Getenv("LMSPARSE_SCREENSHOT"); shot != "" {
		exec.Command(chromium, append(flags, "--screenshot="+shot, "--window-size=1280,2400", page)...).Run()
	}
}
