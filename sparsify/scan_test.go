package sparsify

import (
	"bytes"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// testInputs writes the checkpoints the scan and count tests read: two
// shards; a file whose tensors are stored in reverse name order (two
// untouched tensors partly zero); and one large enough (a 2 MiB
// embedding) for the hash to go through it in many windows and drop their
// pages as it goes.
func testInputs(t *testing.T) []string {
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
	return []string{sharded, reversed, large}
}

// TestScan checks the input hash against the plain hash of the files,
// through the mapping and through reads.
func TestScan(t *testing.T) {
	for _, dir := range testInputs(t) {
		m, err := checkpoint.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		wantInputs, err := manifest.HashFiles(m.Dir, m.Files)
		if err != nil {
			t.Fatal(err)
		}
		for _, noMap := range []bool{false, true} {
			res, err := startScan(t.Context(), m, noMap).wait()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(res.inputs, wantInputs) {
				t.Errorf("%s (noMap %v): inputs\n%v\nwant\n%v", dir, noMap, res.inputs, wantInputs)
			}
		}
		m.Close()
	}
}

// TestUntouchedCounts writes pruned checkpoints through a plain writer
// and through Buffers whose free space ends inside tensors (so untouched
// tensors are read into the buffer in pieces and pruned ones applied in
// it): the bytes must be WriteFile's, and the nonzero counts taken on the
// way those of the input's tensors, with a replaced tensor counted too.
func TestUntouchedCounts(t *testing.T) {
	for _, dir := range testInputs(t) {
		want := map[string]int64{}
		var file []byte
		zeros := false
		for _, size := range []int{-1, 0, 4097, 4096 + 12, 1 << 20} {
			m, j, entries, pf := prunedEntries(t, dir, prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor})
			var err error
			// The embedding's entry is replaced: never written, counted
			// at the end.
			const replaced = "model.embed_tokens.weight"
			info, _ := m.Tensor(replaced)
			entries = safetensors.Replace(entries, replaced, []safetensors.Entry{safetensors.BytesEntry(replaced, tensor.U8, tensor.Shape{3}, []byte{1, 2, 3})})
			if size == -1 {
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
					want[name] = params - st.Zeros
					zeros = zeros || st.Zeros > 0
				}
				if strings.HasSuffix(dir, "reversed") && !zeros {
					t.Fatalf("%s: no untouched tensor has zeros", dir)
				}
			}
			pf.plan(entries, 0)
			pf.run(t.Context())
			var out bytes.Buffer
			switch size {
			case -1:
				path := filepath.Join(t.TempDir(), "model.safetensors")
				err = safetensors.WriteFile(path, nil, entries)
				if err == nil {
					file, err = os.ReadFile(path)
				}
			case 0:
				err = safetensors.Write(&out, nil, entries)
			default:
				err = safetensors.Write(safetensors.NewBuffer(&out, size), nil, entries)
			}
			pf.stop()
			if err != nil {
				t.Fatal(err)
			}
			if size >= 0 && !bytes.Equal(out.Bytes(), file) {
				t.Errorf("%s: written through a buffer of %d bytes, %d bytes that differ from WriteFile's %d", dir, size, out.Len(), len(file))
			}
			got, err := pf.untouchedNonzero(j.targets)
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := got[replaced]; !ok || info.DType != tensor.F32 {
				t.Errorf("%s: the replaced %s tensor was not counted", dir, info.DType)
			}
			if !maps.Equal(got, want) {
				t.Errorf("%s (buffer %d): nonzero counts\n%v\nwant\n%v", dir, size, got, want)
			}
			m.Close()
		}
	}
}

// TestPrefetchMapped prunes the same F32 checkpoints dense with the
// prefetcher selecting on the mapped input and applying the plan as the
// writer copies (mappedView), and with every target read into buffers:
// the files and the counts must be the same, at several sparsities and
// for a tensor-scope and a row-scope method (which always reads).
func TestPrefetchMapped(t *testing.T) {
	base := t.TempDir()
	in := filepath.Join(base, "in")
	spec := gen.Llama(tensor.F32, 2)
	spec.Hidden, spec.Inter = 64, 160
	if err := gen.WriteCheckpoint(in, spec); err != nil {
		t.Fatal(err)
	}
	gpt := filepath.Join(base, "gpt2") // transposed Conv1D weights
	if err := gen.WriteCheckpoint(gpt, gen.GPT2(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{in, gpt} {
		for _, method := range []prune.Method{{Sparsity: 0.5, Scope: prune.ScopeTensor}, {Sparsity: 0.9, Scope: prune.ScopeTensor}, {Sparsity: 0.3, Scope: prune.ScopeRow}} {
			var outs [2][]byte
			var counts [2][]int64
			for i, noMap := range []bool{false, true} {
				m, j, entries, pf := prunedEntries(t, dir, method)
				var err error
				pf.noMap = noMap
				mapped := 0
				for _, tg := range j.targets {
					if _, _, ok := pf.mappedView(tg); ok {
						mapped++
					}
				}
				if wantMapped := !noMap && method.Scope == prune.ScopeTensor; (mapped == len(j.targets)) != wantMapped || (mapped == 0) == wantMapped {
					t.Fatalf("%s %s noMap %v: %d of %d targets mapped", dir, method, noMap, mapped, len(j.targets))
				}
				pf.plan(entries, 0)
				pf.run(t.Context())
				out := filepath.Join(base, "out", "model.safetensors")
				os.MkdirAll(filepath.Dir(out), 0o755)
				err = safetensors.WriteFile(out, nil, entries)
				pf.stop()
				m.Close()
				if err != nil {
					t.Fatal(err)
				}
				if outs[i], err = os.ReadFile(out); err != nil {
					t.Fatal(err)
				}
				for _, tg := range j.targets {
					counts[i] = append(counts[i], tg.stored, tg.nonzero)
				}
			}
			if len(outs[0]) == 0 || !slices.Equal(outs[0], outs[1]) {
				t.Errorf("%s %s: the pruned files differ", dir, method)
			}
			if !slices.Equal(counts[0], counts[1]) {
				t.Errorf("%s %s: counts %v, read into buffers %v", dir, method, counts[0], counts[1])
			}
		}
	}
}

// prunedEntries opens the checkpoint in dir, plans a dense prune by method
// and returns the model, the job, the output entries and their
// prefetcher (not started).
func prunedEntries(t *testing.T, dir string, method prune.Method) (*checkpoint.Model, *Job, []safetensors.Entry, *prefetcher) {
	t.Helper()
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	j, err := PlanCheckpoint(t.Context(), m, Options{Method: method})
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
	return m, j, entries, pf
}
