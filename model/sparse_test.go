package model

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// isProjection reports whether a weight name is a block projection (the
// default targets of lmsparse prune).
func isProjection(name string) bool {
	if !strings.HasSuffix(name, ".weight") || strings.Contains(name, "norm") || strings.Contains(name, "ln_") {
		return false
	}
	return strings.Contains(name, "layers.") || strings.Contains(name, "h.")
}

// pruneProjections zeroes, in place, the smallest frac of each projection
// matrix by magnitude (ties to the lower index).
func pruneProjections(w map[string][]float32, frac float64) {
	for name, v := range w {
		if !isProjection(name) {
			continue
		}
		k := int(math.Round(frac * float64(len(v))))
		if k == 0 {
			continue
		}
		// The k-th smallest magnitude; zero everything below it, then
		// the ties at it from the lowest index until k are zero.
		mag := make([]float32, len(v))
		for i, x := range v {
			mag[i] = float32(math.Abs(float64(x)))
		}
		slices.Sort(mag)
		thr, n := mag[k-1], 0
		for i, x := range v {
			if float32(math.Abs(float64(x))) < thr {
				v[i] = 0
				n++
			}
		}
		for i, x := range v {
			if n < k && x != 0 && float32(math.Abs(float64(x))) == thr {
				v[i] = 0
				n++
			}
		}
	}
}

// TestSparseExecution checks that a 90%-pruned model gives the same logits
// with sparse execution off (packed dense GEMM), auto (CSR above
// SparseThreshold) and on, with every kernel (the AVX-512 and AVX2 CSR
// kernels and the pure-Go one), and that auto picks CSR for every pruned
// projection and for none of an unpruned model (nor with the pure-Go
// kernel); CSR execution is also checked against the naive float64
// reference.
func TestSparseExecution(t *testing.T) {
	llama := func(mt string, tied bool) *checkpoint.Config {
		return &checkpoint.Config{ModelType: mt, HiddenSize: 48, NumLayers: 2, NumHeads: 6, NumKVHeads: 2, HeadDim: 8,
			IntermediateSize: 72, VocabSize: 37, MaxPositions: 160, NormEps: 1e-5, RopeTheta: 10000,
			TieWordEmbeddings: tied, Activation: "silu"}
	}
	gpt := func(tied bool) *checkpoint.Config {
		return &checkpoint.Config{ModelType: "gpt2", HiddenSize: 48, NumLayers: 2, NumHeads: 3, NumKVHeads: 3, HeadDim: 16,
			IntermediateSize: 420, VocabSize: 41, MaxPositions: 150, NormEps: 1e-5, TieWordEmbeddings: tied, Activation: "gelu_new"}
	}
	// GPT-2's MLP down projection sums 420 terms: more than one block of
	// the dense GEMM (192 for AVX-512, 384 for AVX2).
	for ci, c := range []struct {
		name string
		cfg  *checkpoint.Config
	}{{"llama", llama("llama", true)}, {"qwen2", llama("qwen2", false)}, {"gpt2", gpt(true)}, {"gpt2 untied", gpt(false)}} {
		w := randomWeights(c.cfg, uint64(300+ci))
		for k, v := range w {
			if isProjection(k) {
				for i := range v {
					v[i] *= 8
				}
			}
		}
		ids := testIDs(140, c.cfg.VocabSize)
		V := c.cfg.VocabSize
		for _, frac := range []float64{0, 0.9} {
			pw := map[string][]float32{}
			for k, v := range w {
				pw[k] = slices.Clone(v)
			}
			pruneProjections(pw, frac)
			// Every kernel: AVX-512 and AVX2 run their own assembly CSR
			// kernels, "go" the scalar one ("on" only).
			var worst float64
			for _, kn := range Kernels() {
				logits := map[string][]float32{}
				for _, mode := range []string{"off", "auto", "on"} {
					m, err := New(c.cfg, pw, Options{Threads: 2, Sparse: mode, Kernel: kn})
					if err != nil {
						t.Fatal(err)
					}
					sp, total := m.SparseProjections()
					wantSp := map[string]int{"off": 0, "on": total, "auto": 0}[mode]
					if mode == "auto" && frac > SparseThreshold && blas.SparseAsm() && kn != "go" {
						wantSp = total
					}
					if m.SparseHead() != (mode == "on") {
						t.Fatalf("%s pruned %.0f%% %s sparse=%s: sparse head %v", c.name, 100*frac, kn, mode, m.SparseHead())
					}
					if sp != wantSp {
						t.Fatalf("%s pruned %.0f%% %s sparse=%s: %d of %d projections in CSR, want %d", c.name, 100*frac, kn, mode, sp, total, wantSp)
					}
					out := make([]float32, len(ids)*V)
					if err := m.Forward(ids, out); err != nil {
						t.Fatal(err)
					}
					logits[mode] = out
					if mode == "on" {
						checkAgainstRef(t, c.name+" "+kn+" sparse on", m, c.cfg, pw, ids, 2e-4)
					}
				}
				off := logits["off"]
				for _, mode := range []string{"auto", "on"} {
					// The assembly CSR kernels sum as the dense GEMM does:
					// the same logits, bit for bit, sparse or not.
					if kn != "go" && !slices.Equal(logits[mode], off) {
						i := 0
						for logits[mode][i] == off[i] {
							i++
						}
						t.Fatalf("%s pruned %.0f%% %s sparse=%s: logit[%d][%d] = %g, dense %g (want the same bits)", c.name, 100*frac, kn, mode, i/V, i%V, logits[mode][i], off[i])
					}
					for i, v := range logits[mode] {
						d := math.Abs(float64(v) - float64(off[i]))
						worst = max(worst, d/(1+math.Abs(float64(off[i]))))
						if !(d <= 1e-4*(1+math.Abs(float64(off[i])))) {
							t.Fatalf("%s pruned %.0f%% %s sparse=%s: logit[%d][%d] = %g, dense %g", c.name, 100*frac, kn, mode, i/V, i%V, v, off[i])
						}
					}
				}
			}
			t.Logf("%s pruned %.0f%%: worst relative logit difference sparse vs dense %.3g", c.name, 100*frac, worst)
		}
	}
}

