package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// demoModel is the committed demo checkpoint (testdata/demo).
var (
	demoModel   = filepath.Join("..", "..", "testdata", "demo", "model")
	demoHeldout = filepath.Join("..", "..", "testdata", "demo", "heldout.txt")
)

// TestMessages: bad values and typos are usage errors (exit 2, one line)
// that name the flag or key and say what is expected.
func TestMessages(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	onnx := filepath.Join(dir, "m.onnx")
	os.WriteFile(onnx, []byte("x"), 0o644)
	recipe := filepath.Join(dir, "r.yaml")
	os.WriteFile(recipe, []byte("version: 1\nprune: {sparsity: 0.5}\neval: {text: "+demoHeldout+"}\ngates:\n  max_kl: -1\n"), 0o644)
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"compress", demoModel, "-o", out, "--sparsity", "0.5", "--text", demoHeldout, "--min-top1", "70"}, []string{"--min-top1", "70", "[0, 1]"}},
		{[]string{"compress", demoModel, "-o", out, "--sparsity", "0.5", "--text", demoHeldout, "--max-ppl-ratio", "0.9"}, []string{"--max-ppl-ratio", "at least 1"}},
		{[]string{"compress", demoModel, "-o", out, "--recipe", recipe}, []string{"r.yaml:5", "max_kl", "0 or more"}},
		{[]string{"compress", demoModel, "-o", out, "--sparsity", "0.5", "--k", "4"}, []string{"--k", "--sae"}},
		{[]string{"eval", demoModel, "--text", demoHeldout, "--base", demoModel + "-typo"}, []string{"--base", "typo", "the base model", "no such file"}},
		{[]string{"compress", onnx, "-o", out, "--sparsity", "0.5"}, []string{"m.onnx", "ONNX", "inspect, prune, decompress and eval"}},
		{[]string{"sae", onnx, "-o", out}, []string{"ONNX", "Hugging Face checkpoint"}},
	} {
		code, stdout, stderr := run(t, tt.args...)
		if code != exitBadArgs || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and one line", tt.args, code, stdout, stderr)
		}
		for _, w := range tt.want {
			if !strings.Contains(stderr, w) {
				t.Errorf("%v: %q lacks %q", tt.args, stderr, w)
			}
		}
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("a refused run wrote its output")
	}
}

// TestDenseHeadline: a prune stored dense says what was done and what
// --format auto would write instead of "1.00× smaller"; the tensors
// table calls the SAE-compressed embedding "sae", not "untouched".
func TestDenseHeadline(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, "compress", demoModel, "-o", out, "--sparsity", "0.5", "--sae", "--epochs", "1", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{"50% of the pruned tensors' weights zeroed, stored dense as a drop-in", "--format auto would write"} {
		if !strings.Contains(stdout, w) {
			t.Errorf("headline %q lacks %q", stdout, w)
		}
	}
	if strings.Contains(stdout, "1.00×") {
		t.Errorf("headline %q", stdout)
	}
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(string(page), "<td>model.embed_tokens.weight</td><td>BF16</td><td>[512 128]</td><td>sae</td>") {
		t.Error("report.html's tensors table does not label the embedding sae")
	}
}

// TestGrowthWarning: a layout that makes tensors bigger than dense is
// said on stderr, in report.md and in report.html, and the headline says
// the model got larger.
func TestGrowthWarning(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, "compress", demoModel, "-o", out, "--structured", "cols", "--sparsity", "0.3", "--format", "csr", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stdout, "× LARGER") {
		t.Errorf("headline %q", stdout)
	}
	const w = "are larger in their layout than dense"
	md, _ := os.ReadFile(filepath.Join(out, "report.md"))
	page, _ := os.ReadFile(filepath.Join(out, "report.html"))
	if !strings.Contains(stderr, "warning: ") || !strings.Contains(stderr, w) || !strings.Contains(string(md), w) || !strings.Contains(string(page), w) {
		t.Errorf("the growth warning is missing: stderr %q", stderr)
	}
}
