package sparsify

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// TestScanShares runs a job's steps by hand to see which path the input
// scan took: with the file in name order every dense target's bytes come
// from the prefetcher; in reverse order none do, and the output is the
// same.
func TestScanShares(t *testing.T) {
	base := t.TempDir()
	inOrder := filepath.Join(base, "in-order")
	if err := gen.WriteCheckpoint(inOrder, gen.Llama(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	reversed := filepath.Join(base, "reversed")
	if err := gen.WriteReversedLlama(reversed); err != nil {
		t.Fatal(err)
	}
	var outputs [][]byte
	for _, c := range []struct {
		dir      string
		wantLent bool
	}{{inOrder, true}, {reversed, false}} {
		m, err := checkpoint.Open(c.dir)
		if err != nil {
			t.Fatal(err)
		}
		j, err := PlanCheckpoint(t.Context(), m, Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}})
		if err != nil {
			t.Fatal(err)
		}
		if err := j.prepare(t.Context()); err != nil {
			t.Fatal(err)
		}
		entries, pf, err := pruneEntries(t.Context(), m, j.targets, j.buf)
		if err != nil {
			t.Fatal(err)
		}
		pf.plan(entries, 0)
		bg := startBackground(t.Context(), m, j.targets, pf)
		pf.run(t.Context())
		out := filepath.Join(c.dir+"-out", "model.safetensors")
		os.MkdirAll(filepath.Dir(out), 0o755)
		if err := safetensors.WriteFile(out, nil, entries); err != nil {
			t.Fatal(err)
		}
		res, err := bg.wait()
		pf.stop()
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if c.wantLent {
			want = len(j.targets)
		}
		if res.lent != want {
			t.Errorf("%s: %d targets lent to the scan, want %d", c.dir, res.lent, want)
		}
		b, _ := os.ReadFile(out)
		outputs = append(outputs, b)
	}
	if len(outputs[0]) == 0 || !slices.Equal(outputs[0], outputs[1]) {
		t.Error("the pruned files differ between the two input orders")
	}
}
