//go:build openblas

package openblas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

// TestSgemmOpenBLAS checks the cgo wrapper against blas.MatMulTRef on odd
// sizes, so that the benchmark below compares the same product.
func TestSgemmOpenBLAS(t *testing.T) {
	SetThreads(1)
	rng := rand.New(rand.NewPCG(3, 4))
	for _, s := range [][3]int{{1, 1, 1}, {7, 13, 5}, {97, 257, 385}, {64, 33, 768}} {
		m, n, k := s[0], s[1], s[2]
		a, b := randSlice(rng, m*k), randSlice(rng, n*k)
		want := make([]float32, m*n)
		blas.MatMulTRef(want, a, b, m, n, k)
		c := make([]float32, m*n)
		SgemmOpenBLAS(c, a, b, m, n, k)
		for i := range c {
			if d := math.Abs(float64(c[i]) - float64(want[i])); d > 1e-4*(1+math.Abs(float64(want[i])))*math.Sqrt(float64(k)) {
				t.Fatalf("m=%d n=%d k=%d: C[%d] = %g, reference %g", m, n, k, i, c[i], want[i])
			}
		}
	}
}

// BenchmarkGemmVsOpenBLAS measures lmsparse's blas.MatMulT (both operands
// packed per call, 1 thread) and OpenBLAS's cblas_sgemm (1 thread) on the
// same 512×768×3072 product (M=512, K=768, N=3072: the GPT-2-small MLP up
// projection at ctx 512), side by side in one run.
func BenchmarkGemmVsOpenBLAS(b *testing.B) {
	SetThreads(1)
	b.Logf("OpenBLAS %s; lmsparse kernel %s", Config(), blas.Best().Name())
	rng := rand.New(rand.NewPCG(1, 2))
	m, k, n := 512, 768, 3072
	a, w := randSlice(rng, m*k), randSlice(rng, n*k)
	c := make([]float32, m*n)
	flops := 2 * float64(m) * float64(n) * float64(k)
	name := fmt.Sprintf("M%dK%dN%d", m, k, n)
	b.Run("lmsparse/"+name, func(b *testing.B) {
		for b.Loop() {
			blas.MatMulT(c, a, w, m, n, k, 1)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
	})
	b.Run("openblas/"+name, func(b *testing.B) {
		for b.Loop() {
			SgemmOpenBLAS(c, a, w, m, n, k)
		}
		b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOPS")
	})
}
