package blas

import (
	"fmt"
	"math"
)

// CSR is a sparse [Rows, Cols] float32 matrix in compressed sparse row
// form: the nonzeros of row i are Val[RowPtr[i]:RowPtr[i+1]] at columns
// Col[RowPtr[i]:RowPtr[i+1]] (increasing). As the B operand of [SpMMT] it
// is a Linear weight [out, in] with its zeros dropped.
type CSR struct {
	Rows, Cols int
	RowPtr     []int64 // [Rows+1]
	Col        []int32 // [nnz]
	Val        []float32
}

// NewCSR builds the CSR form of the rows×cols matrix whose element (i, j)
// is src[i*si+j*sj], dropping exact zeros (and keeping -0 out as well).
func NewCSR(src []float32, rows, cols, si, sj int) *CSR {
	s := new(CSR)
	s.SetStrided(src, rows, cols, si, sj, -1)
	return s
}

// SetStrided stores in s the rows×cols matrix whose element (i, j) is
// src[i*si+j*sj], which has nnz nonzeros (below 0: not known), dropping
// exact zeros (and -0), reusing s's slices. A transposed source (si 1) is read
// in order: rows are counted first, then filled column by column.
func (s *CSR) SetStrided(src []float32, rows, cols, si, sj, nnz int) {
	s.Rows, s.Cols = rows, cols
	if cap(s.RowPtr) < rows+1 {
		s.RowPtr = make([]int64, rows+1)
	}
	s.RowPtr = s.RowPtr[:rows+1]
	s.RowPtr[0] = 0
	if cap(s.Col) < nnz {
		s.Col, s.Val = make([]int32, 0, nnz), make([]float32, 0, nnz)
	}
	s.Col, s.Val = s.Col[:0], s.Val[:0]
	if si == 1 && sj != 1 {
		// RowPtr[i+1] counts row i's nonzeros, then becomes its end.
		clear(s.RowPtr)
		for j := 0; j < cols; j++ {
			for i, v := range src[j*sj : j*sj+rows] {
				if v != 0 {
					s.RowPtr[i+1]++
				}
			}
		}
		for i := 0; i < rows; i++ {
			s.RowPtr[i+1] += s.RowPtr[i]
		}
		nnz = int(s.RowPtr[rows])
		if cap(s.Col) < nnz {
			s.Col, s.Val = make([]int32, nnz), make([]float32, nnz)
		}
		s.Col, s.Val = s.Col[:nnz], s.Val[:nnz]
		next := s.RowPtr[:rows] // next free slot of each row, from its start
		for j := 0; j < cols; j++ {
			for i, v := range src[j*sj : j*sj+rows] {
				if v != 0 {
					s.Col[next[i]], s.Val[next[i]] = int32(j), v
					next[i]++
				}
			}
		}
		// next[i] is now row i's end, RowPtr[i+1]: shift back.
		copy(s.RowPtr[1:], s.RowPtr[:rows])
		s.RowPtr[0] = 0
		return
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if v := src[i*si+j*sj]; v != 0 {
				s.Col = append(s.Col, int32(j))
				s.Val = append(s.Val, v)
			}
		}
		s.RowPtr[i+1] = int64(len(s.Val))
	}
}

// Sparsity returns the fraction of zeros of a rows×cols matrix (element
// (i, j) at src[i*si+j*sj]); 0 for an empty one.
func Sparsity(src []float32, rows, cols, si, sj int) float64 {
	if rows*cols == 0 {
		return 0
	}
	z := 0
	for i := 0; i < rows; i++ {
		for j := 0; j < cols; j++ {
			if src[i*si+j*sj] == 0 {
				z++
			}
		}
	}
	return float64(z) / float64(rows*cols)
}

