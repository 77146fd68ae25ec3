package blas

import "fmt"

// Kernel is a register-blocked micro-kernel, the tile shape it computes and
// the packing it uses. Every product goes through [Kernel.Gemm] with one
// kernel; get one with [Lookup] or [Best].
type Kernel struct {
	name   string
	mr, nr int // tile rows (from packed A) and columns (from packed B)
	// micro computes one mr×nr tile over kc ≥ 1 steps of packed panels:
	//	c[i*ldc+j] = Σ_p a[p*mr+i]·b[p*nr+j]            (load false)
	//	c[i*ldc+j] = c[i*ldc+j] + Σ_p a[p*mr+i]·b[p*nr+j] (load true)
	// summing p in increasing order into one accumulator per element, then
	// adding c once. a holds kc·mr values, b kc·nr, c (mr-1)·ldc+nr.
	micro func(kc int, a, b, c []float32, ldc int, load bool)
	// Blocking: a pass over k covers at most kc steps, so that an
	// nr-column panel of B (kc·nr floats) stays in L1 while the block of
	// mcPanels A panels it meets stays in L2; a job covers mcPanels A
	// panels and ncPanels B panels. Zero fields take the defaults below.
	kc, mcPanels, ncPanels int
	// pack4, when set, packs 4 rows of src (row stride si) into panel
	// layout, dst[j·r+i] = src[i·si+j] for i < 4, for a leading run of
	// columns, and returns its length; packing does the rest. The pure-Go
	// kernel has none, so that it runs no assembly at all.
	pack4 func(dst, src []float32, k, si, r int) int
	asm   bool // written in assembly (needs AVX2+FMA at least)
	// spFold is SpMMTPacked's tile += run, run = 0 (nil: spFold).
	spFold func(tile, run []float32)
	// spBlock is the sparse kernel of SpMMTPacked (nil: spBlockGo): it
	// adds one column block of a group's nonzeros to the tile.
	spBlock func(np, ns int, seg []uint32, val []float32, off []uint16, a, tile []float32)
	// tr, when set, transposes rb×cb blocks of trB×trB floats in
	// registers: dst[r*ldd+j] = src[j*lds+r] for r < rb·trB, j < cb·trB
	// (pointers into slices transposeBlocks checked). Packing into panels
	// of a multiple of trB rows and the sparse tiles use it.
	tr  func(dst *float32, ldd int, src *float32, lds int, rb, cb int)
	trB int
}

// Name returns the kernel's name, as listed by [Kernels].
func (kr *Kernel) Name() string { return kr.name }

// MR returns the number of rows of a tile: the panel height of a packed A
// operand.
func (kr *Kernel) MR() int { return kr.mr }

// NR returns the number of columns of a tile: the panel height of a packed
// B operand.
func (kr *Kernel) NR() int { return kr.nr }

// Assembly reports whether the kernel is written in assembly; such kernels
// exist only on CPUs with AVX2 and FMA, so callers may pair them with their
// own AVX2 code.
func (kr *Kernel) Assembly() bool { return kr.asm }

// Default blocking of Gemm (see Kernel).
const (
	defaultKC       = 384
	defaultMCPanels = 16
	defaultNCPanels = 16
)

func orDefault(v, def int) int {
	if v > 0 {
		return v
	}
	return def
}

// transposeBlocks sets dst[r*ldd+j] = src[j*lds+r] for r < rr, j < cc
// with the kernel's assembly transpose, where rr and cc, which it
// returns, are rows and cols rounded down to whole blocks (0, 0 without
// one); the caller does the rest.
func (kr *Kernel) transposeBlocks(dst []float32, ldd int, src []float32, lds, rows, cols int) (rr, cc int) {
	if kr.tr == nil {
		return 0, 0
	}
	b := kr.trB
	rb, cb := rows/b, cols/b
	if rb == 0 || cb == 0 {
		return 0, 0
	}
	_ = dst[(rb*b-1)*ldd+cb*b-1]
	_ = src[(cb*b-1)*lds+rb*b-1]
	kr.tr(&dst[0], ldd, &src[0], lds, rb, cb)
	return rb * b, cb * b
}

