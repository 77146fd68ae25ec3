package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

func randSlice(rng *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64())
	}
	return v
}

func TestExpf(t *testing.T) {
	worst := 0.0
	check := func(x float32) {
		got, want := float64(expf(x)), math.Exp(float64(x))
		want32 := float64(float32(want))
		if want32 == 0 || math.IsInf(want32, 0) {
			if got != want32 {
				t.Fatalf("expf(%g) = %g, want %g", x, got, want32)
			}
			return
		}
		if want32 < 0x1p-126 { // subnormal: absolute error
			return
		}
		e := math.Abs(got-want) / want
		worst = max(worst, e)
		if e > 4*0x1p-24 {
			t.Fatalf("expf(%g) = %g, want %g (rel err %.3g)", x, got, want, e)
		}
	}
	for x := float32(-104); x <= 90; x += 0.00731 {
		check(x)
	}
	for _, x := range []float32{0, -0, 1, -1, 88, -87, 88.5, -87.5, -200, 200, float32(math.Inf(1)), float32(math.Inf(-1))} {
		check(x)
	}
	if v := expf(float32(math.NaN())); v == v {
		t.Fatalf("expf(NaN) = %g", v)
	}
	t.Logf("worst relative error %.3g", worst)
}

// checkSoftmax compares every kernel's column softmax with the float64
// reference: x, rotated by c, is column c of an [len(x), w] matrix, for the
// kernel's panel width and for widths that take the scalar fallback.
// Besides a few ulp for exp and the sum, the tolerance allows for the
// float32 rounding of the argument scale·x − max (which the FMA kernels
// round once and the scalar ones twice): relative (|scale·x| + 2|max|)·2⁻²².
func checkSoftmax(t *testing.T, x []float32, scale float32) {
	t.Helper()
	n := len(x)
	var mx float64
	for _, v := range x {
		mx = max(mx, math.Abs(float64(v*scale)))
	}
	for _, kr := range kernels() {
		for _, w := range []int{kr.NR(), 8, 3} {
			s := make([]float32, n*w)
			for r := 0; r < n; r++ {
				for c := 0; c < w; c++ {
					s[r*w+c] = x[(r+c)%n]
				}
			}
			sum := make([]float64, w)
			kr.vec.softmaxCols(s, n, w, scale, sum)
			for c := 0; c < w; c++ {
				col := make([]float32, n)
				for r := range col {
					col[r] = x[(r+c)%n]
				}
				want := slices.Clone(col)
				softmaxRef(want, scale)
				for r := range col {
					got := float64(s[r*w+c]) / sum[c]
					rel := 1e-6 + (math.Abs(float64(col[r]*scale))+2*mx)*0x1p-22
					if d := math.Abs(got - float64(want[r])); !(d <= rel*float64(want[r])+1e-9) {
						t.Fatalf("%s w=%d: n=%d scale %g: softmax[%d] of column %d = %g, reference %g", kr.Name(), w, n, scale, r, c, got, want[r])
					}
				}
			}
		}
	}
}

func TestSoftmax(t *testing.T) {
	seed := uint64(11)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	for _, n := range []int{1, 2, 3, 7, 64, 127, 512, 1001} {
		x := randSlice(rng, n)
		for i := range x {
			x[i] *= 10
		}
		checkSoftmax(t, x, 0.125)
		checkSoftmax(t, x, 1)
	}
	checkSoftmax(t, []float32{-1e4, 0, 1e4, 3}, 1) // far outside expf's fast range
	// Masked (-Inf) scores get probability 0.
	for _, kr := range kernels() {
		w := kr.NR()
		s := make([]float32, 3*w)
		for c := 0; c < w; c++ {
			s[c], s[w+c], s[2*w+c] = 1, float32(math.Inf(-1)), 2
		}
		sum := make([]float64, w)
		kr.vec.softmaxCols(s, 3, w, 1, sum)
		for c := 0; c < w; c++ {
			if p := float64(s[w+c]) / sum[c]; p > 1e-30 || math.Abs(sum[c]-(math.Exp(-1)+1)) > 1e-6 {
				t.Fatalf("%s: masked probability %g, sum %g", kr.Name(), p, sum[c])
			}
		}
	}
}