// Check validates the structure: RowPtr of Rows+1 nondecreasing offsets
// from 0 to len(Val) = len(Col), every column in [0, Cols), the columns of
// each row increasing. The assembly kernels rely on it; [NewSparseB] calls
// it (O(nnz)).
func (s *CSR) Check() error {
	if s.Rows < 0 || s.Cols < 0 || len(s.RowPtr) != s.Rows+1 || s.RowPtr[0] != 0 || s.RowPtr[s.Rows] != int64(len(s.Val)) || len(s.Col) != len(s.Val) {
		return fmt.Errorf("CSR %d×%d: %d row pointers, %d columns, %d values", s.Rows, s.Cols, len(s.RowPtr), len(s.Col), len(s.Val))
	}
	for i := 0; i < s.Rows; i++ {
		if s.RowPtr[i+1] < s.RowPtr[i] {
			return fmt.Errorf("CSR: row pointer %d decreases", i+1)
		}
	}
	for i := 0; i < s.Rows; i++ {
		prev := int32(-1)
		for p, c := range s.Col[s.RowPtr[i]:s.RowPtr[i+1]] {
			if c <= prev || int(c) >= s.Cols {
				return fmt.Errorf("CSR: row %d: column %d at %d after %d (of %d)", i, c, s.RowPtr[i]+int64(p), prev, s.Cols)
			}
			prev = c
		}
	}
	return nil
}

// SparseAsm reports whether [Kernel.SpMMTPacked] runs an assembly kernel
// on this CPU and build with the assembly GEMM kernels (AVX-512 or
// AVX2+FMA, the kernels whose [Kernel.Assembly] is true); the pure-Go
// kernel runs a scalar one, slower than the dense GEMM at any practical
// sparsity.
func SparseAsm() bool { return Best().asm }

// NNZ returns the number of stored values.
func (s *CSR) NNZ() int { return len(s.Val) }

// SpanelRows is the panel height of the packed A operand of
// [Kernel.SpMMTPacked]: the number of rows of C one pass over a sparse row
// computes, held in registers.
const SpanelRows = 64

// Blocking of [SparseB]: a group holds spGroupRows rows of B (columns of
// C; one parallel job with one A panel), split into blocks of spBlockCols
// columns. One block of an A panel (spBlockCols·64 floats, 32 KB) and the
// job's tile of sums (spGroupRows·64 floats, 16 KB) stay in L1 while every
// row of the group adds its nonzeros of that block. Measured on the
// GPT-2-small shapes against 32 to 256 columns and 32 to 128 rows.
const (
	spGroupRows = 64
	spBlockCols = 128
)

// SparseB is a sparse matrix prepared as the B operand of
// [Kernel.SpMMTPacked] (a pruned Linear weight [out, in]): its nonzeros
// regrouped by groups of 64 rows and blocks of 128 columns, so that the
// kernel reads one 32 KB block of the packed A panel at a time from L1
// instead of gathering 256-byte rows from the whole panel. Build one with
// [NewSparseB] (from a [CSR]) or [PackSparse] (from a dense matrix); it
// takes 6 bytes per nonzero plus 4 per nonempty (row, block) pair, less
// than the CSR's 8 per nonzero. It is immutable and safe for concurrent
// use; the zero value is an empty 0×0 matrix.
type SparseB struct {
	rows, cols int
	gr         int      // rows per group, spGroupRows
	bc         int      // columns per block, spBlockCols (at most 256: off is 16 bits)
	nkb        int      // column blocks
	kcb        int      // the length of the sums folded into C one at a time (see SpMMTPacked)
	bstart     []int32  // [nkb+1]: column block kb is columns [bstart[kb], bstart[kb+1])
	fold       []bool   // [nkb]: block kb starts a new sum of kcb columns
	blk        []int32  // [groups·nkb+1]: segments of group g, block kb are seg[blk[g·nkb+kb]:blk[g·nkb+kb+1]]
	pairs      []uint8  // [groups·nkb]: how many of them are pairs (two entries each, first); see NewSparseB
	nzb        []int64  // [groups·nkb+1]: their nonzeros start at val[nzb[g·nkb+kb]]
	seg        []uint32 // one per nonempty (row, block): (row in group)·256 | count<<16
	val        []float32
	off        []uint16 // (column − block start)·256: byte offset of the A row in the panel block
}

// Rows returns the number of rows (outputs of the Linear weight).
func (s *SparseB) Rows() int { return s.rows }

// Cols returns the number of columns (inputs of the Linear weight).
func (s *SparseB) Cols() int { return s.cols }