// Packed is a matrix of Rows×K values stored as panels of R rows; panel p
// holds rows [p·R, p·R+R) as K groups of R values ([K][R], the layout the
// micro-kernels read), zero-padded past the last row. An A operand of
// [Kernel.Gemm] has R = [Kernel.MR], a B operand R = [Kernel.NR].
//
// Data may also be filled directly: a [rows, R] row-major matrix is already
// one B panel of k = rows steps (the attention of package model uses this).
type Packed struct {
	Data       []float32 // [ceil(Rows/R)][K][R]
	Rows, K, R int
}

// NewPacked returns a zeroed Packed of rows×k values in panels of r rows.
func NewPacked(rows, k, r int) *Packed {
	np := (rows + r - 1) / r
	return &Packed{Data: make([]float32, np*k*r), Rows: rows, K: k, R: r}
}

// Panels returns the number of panels, ceil(Rows/R).
func (p *Packed) Panels() int { return (p.Rows + p.R - 1) / p.R }

// Row copies row i into dst (len K).
func (p *Packed) Row(dst []float32, i int) {
	base := (i/p.R)*p.K*p.R + i%p.R
	for j := range dst[:p.K] {
		dst[j] = p.Data[base+j*p.R]
	}
}

// PackPanels fills panels [lo, hi) of p from the matrix whose element
// (i, j), i < p.Rows, j < p.K, is src[i*si+j*sj], with the kernel's
// packing (the assembly kernels transpose row-major sources in 16×16
// (AVX-512) or 8×8 (AVX2) register blocks when the panel height is a
// multiple of the block, else four rows at a time). A column-major source
// (si 1, as for the transposed operands of [Kernel.MatMul] and
// [Kernel.MatMulTN]) needs no transpose: each panel column is a contiguous
// run, copied in blocks of 16 source rows by every kernel.
func (kr *Kernel) PackPanels(p *Packed, src []float32, si, sj, lo, hi int) {
	r, k := p.R, p.K
	if si == 1 && sj != 1 {
		packColMajor(p, src, sj, lo, hi)
		return
	}
	for pn := lo; pn < hi; pn++ {
		dst := p.Data[pn*k*r : (pn+1)*k*r]
		i0 := pn * r
		rows := min(r, p.Rows-i0)
		if sj == 1 {
			i := 0
			if kr.tr != nil && r%kr.trB == 0 {
				// Whole blocks of rows and columns in registers, the
				// columns past them row by row.
				kk, ii := kr.transposeBlocks(dst, r, src[i0*si:], si, k, rows)
				for ; i < ii; i++ {
					for j, v := range src[(i0+i)*si+kk : (i0+i)*si+k] {
						dst[(kk+j)*r+i] = v
					}
				}
			}
			if kr.pack4 != nil {
				for ; i+4 <= rows; i += 4 {
					done := kr.pack4(dst[i:], src[(i0+i)*si:], k, si, r)
					for ii := i; ii < i+4; ii++ {
						for j, v := range src[(i0+ii)*si+done : (i0+ii)*si+k] {
							dst[(done+j)*r+ii] = v
						}
					}
				}
			}
			// Transpose the other rows in blocks of 16 columns: read
			// each row's run sequentially, write the panel sequentially.
			for j0 := 0; j0 < k && i < rows; j0 += 16 {
				jn := min(16, k-j0)
				d := dst[j0*r : (j0+jn)*r]
				for ii := i; ii < rows; ii++ {
					s := src[(i0+ii)*si+j0 : (i0+ii)*si+j0+jn]
					for j, v := range s {
						d[j*r+ii] = v
					}
				}
			}
		} else {
			for j := 0; j < k; j++ {
				d := dst[j*r : j*r+r]
				base := i0*si + j*sj
				for i := 0; i < rows; i++ {
					d[i] = src[base+i*si]
				}
			}
		}
		if rows < r {
			for j := 0; j < k; j++ {
				clear(dst[j*r+rows : j*r+r])
			}
		}
	}
}

