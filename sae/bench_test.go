package sae

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// lowRankPlusNoise returns a [rows, d] matrix A·Bᵀ + noise with A [rows,
// rank] and B [d, rank] standard normal (scaled so the product's entries
// have variance 1) and noise of standard deviation 0.1.
func lowRankPlusNoise(seed uint64, rows, d, rank int) []float32 {
	rng := rand.New(rand.NewPCG(seed, 3))
	a := make([]float32, rows*rank)
	b := make([]float32, d*rank)
	for i := range a {
		a[i] = float32(rng.NormFloat64())
	}
	for i := range b {
		b[i] = float32(rng.NormFloat64() / float64(rank))
	}
	x := make([]float32, rows*d)
	blas.MatMulT(x, a, b, rows, d, rank, 0)
	for i := range x {
		x[i] += float32(0.1 * rng.NormFloat64())
	}
	return x
}

// BenchmarkSAEEpoch measures one training epoch of a TopK SAE on a
// GPT-2-sized embedding (50257×768, low rank plus noise) with m = 4096 and
// k = 32, on 1 and 2 threads; the metric s/epoch is the time of one epoch.
func BenchmarkSAEEpoch(b *testing.B) {
	const rows, d, m, k, batch = 50257, 768, 4096, 32, 4096
	seed := uint64(1)
	b.Logf("seed %d, %d×%d, m %d, k %d, batch %d, kernel %s", seed, rows, d, m, k, batch, blas.Best().Name())
	x := lowRankPlusNoise(seed, rows, d, 64)
	for _, threads := range []int{1, 2} {
		b.Run(fmt.Sprintf("threads%d", threads), func(b *testing.B) {
			tr := newTrainer(x, rows, d, Options{Latents: m, K: k, Epochs: 1, Batch: batch, LR: 1e-3, Seed: seed, Threads: threads})
			e := 0
			for b.Loop() {
				e++
				ep, err := tr.epoch(context.Background(), e)
				if err != nil {
					b.Fatal(err)
				}
				b.Logf("epoch %d: loss %.4f, aux %.4f, dead %d", e, ep.Loss, ep.Aux, ep.Dead)
			}
			b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/epoch")
		})
	}
}
