package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// TestFormatDocReader runs the numpy reader printed in docs/FORMAT.md on
// CSR, bitmask and auto outputs and checks that it rebuilds the dense
// output exactly, so the document cannot drift from the code. It needs
// python3 with numpy (.ci/run installs Debian's python3-numpy).
func TestFormatDocReader(t *testing.T) {
	// The first python3 that has numpy: the one on PATH, or Debian's.
	py, err := "", exec.ErrNotFound
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		if p, lerr := exec.LookPath(cand); lerr == nil {
			if err = exec.Command(p, "-c", "import numpy").Run(); err == nil {
				py = p
				break
			}
		}
	}
	if py == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("python3 with numpy is needed in CI: %v", err)
		}
		t.Skipf("skipping: python3 with numpy not available (%v)", err)
	}
	doc, err := os.ReadFile("../../docs/FORMAT.md")
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(doc), "## A reader in numpy")
	_, code, ok2 := strings.Cut(after, "```python\n")
	code, _, ok3 := strings.Cut(code, "```")
	if !ok || !ok2 || !ok3 {
		t.Fatal("docs/FORMAT.md has no python reader section")
	}
	base := t.TempDir()
	in := filepath.Join(base, "in")
	gen.WriteCheckpoint(in, gen.GPT2(tensor.BF16, 1))
	script := code + `
import sys
dense = read_safetensors(sys.argv[1])
for d in sys.argv[2:]:
    ts = densify(read_safetensors(d))
    assert sorted(ts) == sorted(dense), (d, set(ts) ^ set(dense))
    for k in dense:
        assert ts[k].shape == dense[k].shape and ts[k].tobytes() == dense[k].tobytes(), (d, k)
`
	args := []string{"-c", script}
	for _, f := range []string{"dense", "csr", "bitmask", "auto"} {
		out := filepath.Join(base, f)
		mustRun(t, "prune", in, "-o", out, "--sparsity", "0.6", "--format", f, "--include", "transformer.wte.weight")
		args = append(args, filepath.Join(out, "model.safetensors"))
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("the reader of docs/FORMAT.md failed: %v\n%s", err, out)
	}
}