// packColMajor is PackPanels for a column-major source (si 1): column j
// of a panel is the run src[j*sj+i0 : j*sj+i0+R], copied as it is. The
// columns go in blocks of packColBlock, each across all the panels, so
// that the source is read a few whole rows at a time and each panel
// written in runs of packColBlock·R floats. Runs of the kernels' panel
// heights are copied as arrays, which the compiler does with a few vector
// moves and no call.
func packColMajor(p *Packed, src []float32, sj, lo, hi int) {
	r, k := p.R, p.K
	for j0 := 0; j0 < k; j0 += packColBlock {
		j1 := min(j0+packColBlock, k)
		for pn := lo; pn < hi; pn++ {
			i0 := pn * r
			rows := min(r, p.Rows-i0)
			dst := p.Data[pn*k*r : (pn+1)*k*r]
			if rows < r {
				for j := j0; j < j1; j++ {
					d := dst[j*r : j*r+r]
					copy(d, src[j*sj+i0:j*sj+i0+rows])
					clear(d[rows:])
				}
				continue
			}
			switch r {
			case 4:
				for j := j0; j < j1; j++ {
					*(*[4]float32)(dst[j*4:]) = *(*[4]float32)(src[j*sj+i0:])
				}
			case 6:
				for j := j0; j < j1; j++ {
					*(*[6]float32)(dst[j*6:]) = *(*[6]float32)(src[j*sj+i0:])
				}
			case 12:
				for j := j0; j < j1; j++ {
					*(*[12]float32)(dst[j*12:]) = *(*[12]float32)(src[j*sj+i0:])
				}
			case 16:
				for j := j0; j < j1; j++ {
					*(*[16]float32)(dst[j*16:]) = *(*[16]float32)(src[j*sj+i0:])
				}
			case 32:
				for j := j0; j < j1; j++ {
					*(*[32]float32)(dst[j*32:]) = *(*[32]float32)(src[j*sj+i0:])
				}
			default:
				for j := j0; j < j1; j++ {
					copy(dst[j*r:j*r+r], src[j*sj+i0:j*sj+i0+r])
				}
			}
		}
	}
}

// packColBlock is the number of source rows packColMajor reads at once.
const packColBlock = 16

// Pack fills p from src (element (i, j) at src[i*si+j*sj]) using up to
// threads goroutines (below 1: GOMAXPROCS).
func (kr *Kernel) Pack(p *Packed, src []float32, si, sj, threads int) {
	threads = Threads(threads)
	np := p.Panels()
	if threads <= 1 || np < 8 {
		kr.PackPanels(p, src, si, sj, 0, np)
		return
	}
	ParallelRows(threads, np, 4, func(lo, hi int) { kr.PackPanels(p, src, si, sj, lo, hi) })
}

// PackMatrix packs the rows×k matrix src (element (i, j) at
// src[i*si+j*sj]) into new panels of r rows.
func (kr *Kernel) PackMatrix(src []float32, rows, k, si, sj, r, threads int) *Packed {
	p := NewPacked(rows, k, r)
	kr.Pack(p, src, si, sj, threads)
	return p
}

// PackA packs the rows×k matrix src (element (i, j) at src[i*si+j*sj]) as
// an A operand of [Kernel.Gemm].
func (kr *Kernel) PackA(src []float32, rows, k, si, sj, threads int) *Packed {
	return kr.PackMatrix(src, rows, k, si, sj, kr.mr, threads)
}

// PackB packs the rows×k matrix src (element (i, j) at src[i*si+j*sj]) as
// a B operand of [Kernel.Gemm]: weights are packed once and reused.
func (kr *Kernel) PackB(src []float32, rows, k, si, sj, threads int) *Packed {
	return kr.PackMatrix(src, rows, k, si, sj, kr.nr, threads)
}

// Gemm computes C = A·Bᵀ for the first m rows of a, n rows of b and k
// columns of both: c[i*ldc+j] = Σ_p A(i,p)·B(j,p), on up to threads
// goroutines (below 1: GOMAXPROCS). Each element of C is computed by one
// goroutine with a summation order fixed by k alone, so the result does
// not depend on threads. a must be packed in panels of [Kernel.MR] rows, b
// of [Kernel.NR]; it panics otherwise.
func (kr *Kernel) Gemm(c []float32, ldc int, a, b *Packed, m, n, k, threads int) {
	kr.gemm("Gemm", c, ldc, a, b, m, n, k, threads, false)
}

// GemmAdd is [Kernel.Gemm] accumulating into C: C += A·Bᵀ, that is
// c[i*ldc+j] += Σ_p A(i,p)·B(j,p) (gradient accumulation). Each block of at
// most kc steps is summed on its own and then added to c, so the result
// does not depend on threads either; with k ≤ 0 C is left as it is.
func (kr *Kernel) GemmAdd(c []float32, ldc int, a, b *Packed, m, n, k, threads int) {
	kr.gemm("GemmAdd", c, ldc, a, b, m, n, k, threads, true)
}

