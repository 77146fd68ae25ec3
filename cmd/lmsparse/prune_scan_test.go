package main

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
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

// writeReversedLlama writes the generated F32 llama checkpoint to dir with
// its tensors laid out in reverse name order (gen.WriteReversedLlama).
func writeReversedLlama(t *testing.T, dir string, zeroed ...string) {
	t.Helper()
	if err := gen.WriteReversedLlama(dir, zeroed...); err != nil {
		t.Fatal(err)
	}
}
