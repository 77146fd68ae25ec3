package blas

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// sparseMatrix returns a rows×cols matrix with about the given fraction of
// zeros, plus, when rows > 2, an empty row 0 and a full row 1.
func sparseMatrix(rng *rand.Rand, rows, cols int, sparsity float64) []float32 {
	w := randSlice(rng, rows*cols)
	for i := range w {
		if rng.Float64() < sparsity {
			w[i] = 0
		}
	}
	if rows > 2 {
		clear(w[:cols])
		for j := 0; j < cols; j++ {
			if w[cols+j] == 0 {
				w[cols+j] = 1
			}
		}
	}
	return w
}

// testSpMMT checks SpMMT (best kernel packing) and the portable row kernel
// against SpMMTRef on one size, on 1 and 3 threads (bit-identical).
func testSpMMT(t *testing.T, rng *rand.Rand, m, n, k int, sparsity float64) {
	t.Helper()
	a := randSlice(rng, m*k)
	w := sparseMatrix(rng, n, k, sparsity)
	b := NewCSR(w, n, k, k, 1)
	if err := b.Check(); err != nil {
		t.Fatal(err)
	}
	want := make([]float32, m*n)
	SpMMTRef(want, a, b, m, n, k)
	// The CSR product equals the dense one.
	dense := make([]float32, m*n)
	MatMulTRef(dense, a, w, m, n, k)
	tol := func(i int) float64 {
		var mag float64
		r, j := i/n, i%n
		for p := 0; p < k; p++ {
			mag += math.Abs(float64(a[r*k+p]) * float64(w[j*k+p]))
		}
		return float64(k+2)*0x1p-23*mag + 1e-30
	}
	for i := range want {
		if d := math.Abs(float64(want[i]) - float64(dense[i])); d > tol(i) {
			t.Fatalf("m=%d n=%d k=%d: SpMMTRef %g, dense reference %g", m, n, k, want[i], dense[i])
		}
	}
	for _, kr := range All() {
		c1 := make([]float32, m*n)
		SpMMT(kr, c1, a, b, m, n, k, 1)
		for i := range c1 {
			if d := math.Abs(float64(c1[i]) - float64(want[i])); !(d <= tol(i)) {
				t.Fatalf("%s m=%d n=%d k=%d sparsity %.2f: C[%d,%d] = %g, reference %g", kr.name, m, n, k, sparsity, i/n, i%n, c1[i], want[i])
			}
		}
		c3 := make([]float32, m*n)
		for i := range c3 {
			c3[i] = float32(math.NaN())
		}
		SpMMT(kr, c3, a, b, m, n, k, 3)
		if !slices.Equal(c1, c3) {
			t.Fatalf("%s m=%d n=%d k=%d: 1 and 3 threads differ", kr.name, m, n, k)
		}
	}
	// The portable row kernel against the dispatched one.
	ap := goKernel().PackMatrix(a, m, k, k, 1, SpanelRows, 1)
	out1, out2 := make([]float32, SpanelRows), make([]float32, SpanelRows)
	for j := 0; j < n; j++ {
		lo, hi := b.RowPtr[j], b.RowPtr[j+1]
		spRowGo(b.Val[lo:hi], b.Col[lo:hi], ap.Data[:k*SpanelRows], out1)
		spRow(b.Val[lo:hi], b.Col[lo:hi], ap.Data[:k*SpanelRows], out2)
		for i := range out1 {
			if d := math.Abs(float64(out1[i]) - float64(out2[i])); d > 1e-4*(1+math.Abs(float64(out1[i]))) {
				t.Fatalf("row %d: spRowGo %g, spRow %g", j, out1[i], out2[i])
			}
		}
	}
}

func TestSpMMTRandom(t *testing.T) {
	seed := uint64(20261129)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	sizes := [][3]int{{1, 1, 1}, {1, 3, 1}, {3, 1, 5}, {64, 64, 64}, {65, 65, 63}, {130, 129, 257}, {7, 300, 31}}
	for i := 0; i < 20; i++ {
		sizes = append(sizes, [3]int{1 + rng.IntN(150), 1 + rng.IntN(200), 1 + rng.IntN(300)})
	}
	for i, s := range sizes {
		testSpMMT(t, rng, s[0], s[1], s[2], []float64{0, 0.5, 0.9, 0.99, 1}[i%5])
	}
}

func TestCSRCheck(t *testing.T) {
	bad := []*CSR{
		{Rows: 1, Cols: 2, RowPtr: []int64{0}},
		{Rows: 1, Cols: 2, RowPtr: []int64{0, 1}, Col: []int32{2}, Val: []float32{1}},
		{Rows: 2, Cols: 2, RowPtr: []int64{0, 2, 1}, Col: []int32{0}, Val: []float32{1}},
		{Rows: 1, Cols: 2, RowPtr: []int64{0, 1}, Col: []int32{-1}, Val: []float32{1}},
	}
	for i, b := range bad {
		if b.Check() == nil {
			t.Errorf("case %d: invalid CSR accepted", i)
		}
	}
}

// FuzzSpMMT differentially tests SpMMT (assembly row kernel where the CPU
// has it) against SpMMTRef over odd sizes and sparsities, with an empty
// and a full row.
func FuzzSpMMT(f *testing.F) {
	for _, s := range [][5]uint64{{1, 1, 1, 0, 1}, {2, 3, 5, 128, 2}, {65, 7, 13, 230, 3}, {64, 64, 384, 250, 4}, {97, 31, 385, 255, 5}, {17, 257, 19, 200, 6}} {
		f.Add(uint16(s[0]), uint16(s[1]), uint16(s[2]), uint8(s[3]), s[4])
	}
	f.Fuzz(func(t *testing.T, m, n, k uint16, sp uint8, seed uint64) {
		M, N, K := 1+int(m)%150, 1+int(n)%200, 1+int(k)%800
		testSpMMT(t, rand.New(rand.NewPCG(seed, 8)), M, N, K, float64(sp)/255)
	})
}
