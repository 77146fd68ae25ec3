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

// testSpMMT checks SpMMT with every kernel (AVX-512, AVX2 and the pure-Go
// one, as the CPU has them) against SpMMTRef on one size, on 1 and 3
// threads (bit-identical, and the assembly kernels bit-identical to each
// other), and again with strided A and C.
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
		// An assembly kernel sums each element as its dense Gemm does
		// (the same FMA chains, cut into the same blocks of k): the very
		// bits of the dense product, zeros included.
		if kr.asm {
			cd := make([]float32, m*n)
			kr.MatMulT(cd, a, w, m, n, k, 2)
			for i := range cd {
				if math.Float32bits(cd[i]) != math.Float32bits(c1[i]) {
					t.Fatalf("%s m=%d n=%d k=%d sparsity %.2f: C[%d,%d] sparse %g (%#x), dense Gemm %g (%#x)", kr.name, m, n, k, sparsity,
						i/n, i%n, c1[i], math.Float32bits(c1[i]), cd[i], math.Float32bits(cd[i]))
				}
			}
		}
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
	// The regrouped form holds exactly the CSR's nonzeros.
	checkSparseB(t, NewSparseB(b), b)
	// Strided A and C: A rows ld apart, C rows ldc apart with its padding
	// left alone, every kernel against the same reference.
	ld, ldc := k+1+rng.IntN(5), n+1+rng.IntN(7)
	as := make([]float32, m*ld)
	for i := 0; i < m; i++ {
		copy(as[i*ld:i*ld+k], a[i*k:i*k+k])
	}
	sb := NewSparseB(b)
	for _, kr := range All() {
		ap := kr.PackMatrix(as, m, k, ld, 1, SpanelRows, 2)
		cs := make([]float32, (m-1)*ldc+n)
		for i := range cs {
			cs[i] = -7
		}
		kr.SpMMTPacked(cs, ldc, ap, sb, m, 2)
		for i := 0; i < m; i++ {
			for j := 0; j < ldc && i*ldc+j < len(cs); j++ {
				got := cs[i*ldc+j]
				if j >= n {
					if got != -7 {
						t.Fatalf("%s m=%d n=%d k=%d ldc=%d: padding C[%d,%d] written", kr.name, m, n, k, ldc, i, j)
					}
					continue
				}
				if d := math.Abs(float64(got) - float64(want[i*n+j])); !(d <= tol(i*n+j)) {
					t.Fatalf("%s m=%d n=%d k=%d ldc=%d: C[%d,%d] = %g, reference %g", kr.name, m, n, k, ldc, i, j, got, want[i*n+j])
				}
			}
		}
	}
}