// NNZ returns the number of stored values.
func (s *SparseB) NNZ() int { return len(s.val) }

// NewSparseB regroups b (which must pass [CSR.Check]; NewSparseB panics
// otherwise) for [Kernel.SpMMTPacked], in O(nnz + blocks).
//
// The nonzeros of one row in one column block form a segment. A block's
// segments are sorted by length, longest first (so that the kernels' loop
// exits come in runs they predict), and paired in that order: the first
// cy nonzeros of a pair of lengths cx ≥ cy alternate between its two rows,
// then the first row's other cx−cy follow, so that the AVX-512 kernel adds
// two rows at once in eight independent FMA chains. A block has np pairs
// and then, with an odd number of segments, one single.
//
// Its sums are split as [Best]'s [Kernel.Gemm] splits them (see
// [Kernel.NewSparseB]).
func NewSparseB(b *CSR) *SparseB { return Best().NewSparseB(b) }

// NewSparseB is the package's NewSparseB with the sums split as kr's
// [Kernel.Gemm] splits a sum of b.Cols terms ([Kernel.KBlock]): with kr's
// assembly kernel, [Kernel.SpMMTPacked] then gives the very bits of kr's
// Gemm on the dense matrix (zeros included), so that whether a weight is
// kept sparse or dense does not change a result.
func (kr *Kernel) NewSparseB(b *CSR) *SparseB {
	return newSparseB(b, spGroupRows, spBlockCols, kr.KBlock(b.Cols))
}

// KBlock returns the length of the blocks [Kernel.Gemm] splits a sum of k
// terms into: ceil(k/nb) each, nb = ceil(k/kc) blocks for the kernel's
// longest block kc. Each block is one chain of multiply-adds from zero,
// added to the sum of the blocks before it.
func (kr *Kernel) KBlock(k int) int {
	if k <= 0 {
		return 1
	}
	kcMax := orDefault(kr.kc, defaultKC)
	nkc := (k + kcMax - 1) / kcMax
	return (k + nkc - 1) / nkc
}