// FuzzSoftmax differentially tests every kernel's column softmax against
// softmaxRef.
func FuzzSoftmax(f *testing.F) {
	f.Add(uint16(1), uint64(1), float32(1))
	f.Add(uint16(13), uint64(2), float32(0.35355339))
	f.Add(uint16(509), uint64(3), float32(20))
	f.Fuzz(func(t *testing.T, n uint16, seed uint64, scale float32) {
		if !(math.Abs(float64(scale)) <= 100) {
			return
		}
		rng := rand.New(rand.NewPCG(seed, 5))
		x := randSlice(rng, 1+int(n)%600)
		checkSoftmax(t, x, scale)
	})
}

// TestActivations checks the element-wise kernels of every kernel set
// against their float64 references, over odd lengths (vector bodies and
// scalar tails) and extreme values.
func TestActivations(t *testing.T) {
	var xs []float32
	for x := float32(-30); x <= 30; x += 0.0137 {
		xs = append(xs, x)
	}
	xs = append(xs, -1e6, 1e6, -100, 100, 0, 3e38, -3e38)
	near := func(got, want float32) bool {
		if math.IsNaN(float64(want)) {
			return math.IsNaN(float64(got))
		}
		return got == want || math.Abs(float64(got-want)) <= 2e-7*(1+math.Abs(float64(want)))
	}
	for _, kr := range kernels() {
		for _, n := range []int{1, 7, 8, 9, 31, len(xs)} {
			x := xs[len(xs)-n:]
			g := slices.Clone(x)
			kr.vec.gelu(g)
			u := make([]float32, n)
			for i := range u {
				u[i] = float32(i%5) - 1.5
			}
			s := slices.Clone(x)
			kr.vec.siluMul(s, u)
			for i, v := range x {
				if want := geluTanhRef(v); !near(g[i], want) {
					t.Fatalf("%s: gelu(%g) = %g, reference %g", kr.Name(), v, g[i], want)
				}
				if want := siluRef(v) * u[i]; !near(s[i], want) {
					t.Fatalf("%s: silu(%g)·%g = %g, reference %g", kr.Name(), v, u[i], s[i], want)
				}
			}
		}
		nan := []float32{float32(math.NaN()), 1, 2, 3, 4, 5, 6, 7, 8}
		kr.vec.gelu(nan)
		nan2 := []float32{float32(math.NaN()), 1, 2, 3, 4, 5, 6, 7, 8}
		kr.vec.siluMul(nan2, nan2)
		if !math.IsNaN(float64(nan[0])) || !math.IsNaN(float64(nan2[0])) {
			t.Errorf("%s: NaN does not propagate: gelu %g, silu %g", kr.Name(), nan[0], nan2[0])
		}
	}
	if g := geluErf(1); math.Abs(float64(g)-0.8413447460685429) > 1e-7 {
		t.Errorf("geluErf(1) = %g", g)
	}
}

func TestNorms(t *testing.T) {
	x := []float32{1, -2, 3, 0.5}
	w := []float32{1, 2, 0.5, -1}
	b := []float32{0.1, 0, -0.1, 1}
	out := make([]float32, 4)
	rmsNorm(out, x, w, 1e-5)
	rms := math.Sqrt((1+4+9+0.25)/4 + 1e-5)
	for i := range x {
		if want := float64(x[i]) / rms * float64(w[i]); math.Abs(float64(out[i])-want) > 1e-6 {
			t.Errorf("rmsNorm[%d] = %g, want %g", i, out[i], want)
		}
	}
	layerNorm(out, x, w, b, 1e-5)
	mean := 2.5 / 4
	var v float64
	for _, xi := range x {
		v += (float64(xi) - mean) * (float64(xi) - mean)
	}
	sd := math.Sqrt(v/4 + 1e-5)
	for i := range x {
		if want := (float64(x[i])-mean)/sd*float64(w[i]) + float64(b[i]); math.Abs(float64(out[i])-want) > 1e-6 {
			t.Errorf("layerNorm[%d] = %g, want %g", i, out[i], want)
		}
	}
}
