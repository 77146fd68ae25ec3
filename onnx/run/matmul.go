package run

import "github.com/lmsparse/lmsparse/tensor/blas"

// matMulT computes C = A·Bᵀ for row-major A [m, k], B [n, k] and C [m, n]
// with lmsparse's packed GEMM (tensor/blas: AVX-512, AVX2 or pure Go), the
// kernel of the native forward pass.
func matMulT(c, a, b []float32, m, n, k, threads int) {
	blas.MatMulT(c, a, b, m, n, k, threads)
}

// kernel is the GEMM kernel of every product: the one package model uses.
var kernel = blas.Best()

// packB packs a constant B operand once, at load: the rows×k matrix whose
// element (i, j) is src[i*si+j*sj], as the B operand of kernel.Gemm.
func packB(src []float32, rows, k, si, sj, threads int) *blas.Packed {
	return kernel.PackB(src, rows, k, si, sj, threads)
}

// scratch returns n floats for the node being run: from the run's arena
// (returned after the node) when there is one, else fresh.
func (e *exec) scratch(n int) []float32 {
	if e.arena == nil || n == 0 {
		return make([]float32, n)
	}
	return e.arena.get(kindFloat, n).f[:n]
}

// intScratch returns n int64s for the node being run, like scratch.
func (e *exec) intScratch(n int) []int64 {
	if e.arena == nil || n == 0 {
		return make([]int64, n)
	}
	return e.arena.get(kindInt, n).i[:n]
}

// packInto packs the rows×k matrix src (element (i, j) at src[i*si+j*sj])
// into panels of r rows held by buf (len ≥ panels·k·r).
func packInto(p *blas.Packed, buf, src []float32, rows, k, si, sj, r, threads int) {
	*p = blas.Packed{Data: buf, Rows: rows, K: k, R: r}
	if threads <= 1 {
		kernel.PackPanels(p, src, si, sj, 0, p.Panels())
		return
	}
	kernel.Pack(p, src, si, sj, threads)
}

func packedLen(rows, k, r int) int { return (rows + r - 1) / r * r * k }

// gemmB computes C = A·Bᵀ (C [m, n] with row stride n) for row-major A
// [m, k] and B packed once (packB), A packed into arena scratch. With add,
// C += A·Bᵀ (C holding a bias, for the fused MatMul+Add).
func (e *exec) gemmB(c, a []float32, b *blas.Packed, m, n, k int, add bool) {
	if m == 0 || n == 0 {
		return
	}
	var ap blas.Packed
	packInto(&ap, e.scratch(packedLen(m, k, kernel.MR())), a, m, k, k, 1, kernel.MR(), e.threads)
	if add {
		kernel.GemmAdd(c, n, &ap, b, m, n, k, e.threads)
		return
	}
	kernel.Gemm(c, n, &ap, b, m, n, k, e.threads)
}

// gemmWork is the scratch of one worker of a batched product.
type gemmWork struct{ a, b []float32 }

// batchedMatMul computes nb products out[i] = A_i·B_i for row-major A_i
// [m, k] at a[aOff[i]:] and B_i [k, n] at b[bOff[i]:], out [nb, m, n]:
// both operands packed straight from their layout into arena scratch (no
// transpose), the batches spread over the threads (or, with fewer batches
// than threads, the threads inside each product).
func (e *exec) batchedMatMul(out, a, b []float32, aOff, bOff []int, m, n, k int) {
	nb := len(aOff)
	if nb == 0 || m == 0 || n == 0 {
		return
	}
	mr, nr := kernel.MR(), kernel.NR()
	workers := 1
	inner := e.threads
	if nb >= e.threads && e.threads > 1 {
		workers, inner = e.threads, 1
	}
	ws := make([]gemmWork, workers)
	for w := range ws {
		ws[w] = gemmWork{a: e.scratch(packedLen(m, k, mr)), b: e.scratch(packedLen(n, k, nr))}
	}
	one := func(w *gemmWork, i int) {
		c := out[i*m*n : (i+1)*m*n]
		if k == 0 {
			clear(c)
			return
		}
		var ap, bp blas.Packed
		packInto(&ap, w.a, a[aOff[i]:], m, k, k, 1, mr, inner)
		packInto(&bp, w.b, b[bOff[i]:], n, k, 1, n, nr, inner)
		kernel.Gemm(c, n, &ap, &bp, m, n, k, inner)
	}
	if workers == 1 {
		for i := range nb {
			one(&ws[0], i)
		}
		return
	}
	blas.ParallelFor(workers, nb, func(w, i int) { one(&ws[w], i) })
}
