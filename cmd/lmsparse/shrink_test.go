package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// The demo model loses a quarter of its MLP channels and a KV group of
// its heads for real, and eval runs the smaller model.
func TestPruneShrinkDemo(t *testing.T) {
	demo := filepath.Join("..", "..", "testdata", "demo", "model")
	out := filepath.Join(t.TempDir(), "small")
	code, stdout, stderr := run(t, "prune", demo, "-o", out, "--structured", "mlp,heads", "--sparsity", "0.5", "--shrink")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, want := range []string{"model.layers.0.mlp.down_proj.weight", "[128 384]->[128 192]", "[128 128]->[64 128]",
		"units removed, shapes and config.json shrunk (intermediate_size 384 -> 192, num_attention_heads 4 -> 2, num_key_value_heads 2 -> 1)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("report lacks %q:\n%s", want, stdout)
		}
	}
	lm, err := checkpoint.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	c := lm.Config
	lm.Close()
	if c.IntermediateSize != 192 || c.NumHeads != 2 || c.NumKVHeads != 1 || c.HeadDim != 32 {
		t.Errorf("config %+v", *c)
	}
	var man manifest.Manifest
	b, _ := os.ReadFile(filepath.Join(out, manifest.File))
	if err := json.Unmarshal(b, &man); err != nil || man.Shrink == nil || man.Totals.Ratio < 1.3 {
		t.Errorf("manifest: %v, %+v", err, man.Totals)
	}
	code, stdout, stderr = run(t, "eval", out, "--base", demo, "--text", filepath.Join("..", "..", "testdata", "demo", "heldout.txt"), "--max-tokens", "600")
	if code != 0 || !strings.Contains(stdout, "perplexity") {
		t.Fatalf("eval exit %d: %s%s", code, stdout, stderr)
	}
	// Zeroing keeps every shape and says so.
	code, stdout, stderr = run(t, "prune", demo, "-o", out+"-zero", "--structured", "mlp", "--sparsity", "0.25")
	if code != 0 || !strings.Contains(stdout, "every shape is kept (--shrink removes them)") || strings.Contains(stdout, "->[") {
		t.Errorf("zeroing: exit %d: %s%s", code, stdout, stderr)
	}
	code, stdout, _ = run(t, "prune", demo, "-o", out+"-rows", "--structured", "rows", "--sparsity", "0.25")
	if code != 0 || !strings.Contains(stdout, "structured rows: the pruned rows are zeros and every shape is kept") {
		t.Errorf("rows: exit %d: %s", code, stdout)
	}
}

func TestPruneShrinkRefusals(t *testing.T) {
	tmp := t.TempDir()
	gpt2 := filepath.Join(tmp, "gpt2")
	if err := gen.WriteCheckpoint(gpt2, gen.GPT2(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(tmp, "out")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--structured", "heads", "--sparsity", "0.5", "--shrink"}, "gpt2 takes its head size from n_embd/n_head"},
		{[]string{"--structured", "rows", "--sparsity", "0.5", "--shrink"}, "can only be zeroed"},
		{[]string{"--sparsity", "0.5", "--shrink"}, "--structured"},
		{[]string{"--structured", "mlp", "--sparsity", "0.5", "--shrink", "--format", "csr"}, "not --pattern, --include, --exclude, --format, sparsegpt, --owl, --independent, --layers or --shard"},
		{[]string{"--structured", "mlp", "--shrink"}, "takes --sparsity S"},
		{[]string{"--structured", "mlp", "--sparsity", "0.999", "--shrink"}, "would remove all 64 MLP channels"},
	} {
		code, _, stderr := run(t, append([]string{"prune", gpt2, "-o", out}, c.args...)...)
		if code != exitBadArgs || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q, want 2 and %q", c.args, code, stderr, c.want)
		}
		if _, err := os.Stat(out); err == nil {
			t.Fatalf("%v: output written", c.args)
		}
	}
	// gpt2's MLP channels can go.
	code, stdout, stderr := run(t, "prune", gpt2, "-o", out, "--structured", "mlp", "--sparsity", "0.5", "--shrink")
	if code != 0 || !strings.Contains(stdout, "n_inner 64 -> 32") {
		t.Errorf("gpt2 mlp: exit %d: %s%s", code, stdout, stderr)
	}
}