// checkSparseB checks the structure of s against the CSR it came from:
// groups and blocks in order, each segment one nonempty (row, block) run
// of b's nonzeros with offsets inside the block, pairs of equal counts
// interleaved.
func checkSparseB(t *testing.T, s *SparseB, b *CSR) {
	t.Helper()
	groups := (b.Rows + s.gr - 1) / s.gr
	if s.Rows() != b.Rows || s.Cols() != b.Cols || len(s.blk) != groups*s.nkb+1 || len(s.nzb) != len(s.blk) || s.NNZ() != b.NNZ() || len(s.off) != len(s.val) {
		t.Fatalf("SparseB %d×%d: %d blocks, %d nonzeros; CSR %d×%d, %d nonzeros", s.Rows(), s.Cols(), len(s.blk)-1, s.NNZ(), b.Rows, b.Cols, b.NNZ())
	}
	next := slices.Clone(b.RowPtr[:b.Rows]) // next unmatched nonzero of each row
	for g := 0; g < groups; g++ {
		for kb := 0; kb < s.nkb; kb++ {
			i := g*s.nkb + kb
			p := s.nzb[i]
			segs := s.seg[s.blk[i]:s.blk[i+1]]
			np := int(s.pairs[i])
			if 2*np > len(segs) {
				t.Fatalf("group %d block %d: %d pairs of %d segments", g, kb, np, len(segs))
			}
			// row checks segment sg of group g: cnt nonzeros every step-th
			// from p.
			row := func(sg uint32, p int64, step int64) {
				jj, cnt := int(sg&0xffff), int64(sg>>16)
				if jj%256 != 0 || jj/256 >= s.gr || cnt == 0 || cnt > int64(s.bc) {
					t.Fatalf("group %d block %d: bad segment %#x", g, kb, sg)
				}
				j := g*s.gr + jj/256
				for q := int64(0); q < cnt; q, p = q+1, p+step {
					want := next[j]
					next[j]++
					col := int(s.bstart[kb]) + int(s.off[p])/256
					if s.off[p]%256 != 0 || col >= b.Cols || want >= b.RowPtr[j+1] || int(b.Col[want]) != col || b.Val[want] != s.val[p] {
						t.Fatalf("group %d block %d row %d: nonzero %d is (%d, %g)", g, kb, j, p, col, s.val[p])
					}
				}
			}
			for q := 0; q < np; q++ {
				x, y := segs[2*q], segs[2*q+1]
				cx, cy := int64(x>>16), int64(y>>16)
				if cx < cy || cy == 0 {
					t.Fatalf("group %d block %d: pair %#x %#x", g, kb, x, y)
				}
				// x's first cy nonzeros interleave with y's, its others
				// follow.
				row(x&0xffff|uint32(cy)<<16, p, 2)
				row(y, p+1, 2)
				p += 2 * cy
				if cx > cy {
					row(x&0xffff|uint32(cx-cy)<<16, p, 1)
					p += cx - cy
				}
			}
			for _, sg := range segs[2*np:] {
				row(sg, p, 1)
				p += int64(sg >> 16)
			}
			if p != s.nzb[i+1] {
				t.Fatalf("group %d block %d: segments hold %d nonzeros, block %d", g, kb, p-s.nzb[i], s.nzb[i+1]-s.nzb[i])
			}
		}
	}
	for j := 0; j < b.Rows; j++ {
		if next[j] != b.RowPtr[j+1] {
			t.Fatalf("row %d: %d nonzeros missing", j, b.RowPtr[j+1]-next[j])
		}
	}
}

func TestSpMMTRandom(t *testing.T) {
	seed := uint64(20261129)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	sizes := [][3]int{{1, 1, 1}, {1, 3, 1}, {3, 1, 5}, {64, 64, 64}, {65, 65, 63}, {130, 129, 257}, {7, 300, 31},
		{70, 40, 768}, {33, 65, 1000}, {9, 17, 3072}} // sums of several Gemm blocks (192 or 384 terms)
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
		{Rows: 1, Cols: 300, RowPtr: []int64{0, 2}, Col: []int32{200, 5}, Val: []float32{1, 2}},
		{Rows: 1, Cols: 3, RowPtr: []int64{0, 2}, Col: []int32{1, 1}, Val: []float32{1, 2}},
	}
	for i, b := range bad {
		if b.Check() == nil {
			t.Errorf("case %d: invalid CSR accepted", i)
		}
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("case %d: NewSparseB accepted an invalid CSR", i)
				}
			}()
			NewSparseB(b)
		}()
	}
}

// FuzzSpMMT differentially tests SpMMT with every kernel (the AVX-512 and
// AVX2 assembly ones where the CPU has them, and the pure-Go one) against
// SpMMTRef over odd sizes, strides and sparsities, with an empty and a
// full row.
func FuzzSpMMT(f *testing.F) {
	for _, s := range [][5]uint64{{1, 1, 1, 0, 1}, {2, 3, 5, 128, 2}, {65, 7, 13, 230, 3}, {64, 64, 384, 250, 4}, {97, 31, 385, 255, 5}, {17, 257, 19, 200, 6}} {
		f.Add(uint16(s[0]), uint16(s[1]), uint16(s[2]), uint8(s[3]), s[4])
	}
	f.Fuzz(func(t *testing.T, m, n, k uint16, sp uint8, seed uint64) {
		M, N, K := 1+int(m)%150, 1+int(n)%200, 1+int(k)%800
		testSpMMT(t, rand.New(rand.NewPCG(seed, 8)), M, N, K, float64(sp)/255)
	})
}
