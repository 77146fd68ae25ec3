package model

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// TestBlocksMatchForward runs two windows block by block with the
// checkpoint's own weights and checks the logits against Forward, bit
// for bit, for llama and gpt2; the probe sees every group's input once
// per block (in chunks for the MLP).
func TestBlocksMatchForward(t *testing.T) {
	for _, c := range []struct {
		name string
		spec gen.Spec
	}{{"llama", gen.Llama(tensor.F32, 1)}, {"gpt2", gen.GPT2(tensor.F32, 1)}} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := gen.WriteCheckpoint(dir, c.spec); err != nil {
				t.Fatal(err)
			}
			lm, err := checkpoint.Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer lm.Close()
			m, err := Load(lm, Options{Threads: 2})
			if err != nil {
				t.Fatal(err)
			}
			seed := uint64(7)
			t.Logf("seed %d", seed)
			rng := rand.New(rand.NewPCG(seed, 1))
			wins := make([][]int, 3)
			for i := range wins {
				wins[i] = make([]int, 9+i)
				for j := range wins[i] {
					wins[i][j] = rng.IntN(m.VocabSize())
				}
			}
			b, err := m.NewBlocks(wins, 12) // batches: windows 0–1, then 2
			if err != nil {
				t.Fatal(err)
			}
			for li := 0; li < m.Layers(); li++ {
				ws := map[string][]float32{}
				for _, p := range m.Projections(li) {
					if ws[p.Name], err = lm.Float32(p.Name); err != nil {
						t.Fatal(err)
					}
				}
				seen := map[int]int{}
				if err := b.Run(context.Background(), ws, func(g int, in []float32, rows, k, ld int) { seen[g] += rows }); err != nil {
					t.Fatal(err)
				}
				for g := 0; g < 4; g++ {
					if seen[g] != b.Rows() {
						t.Errorf("block %d group %d: probe saw %d rows, want %d", li, g, seen[g], b.Rows())
					}
				}
				b.Advance()
			}
			V := m.VocabSize()
			got := make([]float32, b.Rows()*V)
			if err := b.Logits(got); err != nil {
				t.Fatal(err)
			}
			off := 0
			for _, w := range wins {
				want := make([]float32, len(w)*V)
				if err := m.Forward(w, want); err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if got[off*V+i] != want[i] {
						t.Fatalf("window of %d tokens: logit %d = %v, Forward gives %v", len(w), i, got[off*V+i], want[i])
					}
				}
				off += len(w)
			}
		})
	}
}
