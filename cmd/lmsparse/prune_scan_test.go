package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// TestPruneManifestScan checks the input scan that runs beside pruning:
// lmsparse.json's input checksums equal sha256 of the files and the
// nonzero counts of untouched tensors equal a direct count, whether the
// scan takes the targets' bytes from the prefetcher (dense, tensor scope,
// file order = output order) or reads everything itself (global scope,
// csr, a file whose tensors are not in name order, sharded input and
// output).
func TestPruneManifestScan(t *testing.T) {
	base := t.TempDir()
	llama := filepath.Join(base, "llama")
	gen.WriteCheckpoint(llama, gen.Llama(tensor.F32, 1))
	sharded := filepath.Join(base, "sharded")
	gen.WriteCheckpoint(sharded, gen.Llama(tensor.BF16, 2))
	gpt2 := filepath.Join(base, "gpt2")
	gen.WriteCheckpoint(gpt2, gen.GPT2(tensor.F16, 1))

	// The same llama weights laid out in reverse name order, with a few
	// zeros in untouched tensors.
	reversed := filepath.Join(base, "reversed")
	writeReversedLlama(t, reversed, "model.norm.weight", "model.embed_tokens.weight")

	cases := []struct {
		name  string
		model string
		args  []string
	}{
		{"dense", llama, nil},
		{"dense-sharded", sharded, []string{"--max-shard-size", "8kB"}},
		{"dense-gpt2-f16", gpt2, nil},
		{"dense-reversed", reversed, nil},
		{"global", llama, []string{"--scope", "global"}},
		{"csr", sharded, []string{"--format", "csr"}},
		{"auto-reversed", reversed, []string{"--format", "auto"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			mustRun(t, append([]string{"prune", c.model, "-o", out, "--sparsity", "0.5"}, c.args...)...)
			man := readManifest(t, out)
			m, err := checkpoint.Open(c.model)
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			files := append([]string(nil), m.Files...)
			for _, aux := range []string{"config.json", "tokenizer.json", "tokenizer_config.json"} {
				if _, err := os.Stat(filepath.Join(c.model, aux)); err == nil {
					files = append(files, filepath.Join(c.model, aux))
				}
			}
			if len(man.Inputs) != len(files) {
				t.Fatalf("%d inputs in lmsparse.json, want %d", len(man.Inputs), len(files))
			}
			for i, p := range files {
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				sum := sha256.Sum256(b)
				got := man.Inputs[i]
				if got.File != filepath.Base(p) || got.Bytes != int64(len(b)) || got.SHA256 != hex.EncodeToString(sum[:]) {
					t.Errorf("input %d = %+v, want %s, %d bytes, %x", i, got, filepath.Base(p), len(b), sum)
				}
			}
			untouched := 0
			for _, row := range man.Tensors {
				if row.Pruned {
					continue
				}
				vals, err := m.Float32(row.Name)
				if err != nil {
					t.Fatal(err)
				}
				var nz int64
				for _, v := range vals {
					if v != 0 {
						nz++
					}
				}
				if row.Nonzeros == nil || *row.Nonzeros != nz {
					t.Errorf("%s: nnz %v in lmsparse.json, counted %d", row.Name, row.Nonzeros, nz)
				}
				untouched++
			}
			if untouched == 0 {
				t.Error("no untouched tensor in the manifest")
			}
		})
	}
}

// TestPruneScanShares runs prune's steps by hand to see which path the
// scan took: with the file in name order every dense target's bytes come
// from the prefetcher; in reverse order none do, and the output is the
// same.
func TestPruneScanShares(t *testing.T) {
	base := t.TempDir()
	inOrder := filepath.Join(base, "in-order")
	gen.WriteCheckpoint(inOrder, gen.Llama(tensor.F32, 1))
	reversed := filepath.Join(base, "reversed")
	writeReversedLlama(t, reversed)
	method, err := (&pruneOptions{Sparsity: 0.5, SparsitySet: true, Scope: "tensor", Format: "dense"}).method()
	if err != nil {
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
		j, err := newPruneJob(m, method, "dense", nil, nil, nil)
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

// writeReversedLlama writes the generated F32 llama checkpoint to dir with
// its tensors laid out in reverse name order, the first four values of
// each tensor named in zeroed set to zero.
func writeReversedLlama(t *testing.T, dir string, zeroed ...string) {
	t.Helper()
	if err := gen.WriteCheckpoint(dir, gen.Llama(tensor.F32, 1)); err != nil {
		t.Fatal(err)
	}
	ws := gen.Weights(gen.Llama(tensor.F32, 1))
	slices.Reverse(ws)
	for i := range ws {
		if slices.Contains(zeroed, ws[i].Name) {
			clear(ws[i].Data[:16])
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "model.safetensors"), gen.Pack(ws, map[string]string{"format": "pt"}).Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
}