// gemm is Gemm (add false: C = A·Bᵀ) and GemmAdd (add true: C += A·Bᵀ);
// name is the caller's, for the panic message.
func (kr *Kernel) gemm(name string, c []float32, ldc int, a, b *Packed, m, n, k, threads int, add bool) {
	if a.R != kr.mr || b.R != kr.nr {
		panic(fmt.Sprintf("blas: %s: panels of %d and %d rows, kernel %s wants %d and %d", name, a.R, b.R, kr.name, kr.mr, kr.nr))
	}
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 {
		if !add {
			for i := 0; i < m; i++ {
				clear(c[i*ldc : i*ldc+n])
			}
		}
		return
	}
	mr, nr := kr.mr, kr.nr
	mc, nc := orDefault(kr.mcPanels, defaultMCPanels)*mr, orDefault(kr.ncPanels, defaultNCPanels)*nr
	mBlocks, nBlocks := (m+mc-1)/mc, (n+nc-1)/nc
	kcMax := orDefault(kr.kc, defaultKC)
	nkc := (k + kcMax - 1) / kcMax
	kcb := (k + nkc - 1) / nkc
	job := func(_, jb int) {
		mb, nb := jb%mBlocks, jb/mBlocks
		var tmp []float32
		iEnd, jEnd := min((mb+1)*mc, m), min((nb+1)*nc, n)
		for pc := 0; pc < k; pc += kcb {
			kc := min(kcb, k-pc)
			load := add || pc > 0
			for j0 := nb * nc; j0 < jEnd; j0 += nr {
				bp := b.Data[(j0/nr)*b.K*nr+pc*nr:]
				for i0 := mb * mc; i0 < iEnd; i0 += mr {
					ap := a.Data[(i0/mr)*a.K*mr+pc*mr:]
					if i0+mr <= m && j0+nr <= n {
						kr.micro(kc, ap, bp, c[i0*ldc+j0:], ldc, load)
						continue
					}
					// Edge tile: compute the full tile into tmp (the
					// padding of the packed panels is zero) and copy the
					// valid part, so edge elements are summed exactly like
					// interior ones.
					if tmp == nil {
						tmp = make([]float32, mr*nr)
					}
					rows, cols := min(mr, m-i0), min(nr, n-j0)
					if load {
						for i := 0; i < rows; i++ {
							copy(tmp[i*nr:i*nr+cols], c[(i0+i)*ldc+j0:])
						}
					}
					kr.micro(kc, ap, bp, tmp, nr, load)
					for i := 0; i < rows; i++ {
						copy(c[(i0+i)*ldc+j0:(i0+i)*ldc+j0+cols], tmp[i*nr:])
					}
				}
			}
		}
	}
	ParallelFor(Threads(threads), mBlocks*nBlocks, job)
}

// MatMulT computes C = A·Bᵀ with kernel kr: c[i*n+j] = Σ_p a[i*k+p]·b[j*k+p]
// for A [m, k] and B [n, k] row-major, packing both operands first. It
// panics if a slice is too short.
func (kr *Kernel) MatMulT(c, a, b []float32, m, n, k, threads int) {
	checkMatMul("MatMulT", c, a, b, m, n, k)
	threads = Threads(threads)
	ap := kr.PackA(a, m, k, k, 1, threads)
	bp := kr.PackB(b, n, k, k, 1, threads)
	kr.Gemm(c, n, ap, bp, m, n, k, threads)
}

// MatMul computes C = A·B with kernel kr: c[i*n+j] = Σ_p a[i*k+p]·b[p*n+j]
// for A [m, k] and B [k, n] row-major (the input gradient of a Linear
// layer, dX = dY·W with W [out, in]). B is packed as the column-major Bᵀ
// (strides 1 and n). It panics if a slice is too short.
func (kr *Kernel) MatMul(c, a, b []float32, m, n, k, threads int) {
	checkMatMul("MatMul", c, a, b, m, n, k)
	threads = Threads(threads)
	ap := kr.PackA(a, m, k, k, 1, threads)
	bp := kr.PackB(b, n, k, 1, n, threads)
	kr.Gemm(c, n, ap, bp, m, n, k, threads)
}

// MatMulTN computes C = Aᵀ·B with kernel kr: c[i*n+j] = Σ_p a[p*m+i]·b[p*n+j]
// for A stored [k, m] and B [k, n] row-major (the weight gradient of a
// Linear layer, dW = dYᵀ·X, with k the rows of the batch). Both operands
// are packed from their column-major transposes. It panics if a slice is
// too short.
func (kr *Kernel) MatMulTN(c, a, b []float32, m, n, k, threads int) {
	checkMatMul("MatMulTN", c, a, b, m, n, k)
	kr.matMulTN(c, a, b, m, n, k, threads, false)
}