// newSparseB is NewSparseB with gr rows per group, blocks of at most bc
// columns, both at most 256 (the row and offset fields of seg and off are
// 16 bits), and sums folded every kcb columns: the column blocks are the
// pieces of at most bc columns of each run of kcb.
func newSparseB(b *CSR, gr, bc, kcb int) *SparseB {
	if err := b.Check(); err != nil {
		panic("blas: NewSparseB: " + err.Error())
	}
	if gr < 1 || gr > 256 || bc < 1 || bc > 256 || kcb < 1 {
		panic(fmt.Sprintf("blas: NewSparseB: %d rows × %d columns per block, sums of %d", gr, bc, kcb))
	}
	bstart, fold := []int32{}, []bool{}
	for d0 := 0; d0 < b.Cols; d0 += kcb {
		for c0 := d0; c0 < min(d0+kcb, b.Cols); c0 += bc {
			bstart, fold = append(bstart, int32(c0)), append(fold, c0 == d0)
		}
	}
	if len(bstart) == 0 {
		bstart, fold = append(bstart, 0), append(fold, true) // no columns: one empty block
	}
	nkb := len(bstart)
	bstart = append(bstart, int32(b.Cols))
	colBlock := make([]int32, b.Cols)
	for kb := range nkb {
		for c := bstart[kb]; c < bstart[kb+1]; c++ {
			colBlock[c] = int32(kb)
		}
	}
	groups := (b.Rows + gr - 1) / gr
	nnz := len(b.Val)
	s := &SparseB{rows: b.Rows, cols: b.Cols, gr: gr, bc: bc, nkb: nkb, kcb: kcb, bstart: bstart, fold: fold,
		blk: make([]int32, groups*nkb+1), pairs: make([]uint8, groups*nkb), nzb: make([]int64, groups*nkb+1),
		seg: make([]uint32, 0, min(nnz, b.Rows*nkb)), val: make([]float32, nnz), off: make([]uint16, nnz)}
	// pos[jj] is the next unread nonzero of row g·gr+jj; columns increase
	// within a row, so each block takes a prefix of what is left.
	pos, end := make([]int64, gr), make([]int64, gr)
	order, sorted := make([]int, gr), make([]int, gr)
	hist := make([]int, bc+1)
	cnt := make([]int32, gr*nkb) // [jj][kb]: row jj's nonzeros in block kb
	w := 0                       // next nonzero written
	for g := 0; g < groups; g++ {
		j0, j1 := g*gr, min((g+1)*gr, b.Rows)
		copy(pos, b.RowPtr[j0:j1])
		clear(cnt)
		for jj := 0; jj < j1-j0; jj++ {
			c := cnt[jj*nkb : (jj+1)*nkb]
			for _, col := range b.Col[b.RowPtr[j0+jj]:b.RowPtr[j0+jj+1]] {
				c[colBlock[col]]++
			}
		}
		for kb := 0; kb < nkb; kb++ {
			k0 := bstart[kb]
			nseg := 0
			for jj := 0; jj < j1-j0; jj++ {
				end[jj] = pos[jj] + int64(cnt[jj*nkb+kb])
				if end[jj] > pos[jj] {
					order[nseg] = jj
					nseg++
				}
			}
			if len(s.seg)+nseg > math.MaxInt32 {
				panic("blas: NewSparseB: too many segments")
			}
			count := func(jj int) int { return int(end[jj] - pos[jj]) }
			// Counting sort, longest first, rows in order within a count.
			clear(hist)
			for _, jj := range order[:nseg] {
				hist[bc-count(jj)]++
			}
			for c, sum := 0, 0; c <= bc; c++ {
				hist[c], sum = sum, sum+hist[c]
			}
			for _, jj := range order[:nseg] {
				sorted[hist[bc-count(jj)]] = jj
				hist[bc-count(jj)]++
			}
			order, sorted = sorted, order
			np := nseg / 2
			for i := 0; i < 2*np; i += 2 {
				x, y := order[i], order[i+1]
				cx, cy := count(x), count(y)
				s.seg = append(s.seg, uint32(x)*256|uint32(cx)<<16, uint32(y)*256|uint32(cy)<<16)
				px, py := pos[x], pos[y]
				val, off := s.val[w:w+cx+cy], s.off[w:w+cx+cy]
				for q := range cy {
					val[2*q], off[2*q] = b.Val[px+int64(q)], uint16(b.Col[px+int64(q)]-k0)*256
					val[2*q+1], off[2*q+1] = b.Val[py+int64(q)], uint16(b.Col[py+int64(q)]-k0)*256
				}
				for q := cy; q < cx; q++ {
					val[cy+q], off[cy+q] = b.Val[px+int64(q)], uint16(b.Col[px+int64(q)]-k0)*256
				}
				w += cx + cy
			}
			if nseg%2 == 1 {
				x := order[nseg-1]
				s.seg = append(s.seg, uint32(x)*256|uint32(count(x))<<16)
				for p := pos[x]; p < end[x]; p++ {
					s.val[w], s.off[w] = b.Val[p], uint16(b.Col[p]-k0)*256
					w++
				}
			}
			copy(pos, end[:j1-j0])
			s.pairs[g*nkb+kb] = uint8(np)
			s.blk[g*nkb+kb+1] = int32(len(s.seg))
			s.nzb[g*nkb+kb+1] = int64(w)
		}
	}
	return s
}

// PackSparse returns the [SparseB] of the rows×cols matrix whose element
// (i, j) is src[i*si+j*sj], dropping exact zeros.
func PackSparse(src []float32, rows, cols, si, sj int) *SparseB {
	return NewSparseB(NewCSR(src, rows, cols, si, sj))
}

