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

// matMulWant returns the float64 reference product and, per element, the
// worst-case float32 rounding of a k-term dot product: (k+2)·2⁻²³·Σ|a·b|.
func matMulWant(a, b []float32, m, n, k int) (want []float32, tol []float64) {
	want = make([]float32, m*n)
	MatMulTRef(want, a, b, m, n, k)
	tol = make([]float64, m*n)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var mag float64
			for p := 0; p < k; p++ {
				mag += math.Abs(float64(a[i*k+p]) * float64(b[j*k+p]))
			}
			tol[i*n+j] = float64(k+2)*0x1p-23*mag + 1e-30
		}
	}
	return want, tol
}

// testMatMulSizes runs every kernel on one size, on 1 and 3 threads, and
// checks the result against the reference and the thread counts against
// each other bit for bit.
func testMatMulSizes(t *testing.T, rng *rand.Rand, m, n, k int) {
	t.Helper()
	a, b := randSlice(rng, m*k), randSlice(rng, n*k)
	want, tol := matMulWant(a, b, m, n, k)
	for _, kr := range kernels() {
		c1 := make([]float32, m*n)
		kr.matMulT(c1, a, b, m, n, k, 1)
		for i := range c1 {
			if d := math.Abs(float64(c1[i]) - float64(want[i])); !(d <= tol[i]) {
				t.Fatalf("%s m=%d n=%d k=%d: C[%d,%d] = %g, reference %g (|diff| %g > %g)", kr.name, m, n, k, i/n, i%n, c1[i], want[i], d, tol[i])
			}
		}
		c3 := make([]float32, m*n)
		for i := range c3 {
			c3[i] = float32(math.NaN()) // every element must be written
		}
		kr.matMulT(c3, a, b, m, n, k, 3)
		if !slices.Equal(c1, c3) {
			t.Fatalf("%s m=%d n=%d k=%d: 1 and 3 threads differ", kr.name, m, n, k)
		}
	}
}

func TestMatMulTRandom(t *testing.T) {
	seed := uint64(20240601)
	t.Logf("seed %d, kernels %v", seed, Kernels())
	rng := rand.New(rand.NewPCG(seed, 1))
	sizes := [][3]int{
		{1, 1, 1}, {1, 17, 3}, {7, 1, 5}, {6, 16, 8}, {4, 4, 4}, {13, 29, 31},
		{97, 257, 385}, // one past the A block, the B block and the kc split
		{100, 270, 770}, {5, 300, 2}, {33, 7, 1000},
	}
	for i := 0; i < 20; i++ {
		sizes = append(sizes, [3]int{1 + rng.IntN(120), 1 + rng.IntN(300), 1 + rng.IntN(500)})
	}
	for _, s := range sizes {
		testMatMulSizes(t, rng, s[0], s[1], s[2])
	}
}

func TestMatMulTZeroK(t *testing.T) {
	c := []float32{1, 2, 3, 4}
	MatMulT(c, nil, nil, 2, 2, 0, 1)
	if !slices.Equal(c, []float32{0, 0, 0, 0}) {
		t.Fatalf("k=0: got %v, want zeros", c)
	}
}

// FuzzMatMulT differentially tests every optimized kernel against
// MatMulTRef over arbitrary (odd, prime, off-block) sizes.
func FuzzMatMulT(f *testing.F) {
	for _, s := range [][4]uint64{{1, 1, 1, 1}, {2, 3, 5, 2}, {7, 11, 13, 3}, {6, 16, 384, 4}, {97, 31, 385, 5}, {17, 257, 19, 6}, {31, 37, 767, 7}} {
		f.Add(uint16(s[0]), uint16(s[1]), uint16(s[2]), s[3])
	}
	f.Fuzz(func(t *testing.T, m, n, k uint16, seed uint64) {
		M, N, K := 1+int(m)%100, 1+int(n)%300, 1+int(k)%900
		testMatMulSizes(t, rand.New(rand.NewPCG(seed, 2)), M, N, K)
	})
}

