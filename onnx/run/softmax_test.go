package run

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSoftmaxRow: the contiguous-row softmax (with the written-out exp)
// computes the strided softmax's bits, masked entries and all.
func TestSoftmaxRow(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	t.Log("rng: PCG(21, 22)")
	for _, n := range []int{1, 7, 256, 1000} {
		x := make([]float32, n)
		wide := make([]float32, 2*n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 20)
			if rng.IntN(4) == 0 {
				x[i] = float32(math.Inf(-1))
			}
			wide[2*i] = x[i]
		}
		if n == 1000 { // exponents across Expf's whole range: x − max from −90 to 0
			for i := range x {
				x[i] = float32(-90 * float64(i) / float64(n-1))
				wide[2*i] = x[i]
			}
		}
		got := make([]float32, n)
		softmaxRow(got, x)
		softmax(wide, wide, 0, n, 2, false) // the strided path
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(wide[2*i]) {
				t.Fatalf("n %d: element %d = %v, strided %v", n, i, got[i], wide[2*i])
			}
		}
	}
}

// BenchmarkSoftmaxRow: one causal attention row of 256 live scores.
func BenchmarkSoftmaxRow(b *testing.B) {
	r := make([]float32, 256)
	for i := range r {
		r[i] = float32(i%17) * 0.37
	}
	dst := make([]float32, len(r))
	for b.Loop() {
		softmax(dst, r, 0, len(r), 1, false)
	}
}
