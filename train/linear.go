package train

import (
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// mm is the matrix products of the forward and backward passes on one
// blas kernel, with reused packing buffers. Each product is C = A·Bᵀ
// where A (m×k) and B (n×k) are given by strides, so every form the
// backward needs (A·B, Aᵀ·B) is a packing of the operands in place.
type mm struct {
	kr      *blas.Kernel
	threads int
	pa, pb  blas.Packed
}

// operand is an m×k matrix whose element (i, j) is at src[i*si+j*sj].
type operand struct {
	src    []float32
	si, sj int
}

func rowMajor(src []float32, ld int) operand { return operand{src, ld, 1} }
func colMajor(src []float32, ld int) operand { return operand{src, 1, ld} }

func (p *mm) pack(dst *blas.Packed, o operand, rows, k, r int) *blas.Packed {
	np := (rows + r - 1) / r
	need := np * k * r
	if cap(dst.Data) < need {
		dst.Data = make([]float32, need)
	}
	dst.Data = dst.Data[:need]
	dst.Rows, dst.K, dst.R = rows, k, r
	p.kr.Pack(dst, o.src, o.si, o.sj, p.threads)
	return dst
}

// gemm sets c[i*ldc+j] = Σ_p A(i,p)·B(j,p) for i < m, j < n (add: c +=).
func (p *mm) gemm(c []float32, ldc int, a operand, b operand, m, n, k int, add bool) {
	if m == 0 || n == 0 {
		return
	}
	pa := p.pack(&p.pa, a, m, k, p.kr.MR())
	pb := p.pack(&p.pb, b, n, k, p.kr.NR())
	if add {
		p.kr.GemmAdd(c, ldc, pa, pb, m, n, k, p.threads)
	} else {
		p.kr.Gemm(c, ldc, pa, pb, m, n, k, p.threads)
	}
}

// forward sets y[r, :] = x[r, :]·Wᵀ + b for rows r of x ([rows, in]).
func (l *linear) forward(p *mm, y, x []float32, rows int) {
	w := rowMajor(l.w, l.in) // [out, in]
	if l.conv {
		w = colMajor(l.w, l.out) // stored [in, out]: element (o, i) at i*out+o
	}
	p.gemm(y, l.out, rowMajor(x, l.in), w, rows, l.out, l.in, false)
	if l.b != nil {
		addBias(p.threads, y, l.b, rows)
	}
}

// backward adds the weight and bias gradients of y = x·Wᵀ + b given dy
// ([rows, out]) and x, and sets dx ([rows, in]) when it is not nil.
func (l *linear) backward(p *mm, dx, dy, x []float32, rows int) {
	if dx != nil {
		// dx = dy·W: A = dy [rows, out], B = Wᵀ as [in, out].
		wt := colMajor(l.w, l.in) // element (i, o) at o*in+i
		if l.conv {
			wt = rowMajor(l.w, l.out) // element (i, o) at i*out+o
		}
		p.gemm(dx, l.in, rowMajor(dy, l.out), wt, rows, l.in, l.out, false)
	}
	if l.conv {
		// dW [in, out] += xᵀ·dy: A = xᵀ [in, rows], B = dyᵀ [out, rows].
		p.gemm(l.g, l.out, colMajor(x, l.in), colMajor(dy, l.out), l.in, l.out, rows, true)
	} else {
		// dW [out, in] += dyᵀ·x.
		p.gemm(l.g, l.in, colMajor(dy, l.out), colMajor(x, l.in), l.out, l.in, rows, true)
	}
	if l.gb != nil {
		colSums(p.threads, l.gb, dy, rows, l.out)
	}
}

func addBias(threads int, y, b []float32, rows int) {
	n := len(b)
	blas.ParallelRows(threads, rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			yr := y[r*n : (r+1)*n]
			for i, v := range b {
				yr[i] += v
			}
		}
	})
}

// sumChunk is the number of rows summed together in column sums: the
// partial sums are over fixed chunks, added in chunk order, so the result
// does not depend on the thread count.
const sumChunk = 64

// colSums adds to g[j] the sum over rows of d[r*n+j], in float64.
func colSums(threads int, g, d []float32, rows, n int) {
	chunks := (rows + sumChunk - 1) / sumChunk
	part := make([]float64, chunks*n)
	blas.ParallelFor(threads, chunks, func(_, c int) {
		s := part[c*n : (c+1)*n]
		for r := c * sumChunk; r < min(rows, (c+1)*sumChunk); r++ {
			for j, v := range d[r*n : (r+1)*n] {
				s[j] += float64(v)
			}
		}
	})
	for j := range n {
		var s float64
		for c := range chunks {
			s += part[c*n+j]
		}
		g[j] += float32(s)
	}
}
