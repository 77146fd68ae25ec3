package blas

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
	for _, kr := range All() {
		c1 := make([]float32, m*n)
		kr.MatMulT(c1, a, b, m, n, k, 1)
		for i := range c1 {
			if d := math.Abs(float64(c1[i]) - float64(want[i])); !(d <= tol[i]) {
				t.Fatalf("%s m=%d n=%d k=%d: C[%d,%d] = %g, reference %g (|diff| %g > %g)", kr.name, m, n, k, i/n, i%n, c1[i], want[i], d, tol[i])
			}
		}
		c3 := make([]float32, m*n)
		for i := range c3 {
			c3[i] = float32(math.NaN()) // every element must be written
		}
		kr.MatMulT(c3, a, b, m, n, k, 3)
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
	p1 := goKernel().PackMatrix(rm, 5, 3, 3, 1, 4, 1)
	p2 := goKernel().PackMatrix(cm, 5, 3, 1, 5, 4, 1)
	if !slices.Equal(p1.Data, p2.Data) {
		t.Fatalf("strided packing differs:\n%v\n%v", p1.Data, p2.Data)
	}
	row := make([]float32, 3)
	for i := 0; i < 5; i++ {
		p1.Row(row, i)
		if !slices.Equal(row, rm[i*3:i*3+3]) {
			t.Fatalf("row %d: got %v", i, row)
		}
	}
	if len(p1.Data) != 2*3*4 || p1.Data[3*4+3] != 0 {
		t.Fatalf("padding: %v", p1.Data)
	}
}

// TestPack checks packing, with every kernel's pack4 and block transposes
// and on several threads, against the definition of the panel layout,
// over odd sizes, row strides wider than the rows, and padding left dirty
// beforehand, from row-major and column-major sources.
func TestPack(t *testing.T) {
	seed := uint64(5)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 6))
	for it := 0; it < 200; it++ {
		rows, k, r := 1+rng.IntN(150), 1+rng.IntN(100), []int{4, 6, 12, 16, 32, SpanelRows}[rng.IntN(6)]
		si := k + rng.IntN(5)
		src := randSlice(rng, rows*si)
		np := (rows + r - 1) / r
		want := make([]float32, np*k*r)
		for i := 0; i < rows; i++ {
			for j := 0; j < k; j++ {
				want[(i/r)*k*r+j*r+i%r] = src[i*si+j]
			}
		}
		for _, kr := range All() {
			p := &Packed{Data: make([]float32, np*k*r), Rows: rows, K: k, R: r}
			for i := range p.Data {
				p.Data[i] = float32(math.NaN())
			}
			kr.Pack(p, src, si, 1, 1+it%3)
			if !slices.Equal(p.Data, want) {
				t.Fatalf("%s: rows %d k %d r %d si %d: packed panels differ", kr.name, rows, k, r, si)
			}
			// The same matrix stored column-major (si 1, sj ≥ rows).
			sj := rows + rng.IntN(5)
			cm := make([]float32, k*sj)
			for i := 0; i < rows; i++ {
				for j := 0; j < k; j++ {
					cm[j*sj+i] = src[i*si+j]
				}
			}
			for i := range p.Data {
				p.Data[i] = float32(math.NaN())
			}
			kr.Pack(p, cm, 1, sj, 1+it%3)
			if !slices.Equal(p.Data, want) {
				t.Fatalf("%s: rows %d k %d r %d sj %d: column-major packed panels differ", kr.name, rows, k, r, sj)
			}
		}
	}
}
