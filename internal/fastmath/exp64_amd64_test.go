//go:build amd64 && !purego

package fastmath

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestSumExpKernels runs each vector kernel the CPU has against the
// pure-Go body, bit for bit, over inputs that reach every branch of Exp:
// overflow, the subnormals, underflow to 0, ±Inf and NaN.
func TestSumExpKernels(t *testing.T) {
	seed := uint64(23)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	kernels := map[string]func(*float32, int, float64, *float64, *[Lanes]float64){}
	if useAVX2 {
		kernels["avx2"] = sumExpAVX2
	}
	if useAVX512 {
		kernels["avx512"] = sumExpAVX512
	}
	if len(kernels) == 0 {
		t.Skip("no vector kernel on this CPU")
	}
	const n = 4096
	x := make([]float32, n)
	for i := range x {
		switch i % 8 {
		case 0:
			x[i] = float32(-760 + rng.Float64()*1480)
		case 1:
			x[i] = float32(-745.2 + rng.Float64()*40) // the subnormals
		case 2:
			x[i] = float32(700 + rng.Float64()*12) // near overflow
		default:
			x[i] = float32(rng.NormFloat64() * 10)
		}
	}
	x[5], x[77], x[1000] = float32(math.Inf(1)), float32(math.Inf(-1)), 88.7
	for _, shift := range []float64{0, -3.25, 12.5} {
		var want [Lanes]float64
		wantOut := make([]float64, n)
		sumExpGo(x, shift, wantOut, &want)
		for name, k := range kernels {
			var got [Lanes]float64
			out := make([]float64, n)
			k(&x[0], n, shift, &out[0], &got)
			for i := range out {
				if math.Float64bits(out[i]) != math.Float64bits(wantOut[i]) {
					t.Fatalf("%s shift %v: exp(%v) = %v, Exp %v", name, shift, float64(x[i])-shift, out[i], wantOut[i])
				}
			}
			for l := range got {
				if math.Float64bits(got[l]) != math.Float64bits(want[l]) {
					t.Fatalf("%s shift %v: partial sum %d = %v, Go %v", name, shift, l, got[l], want[l])
				}
			}
			var noOut [Lanes]float64
			k(&x[0], n, shift, nil, &noOut)
			if noOut != got {
				t.Fatalf("%s shift %v: partial sums without out %v, with %v", name, shift, noOut, got)
			}
		}
	}
	// NaN propagates.
	x[9] = float32(math.NaN())
	for name, k := range kernels {
		var s [Lanes]float64
		k(&x[0], 16, 0, nil, &s)
		if !math.IsNaN(s[9]) {
			t.Fatalf("%s: partial sum with NaN = %v", name, s[9])
		}
	}
}
