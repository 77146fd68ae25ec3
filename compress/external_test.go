package compress_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// TestExternalModule builds and runs testdata/external, a Go program in a
// module of its own that imports lmsparse (through a replace directive)
// and uses only its public API: prune a checkpoint into a new directory,
// run a recipe given as YAML, score a safetensors and an ONNX model
// against a base.
func TestExternalModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a separate module")
	}
	shared := filepath.Dir(sharedtest.Path(t, "models/stories260k/config.json")) // skips without ../shared
	shared = filepath.Dir(filepath.Dir(shared))
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// A copy of the program, its replace directive pointing at this
	// checkout, so the test writes nothing into the repository.
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(repo, "testdata/external/main.go"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := os.ReadFile(filepath.Join(repo, "testdata/external/go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod = []byte(strings.Replace(string(mod), "=> ../..", "=> "+repo, 1))
	sum, err := os.ReadFile(filepath.Join(repo, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"main.go": src, "go.mod": mod, "go.sum": sum} {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	bin := filepath.Join(dir, "lmsparse-user")
	run("build", "-o", bin, ".")
	cmd := exec.Command(bin, shared, t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", bin, err, out)
	}
	want := `prune: 35 pruned tensors, sparsity 0.5000
compress: passed true, ppl ratio 1.0941
eval pruned: ppl 66.4803, KL 2.4515, top-1 0.2373
eval model.onnx: ppl 6.1242, KL 0.0000, top-1 1.0000
`
	if string(out) != want {
		t.Errorf("output:\n%s\nwant:\n%s", out, want)
	}
}