func TestPackStrided(t *testing.T) {
	// A 5×3 matrix stored transposed (column-major) packs like the
	// row-major one, and row reads it back.
	rm := []float32{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}
	cm := make([]float32, 15)
	for i := 0; i < 5; i++ {
		for j := 0; j < 3; j++ {
			cm[j*5+i] = rm[i*3+j]
		}
	}
	p1 := packMatrix(rm, 5, 3, 3, 1, 4, 1, nil)
	p2 := packMatrix(cm, 5, 3, 1, 5, 4, 1, nil)
	if !slices.Equal(p1.data, p2.data) {
		t.Fatalf("strided packing differs:\n%v\n%v", p1.data, p2.data)
	}
	row := make([]float32, 3)
	for i := 0; i < 5; i++ {
		p1.row(row, i)
		if !slices.Equal(row, rm[i*3:i*3+3]) {
			t.Fatalf("row %d: got %v", i, row)
		}
	}
	if len(p1.data) != 2*3*4 || p1.data[3*4+3] != 0 {
		t.Fatalf("padding: %v", p1.data)
	}
}

// TestPack checks packing, with every kernel set's pack4 and on several
// threads, against the definition of the panel layout, over odd sizes,
// row strides wider than the rows, and padding left dirty beforehand.
func TestPack(t *testing.T) {
	seed := uint64(5)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 6))
	for it := 0; it < 200; it++ {
		rows, k, r := 1+rng.IntN(40), 1+rng.IntN(70), []int{4, 6, 12, 16, 32}[rng.IntN(5)]
		si := k + rng.IntN(5)
		src := randSlice(rng, rows*si)
		np := (rows + r - 1) / r
		want := make([]float32, np*k*r)
		for i := 0; i < rows; i++ {
			for j := 0; j < k; j++ {
				want[(i/r)*k*r+j*r+i%r] = src[i*si+j]
			}
		}
		for _, kr := range kernels() {
			p := &packed{data: make([]float32, np*k*r), rows: rows, k: k, r: r}
			for i := range p.data {
				p.data[i] = float32(math.NaN())
			}
			p.pack(src, si, 1, 1+it%3, kr.vec)
			if !slices.Equal(p.data, want) {
				t.Fatalf("%s: rows %d k %d r %d si %d: packed panels differ", kr.name, rows, k, r, si)
			}
		}
	}
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
		for _, w := range []int{kr.nr, 8, 3} {
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
						t.Fatalf("%s w=%d: n=%d scale %g: softmax[%d] of column %d = %g, reference %g", kr.name, w, n, scale, r, c, got, want[r])
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
		w := kr.nr
		s := make([]float32, 3*w)
		for c := 0; c < w; c++ {
			s[c], s[w+c], s[2*w+c] = 1, float32(math.Inf(-1)), 2
		}
		sum := make([]float64, w)
		kr.vec.softmaxCols(s, 3, w, 1, sum)
		for c := 0; c < w; c++ {
			if p := float64(s[w+c]) / sum[c]; p > 1e-30 || math.Abs(sum[c]-(math.Exp(-1)+1)) > 1e-6 {
				t.Fatalf("%s: masked probability %g, sum %g", kr.name, p, sum[c])
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
					t.Fatalf("%s: gelu(%g) = %g, reference %g", kr.name, v, g[i], want)
				}
				if want := siluRef(v) * u[i]; !near(s[i], want) {
					t.Fatalf("%s: silu(%g)·%g = %g, reference %g", kr.name, v, u[i], s[i], want)
				}
			}
		}
		nan := []float32{float32(math.NaN()), 1, 2, 3, 4, 5, 6, 7, 8}
		kr.vec.gelu(nan)
		nan2 := []float32{float32(math.NaN()), 1, 2, 3, 4, 5, 6, 7, 8}
		kr.vec.siluMul(nan2, nan2)
		if !math.IsNaN(float64(nan[0])) || !math.IsNaN(float64(nan2[0])) {
			t.Errorf("%s: NaN does not propagate: gelu %g, silu %g", kr.name, nan[0], nan2[0])
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