// compress runs a prune stage of whole units (with the SAE stage) and
// evaluates the smaller model; sweeps, recovery and sparse stores refuse.
func TestCompressShrink(t *testing.T) {
	demo := filepath.Join("..", "..", "testdata", "demo", "model")
	text := filepath.Join("..", "..", "testdata", "demo", "heldout.txt")
	out := filepath.Join(t.TempDir(), "out")
	code, _, stderr := run(t, "compress", demo, "-o", out, "--structured", "mlp", "--sparsity", "0.25", "--shrink",
		"--text", text, "--max-tokens", "600", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	if !strings.Contains(string(md), "Structured pruning: mlp: units removed, shapes and config.json shrunk (intermediate_size 384 -> 288)") {
		t.Errorf("report.md:\n%s", md)
	}
	lm, err := checkpoint.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	if lm.Config.IntermediateSize != 288 {
		t.Errorf("intermediate_size %d", lm.Config.IntermediateSize)
	}
	lm.Close()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--sweep", "0.1,0.2"}, "has no sweep"},
		{[]string{"--format", "auto"}, "store.format must be dense"},
		{[]string{"--include", "model.layers.0.*"}, "no scope, include, exclude or overrides"},
	} {
		args := append([]string{"compress", demo, "-o", out + "-x", "--structured", "mlp", "--sparsity", "0.25", "--shrink", "--text", text}, c.args...)
		code, _, stderr := run(t, args...)
		if code != exitBadArgs || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, %q, want 2 and %q", c.args, code, stderr, c.want)
		}
	}
	// --calib (prune.calib) scores the units by their activations.
	code, _, stderr = run(t, "compress", demo, "-o", out+"-w", "--structured", "mlp", "--sparsity", "0.25", "--shrink",
		"--calib", "self", "--calib-samples", "4", "--calib-len", "32")
	if code != 0 {
		t.Fatalf("calib: exit %d: %s", code, stderr)
	}
	if b, _ := os.ReadFile(filepath.Join(out+"-w", manifest.File)); !strings.Contains(string(b), "structured mlp 25% by activations (removed)") {
		t.Errorf("lmsparse.json lacks the activation score: %.400s", b)
	}
	code, _, stderr = run(t, "compress", demo, "-o", out+"-y", "--structured", "rows", "--sparsity", "0.25", "--shrink")
	if code != exitBadArgs || !strings.Contains(stderr, "rows and cols can only be zeroed") {
		t.Errorf("rows --shrink: exit %d, %q", code, stderr)
	}
}

// --method wanda scores units by their activations on calibration
// windows; sparsegpt and OWL do not apply to whole units.
func TestPruneShrinkWanda(t *testing.T) {
	demo := filepath.Join("..", "..", "testdata", "demo", "model")
	out := filepath.Join(t.TempDir(), "w")
	code, stdout, stderr := run(t, "prune", demo, "-o", out, "--structured", "mlp", "--sparsity", "0.25", "--shrink",
		"--method", "wanda", "--calib-samples", "4", "--calib-len", "32", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var man manifest.Manifest
	if err := json.Unmarshal([]byte(stdout), &man); err != nil || man.Shrink == nil || !strings.Contains(man.Method, "by activations") {
		t.Fatalf("manifest %v: %+v", err, man.Shrink)
	}
	for _, m := range []string{"sparsegpt"} {
		code, _, stderr = run(t, "prune", demo, "-o", out+"-x", "--structured", "mlp", "--sparsity", "0.25", "--shrink", "--method", m)
		if code != exitBadArgs || !strings.Contains(stderr, "--method magnitude or wanda") {
			t.Errorf("%s: exit %d, %q", m, code, stderr)
		}
	}
}
