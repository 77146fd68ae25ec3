package blas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// transposed returns the cols×rows transpose of the row-major rows×cols
// matrix x.
func transposed(x []float32, rows, cols int) []float32 {
	t := make([]float32, rows*cols)
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			t[j*rows+i] = x[i*cols+j]
		}
	}
	return t
}

func nanSlice(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.NaN())
	}
	return v
}

// checkClose compares got with want element by element within tol.
func checkClose(t *testing.T, what string, got, want []float32, tol []float64, n int) {
	t.Helper()
	for i := range want {
		if d := math.Abs(float64(got[i]) - float64(want[i])); !(d <= tol[i]) {
			t.Fatalf("%s: C[%d,%d] = %g, reference %g (|diff| %g > %g)", what, i/n, i%n, got[i], want[i], d, tol[i])
		}
	}
}

// testFormsSizes checks MatMul, MatMulTN, MatMulTNAdd and GemmAdd of every
// kernel on one size against the references, on 1 and 3 threads, bit for
// bit between the thread counts. The operands are drawn in the layout of
// MatMulT (A [m, k], B [n, k]) and stored transposed as each form wants,
// so one tolerance serves all.
func testFormsSizes(t *testing.T, rng *rand.Rand, m, n, k int) {
	t.Helper()
	a, b := randSlice(rng, m*k), randSlice(rng, n*k)
	want, tol := matMulWant(a, b, m, n, k)
	aT, bT := transposed(a, m, k), transposed(b, n, k) // [k, m], [k, n]

	// The references agree bit for bit: same products, same order.
	ref := make([]float32, m*n)
	MatMulRef(ref, a, bT, m, n, k)
	if !slices.Equal(ref, want) {
		t.Fatalf("m=%d n=%d k=%d: MatMulRef differs from MatMulTRef", m, n, k)
	}
	MatMulTNRef(ref, aT, bT, m, n, k)
	if !slices.Equal(ref, want) {
		t.Fatalf("m=%d n=%d k=%d: MatMulTNRef differs from MatMulTRef", m, n, k)
	}

	// Accumulating forms: C starts at c0; the float64 sum is rounded once,
	// and the kernels round once more per block of k.
	c0 := randSlice(rng, m*n)
	wantAdd := make([]float32, m*n)
	tolAdd := make([]float64, m*n)
	for i := range wantAdd {
		var s, mag float64
		for p := 0; p < k; p++ {
			ab := float64(a[(i/n)*k+p]) * float64(b[(i%n)*k+p])
			s += ab
			mag += math.Abs(ab)
		}
		wantAdd[i] = float32(float64(c0[i]) + s)
		tolAdd[i] = float64(2*k+4)*0x1p-23*(mag+math.Abs(float64(c0[i]))) + 1e-30
	}

	for _, kr := range All() {
		forms := []struct {
			name string
			add  bool
			run  func(c []float32, threads int)
		}{
			{"MatMul", false, func(c []float32, th int) { kr.MatMul(c, a, bT, m, n, k, th) }},
			{"MatMulTN", false, func(c []float32, th int) { kr.MatMulTN(c, aT, bT, m, n, k, th) }},
			{"MatMulTNAdd", true, func(c []float32, th int) { kr.MatMulTNAdd(c, aT, bT, m, n, k, th) }},
			{"GemmAdd", true, func(c []float32, th int) {
				ap := kr.PackA(a, m, k, k, 1, th)
				bp := kr.PackB(b, n, k, k, 1, th)
				kr.GemmAdd(c, n, ap, bp, m, n, k, th)
			}},
		}
		for _, f := range forms {
			var c1, c3 []float32
			if f.add {
				c1, c3 = slices.Clone(c0), slices.Clone(c0)
			} else {
				c1, c3 = nanSlice(m*n), nanSlice(m*n) // every element must be written
			}
			f.run(c1, 1)
			what := fmt.Sprintf("%s %s m=%d n=%d k=%d", kr.name, f.name, m, n, k)
			if f.add {
				checkClose(t, what, c1, wantAdd, tolAdd, n)
			} else {
				checkClose(t, what, c1, want, tol, n)
			}
			f.run(c3, 3)
			if !slices.Equal(c1, c3) {
				t.Fatalf("%s: 1 and 3 threads differ", what)
			}
		}
	}
}

func TestMatMulFormsRandom(t *testing.T) {
	seed := uint64(20250301)
	t.Logf("seed %d, kernels %v", seed, Kernels())
	rng := rand.New(rand.NewPCG(seed, 3))
	sizes := [][3]int{
		{1, 1, 1}, {1, 17, 3}, {7, 1, 5}, {6, 16, 8}, {4, 4, 4}, {12, 32, 16}, {13, 29, 31},
		{97, 257, 385}, // one past the A block, the B block and the kc split
		{193, 513, 193}, {5, 300, 2}, {33, 7, 1000}, {31, 37, 767},
	}
	for i := 0; i < 16; i++ {
		sizes = append(sizes, [3]int{1 + rng.IntN(120), 1 + rng.IntN(300), 1 + rng.IntN(500)})
	}
	for _, s := range sizes {
		testFormsSizes(t, rng, s[0], s[1], s[2])
	}
}