// TestSparseHead prunes the tied embedding / LM head as well: auto then
// runs the head through CSR while token lookups still read the dense rows.
func TestSparseHead(t *testing.T) {
	cfg := &checkpoint.Config{ModelType: "gpt2", HiddenSize: 48, NumLayers: 2, NumHeads: 3, NumKVHeads: 3, HeadDim: 16,
		IntermediateSize: 100, VocabSize: 67, MaxPositions: 150, NormEps: 1e-5, TieWordEmbeddings: true, Activation: "gelu_new"}
	w := randomWeights(cfg, 77)
	for k, v := range w {
		if !strings.Contains(k, "ln_") && !strings.Contains(k, "bias") {
			for i := range v {
				v[i] *= 8
			}
			pruneProjections(map[string][]float32{"h.0.x.weight": v}, 0.9)
		}
	}
	ids := testIDs(100, cfg.VocabSize)
	m, err := New(cfg, w, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	if m.SparseHead() != blas.SparseAsm() {
		t.Fatal("auto: 90 percent pruned head kept dense")
	}
	checkAgainstRef(t, "gpt2 sparse head", m, cfg, w, ids, 2e-4)
}

func TestSparseOption(t *testing.T) {
	cfg := &checkpoint.Config{ModelType: "gpt2", HiddenSize: 8, NumLayers: 1, NumHeads: 2, NumKVHeads: 2, HeadDim: 4,
		IntermediateSize: 16, VocabSize: 11, MaxPositions: 16, NormEps: 1e-5, TieWordEmbeddings: true, Activation: "gelu_new"}
	_, err := New(cfg, randomWeights(cfg, 1), Options{Sparse: "maybe"})
	if !errors.Is(err, ErrInput) || !strings.Contains(err.Error(), "maybe") {
		t.Fatalf("Sparse \"maybe\": err = %v, want ErrInput naming it", err)
	}
}
