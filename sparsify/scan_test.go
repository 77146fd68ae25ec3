package sparsify

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// TestScan checks the input scan against the plain hash of the files and
// the per-tensor counts, through the mapping and through reads: on two
// shards, on a file whose tensors are stored in reverse name order (two
// untouched tensors partly zero), and on one large enough (a 2 MiB
// embedding) for the scan to go through it in many windows and drop their
// pages as it goes.
func TestScan(t *testing.T) {
	base := t.TempDir()
	sharded := filepath.Join(base, "sharded")
	if err := gen.WriteCheckpoint(sharded, gen.Llama(tensor.F32, 2)); err != nil {
		t.Fatal(err)
	}
	reversed := filepath.Join(base, "reversed")
	if err := gen.WriteReversedLlama(reversed, "model.norm.weight", "model.embed_tokens.weight"); err != nil {
		t.Fatal(err)
	}
	large := filepath.Join(base, "large")
	spec := gen.Llama(tensor.F32, 1)
	spec.Hidden, spec.Inter, spec.Vocab = 128, 512, 4096
	if err := gen.WriteCheckpoint(large, spec); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{sharded, reversed, large} {
		m, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		j, err := PlanCheckpoint(t.Context(), m, Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}})
		if err != nil {
			t.Fatal(err)
		}
		wantInputs, err := manifest.HashFiles(m.Dir, m.Files)
		if err != nil {
			t.Fatal(err)
		}
		wantNonzero := map[string]int64{}
		zeros := false
		for _, name := range m.Names() {
			if slices.ContainsFunc(j.targets, func(t *target) bool { return t.name == name }) {
				continue
			}
			st, err := m.Stats(name, make([]byte, 1<<16))
			if err != nil {
				t.Fatal(err)
			}
			info, _ := m.Tensor(name)
			params, _ := info.Shape.Elems()
			wantNonzero[name] = params - st.Zeros
			zeros = zeros || st.Zeros > 0
		}
		if dir == reversed && !zeros {
			t.Fatalf("%s: no untouched tensor has zeros", dir)
		}
		for _, noMap := range []bool{false, true} {
			res, err := startScan(t.Context(), m, j.targets, noMap).wait()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.inputs, wantInputs) {
				t.Errorf("%s (noMap %v): inputs\n%v\nwant\n%v", dir, noMap, res.inputs, wantInputs)
			}
			if len(res.nonzero) != len(wantNonzero) {
				t.Errorf("%s (noMap %v): %d tensors counted, want %d", dir, noMap, len(res.nonzero), len(wantNonzero))
			}
			for name, want := range wantNonzero {
				if got, ok := res.nonzero[name]; !ok || got != want {
					t.Errorf("%s (noMap %v): tensor %q: %d nonzero (counted %v), want %d", dir, noMap, name, got, ok, want)
				}
			}
		}
		m.Close()
	}
}
