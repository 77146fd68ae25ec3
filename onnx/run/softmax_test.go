package run

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/lmsparse/lmsparse/internal/fastmath"
)

// TestExpSub checks softmax's exponentials against internal/fastmath.Expf
// (within 4e-7 relative: a few ulp), exact zeros below −87 and NaN passed
// through, and that an element's bits do not depend on the row's length
// or its position in a vector (a fused attention's rows are prefixes of
// the unfused rows).
func TestExpSub(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 22))
	t.Logf("rng: PCG(21, 22); vector exp: %v", vecExp)
	x := make([]float32, 1003)
	for i := range x {
		x[i] = float32(rng.Float64()*120 - 100) // −100 … 20
	}
	x[5], x[6], x[7] = float32(math.Inf(-1)), float32(math.NaN()), -87.5
	const shift = 3.25
	full := append([]float32(nil), x...)
	sum := expSub(full, shift)
	var want float64
	for i, v := range x {
		d := v - shift
		got := full[i]
		switch {
		case d != d:
			if got == got {
				t.Fatalf("exp(NaN) = %v", got)
			}
			continue
		case d < -87:
			if vecExp && got != 0 || !vecExp && got != fastmath.Expf(d) && !(d < -105 && got == 0) {
				t.Fatalf("exp(%v) = %v", d, got)
			}
		default:
			if w := fastmath.Expf(d); math.Abs(float64(got-w)) > 4e-7*float64(w) {
				t.Fatalf("exp(%v) = %v, Expf %v", d, got, w)
			}
		}
		want += float64(got)
	}
	if !math.IsNaN(sum) {
		t.Errorf("sum %v with a NaN element", sum)
	}
	x[6] = 0
	full = append(full[:0], x...)
	sum = expSub(full, shift)
	want = 0
	for _, v := range full {
		want += float64(v)
	}
	if math.Abs(sum-want) > 1e-12*want {
		t.Errorf("sum %v, the elements add to %v", sum, want)
	}
	for _, n := range []int{1, 7, 8, 13, 64, 500} {
		part := append([]float32(nil), x[:n]...)
		expSub(part, shift)
		for i := range part {
			if math.Float32bits(part[i]) != math.Float32bits(full[i]) {
				t.Fatalf("prefix of %d: element %d = %v, in the whole row %v", n, i, part[i], full[i])
			}
		}
	}
}

// TestSoftmaxStrided: a softmax over another axis than the last gives the
// contiguous row's bits.
func TestSoftmaxStrided(t *testing.T) {
	rng := rand.New(rand.NewPCG(23, 24))
	t.Log("rng: PCG(23, 24)")
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
		got := make([]float32, n)
		softmaxRow(got, x)
		softmax(wide, wide, 0, n, 2, false)
		var s float64
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(wide[2*i]) {
				t.Fatalf("n %d: element %d = %v, strided %v", n, i, got[i], wide[2*i])
			}
			s += float64(got[i])
		}
		if math.Abs(s-1) > 1e-6 {
			t.Errorf("n %d: probabilities add to %v", n, s)
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

// TestScaleMaskSoftmax: the fused pass (vector code for whole vectors
// when the CPU has it) gives the bits of the nodes' operations done one
// after the other, NaN and −∞ included, for every mask layout.
func TestScaleMaskSoftmax(t *testing.T) {
	rng := rand.New(rand.NewPCG(25, 26))
	t.Log("rng: PCG(25, 26)")
	for _, n := range []int{1, 8, 13, 64, 203} {
		for _, st := range []int{-1, 0, 1, 2} { // −1: no mask
			for _, div := range []bool{true, false} {
				for _, withNaN := range []bool{false, true} {
					src := make([]float32, n)
					m := make([]float32, 2*n+1)
					for i := range src {
						src[i] = float32(rng.NormFloat64() * 10)
					}
					for i := range m {
						m[i] = float32(rng.NormFloat64())
						if rng.IntN(3) == 0 {
							m[i] = float32(math.Inf(-1))
						}
					}
					if withNaN {
						src[rng.IntN(n)] = float32(math.NaN())
					}
					const k = 2.828427
					want := make([]float32, n)
					for i, v := range src {
						if div {
							v /= k
						} else {
							v *= k
						}
						if st >= 0 {
							v += m[1+i*st]
						}
						want[i] = v
					}
					softmaxRow(want, want)
					got := make([]float32, n)
					if st >= 0 {
						scaleMaskSoftmax(got, src, k, div, m, 1, st)
					} else {
						scaleMaskSoftmax(got, src, k, div, nil, 0, 0)
					}
					for i := range got {
						if math.Float32bits(got[i]) != math.Float32bits(want[i]) && !(got[i] != got[i] && want[i] != want[i]) {
							t.Fatalf("n %d st %d div %v NaN %v: element %d = %v, want %v", n, st, div, withNaN, i, got[i], want[i])
						}
					}
				}
			}
		}
	}
}

// TestSoftmaxNormalize: the vector normalization gives the scalar bits.
func TestSoftmaxNormalize(t *testing.T) {
	if !vecExp {
		t.Skip("no vector kernels on this CPU")
	}
	rng := rand.New(rand.NewPCG(27, 28))
	t.Log("rng: PCG(27, 28)")
	x := make([]float32, 1000)
	for i := range x {
		x[i] = float32(math.Exp(rng.Float64()*200 - 150))
	}
	y := append([]float32(nil), x...)
	f := 1 / (rng.Float64()*300 + 0.5)
	n8 := mulF64Vec(y, f)
	if n8 != 1000 {
		t.Fatalf("%d elements done, want 1000", n8)
	}
	for i, v := range x {
		if w := float32(float64(v) * f); math.Float32bits(y[i]) != math.Float32bits(w) {
			t.Fatalf("element %d: %v·%v = %v, want %v", i, v, f, y[i], w)
		}
	}
}