// SpMMT computes C = A·Bᵀ for row-major dense A [m, k] and sparse B
// [n, k] into row-major c [m, n], on up to threads goroutines (below 1:
// GOMAXPROCS), with kernel kr (nil: [Best]): it packs A in panels of
// [SpanelRows] rows and B as a [SparseB] and calls [Kernel.SpMMTPacked].
// It panics if a size does not fit.
func SpMMT(kr *Kernel, c, a []float32, b *CSR, m, n, k, threads int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(c) < m*n || b.Rows != n || b.Cols != k {
		panic(fmt.Sprintf("blas: SpMMT: sizes m=%d n=%d k=%d do not fit len(a)=%d len(c)=%d B %d×%d", m, n, k, len(a), len(c), b.Rows, b.Cols))
	}
	if kr == nil {
		kr = Best()
	}
	threads = Threads(threads)
	ap := kr.PackMatrix(a, m, k, k, 1, SpanelRows, threads)
	kr.SpMMTPacked(c, n, ap, kr.NewSparseB(b), m, threads)
}

// SpMMTPacked computes c[i*ldc+j] = Σ_p A(i,p)·B(j,p) for the first m rows
// of a (packed in panels of [SpanelRows] rows) and every row j of the
// sparse B, on up to threads goroutines (below 1: GOMAXPROCS), with the
// kernel's sparse counterpart: AVX-512 or AVX2+FMA assembly for the
// assembly kernels, scalar Go for "go". A job is one A panel times one
// group of 64 rows of B: for each block of 128 columns, every row of the
// group adds its nonzeros in that block to its 64 sums (a tile kept in
// L1), and the tile is transposed into C at the end. Each element of C is
// summed as [Kernel.Gemm] sums it: per run of b's kcb columns (see
// [Kernel.NewSparseB]) one FMA chain from zero (a plain multiply-add chain
// for "go") over its row's nonzeros in column order, each run's sum added
// to those of the runs before; one goroutine computes it, so the result
// does not depend on threads. With b built by kr.NewSparseB and an
// assembly kernel, C is bit for bit kr's Gemm of the dense B: a zero
// term of the dense chain adds nothing (finite A assumed).
func (kr *Kernel) SpMMTPacked(c []float32, ldc int, a *Packed, b *SparseB, m, threads int) {
	if a.R != SpanelRows || a.K != b.cols || m > a.Rows || len(a.Data) < a.Panels()*a.K*a.R {
		panic(fmt.Sprintf("blas: SpMMTPacked: A panels of %d rows × %d (want %d rows × %d), m=%d", a.R, a.K, SpanelRows, b.cols, m))
	}
	n := b.rows
	if m <= 0 || n <= 0 {
		return
	}
	if len(c) < (m-1)*ldc+n || ldc < n {
		panic(fmt.Sprintf("blas: SpMMTPacked: len(c)=%d < (m-1)·ldc+n = %d (ldc %d)", len(c), (m-1)*ldc+n, ldc))
	}
	R, K := SpanelRows, a.K
	panels := (m + R - 1) / R
	G := b.gr
	groups := (n + G - 1) / G
	block := kr.spBlock
	if block == nil {
		block = spBlockGo
	}
	nkb := b.nkb
	threads = min(Threads(threads), panels*groups)
	fold := kr.spFold
	if fold == nil {
		fold = spFold
	}
	tiles := make([]float32, 2*threads*G*R) // per worker: the sums and the current run's, [j-j0][r]
	ParallelFor(threads, panels*groups, func(w, job int) {
		// Jobs run panel-major, so consecutive jobs reuse one A panel.
		pn, g := job/groups, job%groups
		panel := a.Data[pn*K*R : (pn+1)*K*R]
		tile, run := tiles[2*w*G*R:(2*w+1)*G*R], tiles[(2*w+1)*G*R:(2*w+2)*G*R]
		clear(tile) // +0 + a run's sums is those sums: no run sums to −0
		clear(run)
		for kb := 0; kb < nkb; kb++ {
			if b.fold[kb] && kb > 0 {
				fold(tile, run)
			}
			s0, s1 := b.blk[g*nkb+kb], b.blk[g*nkb+kb+1]
			if s0 == s1 {
				continue
			}
			nz, nz1 := b.nzb[g*nkb+kb], b.nzb[g*nkb+kb+1]
			np := int(b.pairs[g*nkb+kb])
			block(np, int(s1-s0)-2*np, b.seg[s0:s1], b.val[nz:nz1], b.off[nz:nz1], panel[int(b.bstart[kb])*R:], run)
		}
		fold(tile, run)
		// Transpose the tile into C: whole blocks in registers, the edges
		// (a partial panel or group) one by one.
		i0, j0 := pn*R, g*G
		rows, cols := min(R, m-i0), min(G, n-j0)
		cc := c[i0*ldc+j0:]
		rr, jj := kr.transposeBlocks(cc, ldc, tile, R, rows, cols)
		spTileRect(tile, cc, ldc, 0, rr, jj, cols)
		spTileRect(tile, cc, ldc, rr, rows, 0, cols)
	})
}

