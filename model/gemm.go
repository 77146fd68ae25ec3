package model

import "fmt"

// kernel is a register-blocked micro-kernel and the tile shape it computes.
// Every matrix product of the forward pass goes through [kernel.gemm] with
// one kernel, chosen when the model is built.
type kernel struct {
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
	// vec holds the element-wise kernels used with this micro-kernel
	// (pure Go for the "go" kernel, so that it exercises no assembly).
	vec *vecOps
}

// Default blocking of gemm (see kernel).
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

// packed is a matrix of rows×k values stored as panels of r rows; panel p
// holds rows [p·r, p·r+r) as k groups of r values ([k][r], the layout the
// micro-kernels read), zero-padded past the last row.
type packed struct {
	data       []float32 // [ceil(rows/r)][k][r]
	rows, k, r int
}

func newPacked(rows, k, r int) *packed {
	np := (rows + r - 1) / r
	return &packed{data: make([]float32, np*k*r), rows: rows, k: k, r: r}
}

func (p *packed) panels() int { return (p.rows + p.r - 1) / p.r }

// row copies row i into dst (len k).
func (p *packed) row(dst []float32, i int) {
	base := (i/p.r)*p.k*p.r + i%p.r
	for j := range dst[:p.k] {
		dst[j] = p.data[base+j*p.r]
	}
}

// packPanels fills panels [lo, hi) of p from the matrix whose element
// (i, j), i < p.rows, j < p.k, is src[i*si+j*sj]. vec, when it has a pack4
// kernel, transposes row-major sources four rows at a time.
func (p *packed) packPanels(src []float32, si, sj, lo, hi int, vec *vecOps) {
	r, k := p.r, p.k
	for pn := lo; pn < hi; pn++ {
		dst := p.data[pn*k*r : (pn+1)*k*r]
		i0 := pn * r
		rows := min(r, p.rows-i0)
		if sj == 1 {
			i := 0
			if vec != nil && vec.pack4 != nil {
				for ; i+4 <= rows; i += 4 {
					done := vec.pack4(dst[i:], src[(i0+i)*si:], k, si, r)
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

// pack fills p from src (element (i, j) at src[i*si+j*sj]) using up to
// threads goroutines.
func (p *packed) pack(src []float32, si, sj, threads int, vec *vecOps) {
	np := p.panels()
	if threads <= 1 || np < 8 {
		p.packPanels(src, si, sj, 0, np, vec)
		return
	}
	parallelRows(threads, np, 4, func(lo, hi int) { p.packPanels(src, si, sj, lo, hi, vec) })
}

// packMatrix packs the rows×k matrix src (element (i, j) at src[i*si+j*sj])
// into panels of r rows.
func packMatrix(src []float32, rows, k, si, sj, r, threads int, vec *vecOps) *packed {
	p := newPacked(rows, k, r)
	p.pack(src, si, sj, threads, vec)
	return p
}

// gemmOpt controls [kernel.gemm].
type gemmOpt struct {
	threads int
}

// gemm computes C = A·Bᵀ for the first m rows of a, n rows of b and k
// columns of both: c[i*ldc+j] = Σ_p A(i,p)·B(j,p). Each element of C is
// computed by one goroutine with a summation order fixed by k alone, so the
// result does not depend on opt.threads.
func (kr *kernel) gemm(c []float32, ldc int, a, b *packed, m, n, k int, opt gemmOpt) {
	if a.r != kr.mr || b.r != kr.nr {
		panic(fmt.Sprintf("model: gemm: panels of %d and %d rows, kernel %s wants %d and %d", a.r, b.r, kr.name, kr.mr, kr.nr))
	}
	if m <= 0 || n <= 0 {
		return
	}
	if k <= 0 {
		for i := 0; i < m; i++ {
			clear(c[i*ldc : i*ldc+n])
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
			load := pc > 0
			for j0 := nb * nc; j0 < jEnd; j0 += nr {
				bp := b.data[(j0/nr)*b.k*nr+pc*nr:]
				for i0 := mb * mc; i0 < iEnd; i0 += mr {
					ap := a.data[(i0/mr)*a.k*mr+pc*mr:]
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
	parallelFor(opt.threads, mBlocks*nBlocks, job)
}

// matMulT computes C = A·Bᵀ with kernel kr: c[i*n+j] = Σ_p a[i*k+p]·b[j*k+p]
// for A [m, k] and B [n, k] row-major, packing both operands first.
func (kr *kernel) matMulT(c, a, b []float32, m, n, k, threads int) {
	threads = resolveThreads(threads)
	ap := packMatrix(a, m, k, k, 1, kr.mr, threads, kr.vec)
	bp := packMatrix(b, n, k, k, 1, kr.nr, threads, kr.vec)
	kr.gemm(c, n, ap, bp, m, n, k, gemmOpt{threads: threads})
}

// MatMulT computes C = A·Bᵀ for row-major A [m, k] and B [n, k] into
// c [m, n] — the shape of a Hugging Face Linear layer, whose weight is
// [out, in] — with the fastest kernel the CPU supports, cache-blocked and
// spread over threads goroutines (below 1: GOMAXPROCS). The result does
// not depend on threads. It panics if a slice is too short.
func MatMulT(c, a, b []float32, m, n, k, threads int) {
	checkMatMul(c, a, b, m, n, k)
	bestKernel().matMulT(c, a, b, m, n, k, threads)
}

// MatMulTRef is the reference for [MatMulT]: a plain triple loop
// accumulating each dot product in float64 and rounding once.
func MatMulTRef(c, a, b []float32, m, n, k int) {
	checkMatMul(c, a, b, m, n, k)
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

func checkMatMul(c, a, b []float32, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(b) < n*k || len(c) < m*n {
		panic(fmt.Sprintf("model: MatMulT: sizes m=%d n=%d k=%d do not fit len(a)=%d len(b)=%d len(c)=%d", m, n, k, len(a), len(b), len(c)))
	}
}
