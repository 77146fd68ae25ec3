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
	// 2:4 on a llama (Linear weights [out, in]): sparse-24-bitmask and
	// sparse-bitmask with the 2:4 structure.
	llama24 := filepath.Join(base, "llama24")
	gen.WriteCheckpoint(llama24, gen.Llama(tensor.F32, 1))
	args = []string{"-c", script}
	for _, f := range []string{"dense", "24bitmask", "bitmask", "csr"} {
		out := filepath.Join(base, "l24-"+f)
		mustRun(t, "prune", llama24, "-o", out, "--pattern", "2:4", "--format", f)
		args = append(args, filepath.Join(out, "model.safetensors"))
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("the reader of docs/FORMAT.md failed on 2:4 outputs: %v\n%s", err, out)
	}

	// Sparse-autoencoder checkpoints (BF16 GPT-2, F32 llama): the reader
	// rebuilds what "lmsparse decompress" does, the SAE tensor to one unit
	// in the last place (summation order), every other tensor exactly.
	saeScript := code + `
import sys
for sae_file, dense_file, name in zip(*[iter(sys.argv[1:])] * 3):
    ts, ref = densify(read_safetensors(sae_file)), read_safetensors(dense_file)
    assert sorted(ts) == sorted(ref), (sae_file, set(ts) ^ set(ref))
    for k in ref:
        assert ts[k].shape == ref[k].shape and ts[k].dtype == ref[k].dtype, (sae_file, k)
        if k != name:
            assert ts[k].tobytes() == ref[k].tobytes(), (sae_file, k)
            continue
        a, b = f64(ts[k]), f64(ref[k])
        ulp = 2.0 ** -7 if ts[k].dtype == np.uint16 else 2.0 ** -23
        assert np.all(np.abs(a - b) <= ulp * np.abs(b) + 1e-30), (sae_file, k, np.abs(a - b).max())
`
	args = []string{"-c", saeScript}
	llama := filepath.Join(base, "llama")
	gen.WriteCheckpoint(llama, gen.Llama(tensor.F32, 1))
	for _, c := range []struct{ in, name string }{{in, "transformer.wte.weight"}, {llama, "model.embed_tokens.weight"}} {
		out, dense := filepath.Join(base, "sae-"+filepath.Base(c.in)), filepath.Join(base, "sae-dense-"+filepath.Base(c.in))
		mustRun(t, "sae", c.in, "-o", out, "--latents", "24", "--k", "3", "--epochs", "3", "--threads", "1")
		mustRun(t, "decompress", out, "-o", dense)
		args = append(args, filepath.Join(out, "model.safetensors"), filepath.Join(dense, "model.safetensors"), c.name)
	}
	if out, err := exec.Command(py, args...).CombinedOutput(); err != nil {
		t.Fatalf("the reader of docs/FORMAT.md failed on SAE checkpoints: %v\n%s", err, out)
	}
}