// spFold adds the sums of a finished run of kcb columns to the tile, as
// Gemm adds a block's sums to C (the tile starts at +0, and +0 plus a
// run's sums is those sums: a chain of FMAs from +0 never ends at −0), and
// clears run for the next.
func spFold(tile, run []float32) {
	for i, v := range run {
		tile[i] += v
	}
	clear(run)
}

// spBlockGo is the portable block kernel: for each of np pairs and then
// ns single segments of a block (laid out as [NewSparseB] says),
// tile[row][r] += Σ_p val[p]·a[off[p]/4+r] for r < 64, one sum per element
// in the order of the row's nonzeros, as the assembly kernels add them
// (with FMA).
func spBlockGo(np, ns int, seg []uint32, val []float32, off []uint16, a, tile []float32) {
	p := 0
	for i := 0; i < np; i++ {
		cx, cy := int(seg[2*i]>>16), int(seg[2*i+1]>>16)
		spSegGo(seg[2*i], val[p:p+2*cy], off[p:p+2*cy], 2, val[p+2*cy:p+cy+cx], off[p+2*cy:p+cy+cx], a, tile)
		spSegGo(seg[2*i+1], val[p+1:p+2*cy], off[p+1:p+2*cy], 2, nil, nil, a, tile)
		p += cx + cy
	}
	for _, sg := range seg[2*np : 2*np+ns] {
		c := int(sg >> 16)
		spSegGo(sg, val[p:p+c], off[p:p+c], 1, nil, nil, a, tile)
		p += c
	}
}

// spSegGo adds one segment: its nonzeros every step-th of val and off,
// then all of tval and toff.
func spSegGo(sg uint32, val []float32, off []uint16, step int, tval []float32, toff []uint16, a, tile []float32) {
	j := int(sg&0xffff) / 4
	t := tile[j : j+SpanelRows]
	acc := [SpanelRows]float32(t)
	add := func(v float32, o int) {
		ar := a[o : o+SpanelRows]
		for i := range acc {
			acc[i] += v * ar[i]
		}
	}
	for p := 0; p < len(val); p += step {
		add(val[p], int(off[p])/4)
	}
	for p, v := range tval {
		add(v, int(toff[p])/4)
	}
	copy(t, acc[:])
}

// spTileRect transposes part of a tile ([j][r], 64 r per j) into C:
// c[r*ldc+j] = tile[j*64+r] for r in [r0, r1), j in [j0, j1).
func spTileRect(tile, c []float32, ldc, r0, r1, j0, j1 int) {
	for r := r0; r < r1; r++ {
		cr := c[r*ldc+j0 : r*ldc+j1]
		for j := range cr {
			cr[j] = tile[(j0+j)*SpanelRows+r]
		}
	}
}

// SpMMTRef is the reference for [SpMMT]: for each element, the dot product
// over B's nonzeros accumulated in float64 and rounded once.
func SpMMTRef(c, a []float32, b *CSR, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(c) < m*n || b.Rows != n || b.Cols != k {
		panic(fmt.Sprintf("blas: SpMMTRef: sizes m=%d n=%d k=%d do not fit len(a)=%d len(c)=%d B %d×%d", m, n, k, len(a), len(c), b.Rows, b.Cols))
	}
	for i := 0; i < m; i++ {
		ar := a[i*k : i*k+k]
		for j := 0; j < n; j++ {
			var s float64
			for p := b.RowPtr[j]; p < b.RowPtr[j+1]; p++ {
				s += float64(ar[b.Col[p]]) * float64(b.Val[p])
			}
			c[i*n+j] = float32(s)
		}
	}
}