// MatMulTNAdd is [Kernel.MatMulTN] accumulating into C: C += Aᵀ·B, that
// is c[i*n+j] += Σ_p a[p*m+i]·b[p*n+j] (weight gradients summed over
// batches); see [Kernel.GemmAdd].
func (kr *Kernel) MatMulTNAdd(c, a, b []float32, m, n, k, threads int) {
	checkMatMul("MatMulTNAdd", c, a, b, m, n, k)
	kr.matMulTN(c, a, b, m, n, k, threads, true)
}

func (kr *Kernel) matMulTN(c, a, b []float32, m, n, k, threads int, add bool) {
	threads = Threads(threads)
	ap := kr.PackA(a, m, k, 1, m, threads)
	bp := kr.PackB(b, n, k, 1, n, threads)
	kr.gemm("MatMulTN", c, n, ap, bp, m, n, k, threads, add)
}

// MatMulT computes C = A·Bᵀ for row-major A [m, k] and B [n, k] into
// c [m, n] — the shape of a Hugging Face Linear layer, whose weight is
// [out, in] — with the fastest kernel the CPU supports, cache-blocked and
// spread over threads goroutines (below 1: GOMAXPROCS). The result does
// not depend on threads. It panics if a slice is too short.
func MatMulT(c, a, b []float32, m, n, k, threads int) {
	Best().MatMulT(c, a, b, m, n, k, threads)
}

// MatMul computes C = A·B for row-major A [m, k] and B [k, n] into
// c [m, n] with the fastest kernel, like [MatMulT].
func MatMul(c, a, b []float32, m, n, k, threads int) {
	Best().MatMul(c, a, b, m, n, k, threads)
}

// MatMulTN computes C = Aᵀ·B for row-major A [k, m] and B [k, n] into
// c [m, n] with the fastest kernel, like [MatMulT].
func MatMulTN(c, a, b []float32, m, n, k, threads int) {
	Best().MatMulTN(c, a, b, m, n, k, threads)
}

// MatMulTNAdd adds Aᵀ·B for row-major A [k, m] and B [k, n] into
// c [m, n] with the fastest kernel; see [Kernel.MatMulTNAdd].
func MatMulTNAdd(c, a, b []float32, m, n, k, threads int) {
	Best().MatMulTNAdd(c, a, b, m, n, k, threads)
}

// MatMulTRef is the reference for [MatMulT]: a plain triple loop
// accumulating each dot product in float64 and rounding once.
func MatMulTRef(c, a, b []float32, m, n, k int) {
	checkMatMul("MatMulTRef", c, a, b, m, n, k)
	for i := 0; i < m; i++ {
		ar := a[i*k : i*k+k]
		for j := 0; j < n; j++ {
			br := b[j*k : j*k+k]
			var s float64
			for p := range ar {
				s += float64(ar[p]) * float64(br[p])
			}
			c[i*n+j] = float32(s)
		}
	}
}

// MatMulRef is the reference for [MatMul]: a plain triple loop
// accumulating each dot product in float64 and rounding once.
func MatMulRef(c, a, b []float32, m, n, k int) {
	checkMatMul("MatMulRef", c, a, b, m, n, k)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[i*k+p]) * float64(b[p*n+j])
			}
			c[i*n+j] = float32(s)
		}
	}
}

// MatMulTNRef is the reference for [MatMulTN]: a plain triple loop
// accumulating each dot product in float64 and rounding once.
func MatMulTNRef(c, a, b []float32, m, n, k int) {
	checkMatMul("MatMulTNRef", c, a, b, m, n, k)
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			var s float64
			for p := 0; p < k; p++ {
				s += float64(a[p*m+i]) * float64(b[p*n+j])
			}
			c[i*n+j] = float32(s)
		}
	}
}

// checkMatMul panics unless A, B and C hold m·k, n·k and m·n values (the
// sizes are the same for every product form).
func checkMatMul(name string, c, a, b []float32, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(b) < n*k || len(c) < m*n {
		panic(fmt.Sprintf("blas: %s: sizes m=%d n=%d k=%d do not fit len(a)=%d len(b)=%d len(c)=%d", name, m, n, k, len(a), len(b), len(c)))
	}
}
