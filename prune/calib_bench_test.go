package prune

import (
	"math/rand/v2"
	"testing"
)

// BenchmarkSparseGPT: GPT-2 small's largest projections, 50%, with a
// Hessian from 2,048 random inputs.
func BenchmarkSparseGPT(b *testing.B) {
	for _, c := range []struct {
		name    string
		out, in int
	}{{"c_fc-3072x768", 3072, 768}, {"c_proj-768x3072", 768, 3072}} {
		b.Run(c.name, func(b *testing.B) {
			rng := rand.New(rand.NewPCG(1, 1))
			x := make([]float32, 2048*c.in)
			for i := range x {
				x[i] = float32(rng.NormFloat64())
			}
			s := NewStats(c.in, true)
			s.Add(x, 2048, c.in, c.in)
			h := s.Hessian()
			w := make([]float32, c.out*c.in)
			for i := range w {
				w[i] = float32(rng.NormFloat64())
			}
			b.ResetTimer()
			for range b.N {
				m := &Matrix{Name: "w", Vals: append([]float32(nil), w...), Rows: c.out, Cols: c.in}
				if _, err := SparseGPT(Method{Sparsity: 0.5, Scope: ScopeRow}, m, h, SparseGPTOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkStatsHessian: XᵀX of 4,096 rows of 3,072 inputs.
func BenchmarkStatsHessian(b *testing.B) {
	const n, k = 4096, 3072
	x := make([]float32, n*k)
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	for range b.N {
		s := NewStats(k, true)
		s.Add(x, n, k, k)
	}
}