// FuzzMatMulForms differentially tests MatMul, MatMulTN, MatMulTNAdd and
// GemmAdd of every kernel against the references over arbitrary (odd,
// prime, off-block) sizes.
func FuzzMatMulForms(f *testing.F) {
	for _, s := range [][4]uint64{{1, 1, 1, 1}, {2, 3, 5, 2}, {7, 11, 13, 3}, {6, 16, 384, 4}, {97, 31, 385, 5}, {17, 257, 19, 6}, {31, 37, 767, 7}} {
		f.Add(uint16(s[0]), uint16(s[1]), uint16(s[2]), s[3])
	}
	f.Fuzz(func(t *testing.T, m, n, k uint16, seed uint64) {
		M, N, K := 1+int(m)%100, 1+int(n)%300, 1+int(k)%900
		testFormsSizes(t, rand.New(rand.NewPCG(seed, 4)), M, N, K)
	})
}

// TestGemmAdd checks that GemmAdd adds into a C with a row stride wider
// than n, leaving the columns past n alone, and over several blocks of k.
func TestGemmAdd(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	m, n, k, ldc := 29, 45, 801, 50
	a, b := randSlice(rng, m*k), randSlice(rng, n*k)
	want, tol := matMulWant(a, b, m, n, k)
	for _, kr := range All() {
		ap := kr.PackA(a, m, k, k, 1, 2)
		bp := kr.PackB(b, n, k, k, 1, 2)
		c := make([]float32, m*ldc)
		for i := range c {
			c[i] = float32(i%7) - 3
		}
		c0 := slices.Clone(c)
		kr.GemmAdd(c, ldc, ap, bp, m, n, k, 2)
		// Twice: C = c0 + 2·A·Bᵀ.
		kr.GemmAdd(c, ldc, ap, bp, m, n, k, 2)
		for i := 0; i < m; i++ {
			for j := 0; j < ldc; j++ {
				got, old := float64(c[i*ldc+j]), float64(c0[i*ldc+j])
				if j >= n {
					if got != old {
						t.Fatalf("%s: C[%d,%d] past n changed: %g -> %g", kr.name, i, j, old, got)
					}
					continue
				}
				w, e := old+2*float64(want[i*n+j]), 4*tol[i*n+j]+float64(2*k)*0x1p-23*math.Abs(old)
				if d := math.Abs(got - w); !(d <= e) {
					t.Fatalf("%s: C[%d,%d] = %g, want %g (|diff| %g > %g)", kr.name, i, j, got, w, d, e)
				}
			}
		}
		// k = 0 adds nothing; Gemm with k = 0 clears.
		c1 := slices.Clone(c)
		kr.GemmAdd(c1, ldc, ap, bp, m, n, 0, 1)
		if !slices.Equal(c1, c) {
			t.Fatalf("%s: GemmAdd with k=0 changed C", kr.name)
		}
		kr.Gemm(c1, ldc, ap, bp, m, n, 0, 1)
		for i := 0; i < m; i++ {
			for j := 0; j < n; j++ {
				if c1[i*ldc+j] != 0 {
					t.Fatalf("%s: Gemm with k=0 left C[%d,%d] = %g", kr.name, i, j, c1[i*ldc+j])
				}
			}
		}
	}
}

// TestMatMulFormsPanic checks the size checks name the form.
func TestMatMulFormsPanic(t *testing.T) {
	for name, f := range map[string]func(){
		"MatMul":      func() { MatMul(make([]float32, 6), make([]float32, 6), make([]float32, 5), 2, 3, 3, 1) },
		"MatMulTN":    func() { MatMulTN(make([]float32, 5), make([]float32, 6), make([]float32, 9), 2, 3, 3, 1) },
		"MatMulTNAdd": func() { MatMulTNAdd(make([]float32, 6), make([]float32, 5), make([]float32, 9), 2, 3, 3, 1) },
		"MatMulRef":   func() { MatMulRef(make([]float32, 6), make([]float32, 6), make([]float32, 8), 2, 3, 3) },
		"MatMulTNRef": func() { MatMulTNRef(make([]float32, 6), make([]float32, 6), make([]float32, 9), 2, 3, -1) },
	} {
		func() {
			defer func() {
				r := recover()
				s, _ := r.(string)
				if !strings.Contains(s, "blas: "+name+":") {
					t.Errorf("%s: panic %v, want one naming it", name, r)
				}
			}()
			f()
		}()
	}
}
