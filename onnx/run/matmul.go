package run

import (
	"sync"
)

// matMulT computes C = A·Bᵀ for row-major A [m, k], B [n, k] and C [m, n],
// accumulating in float32, with up to threads goroutines.
//
// It is the executor's only dense kernel: a pure-Go 4×4 register-blocked
// loop over panels of B. The packed SIMD GEMM of package
// github.com/lmsparse/lmsparse/tensor/blas (MatMulT, same contract) can
// replace it here once that package is available.
func matMulT(c, a, b []float32, m, n, k, threads int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		return
	}
	// Work is split into blocks of rows (or of columns when there are
	// fewer row blocks than threads).
	const minWork = 1 << 16 // multiply-adds per goroutine worth starting it
	work := m * n * k
	threads = max(1, min(threads, work/minWork))
	if threads == 1 {
		matMulTBlock(c, a, b, 0, m, 0, n, n, k)
		return
	}
	var wg sync.WaitGroup
	if m >= 4*threads {
		step := (m/threads + 3) &^ 3
		for lo := 0; lo < m; lo += step {
			hi := min(lo+step, m)
			wg.Add(1)
			go func() {
				defer wg.Done()
				matMulTBlock(c, a, b, lo, hi, 0, n, n, k)
			}()
		}
	} else {
		step := (n/threads + 3) &^ 3
		for lo := 0; lo < n; lo += step {
			hi := min(lo+step, n)
			wg.Add(1)
			go func() {
				defer wg.Done()
				matMulTBlock(c, a, b, 0, m, lo, hi, n, k)
			}()
		}
	}
	wg.Wait()
}

// matMulTBlock computes rows [i0, i1) and columns [j0, j1) of C = A·Bᵀ
// (ldc = n). Columns go in panels of 64 rows of B, so that a panel stays in
// cache while every row block of A passes over it.
func matMulTBlock(c, a, b []float32, i0, i1, j0, j1, ldc, k int) {
	const panel = 64
	for jp := j0; jp < j1; jp += panel {
		je := min(jp+panel, j1)
		i := i0
		for ; i+4 <= i1; i += 4 {
			a0 := a[i*k : i*k+k]
			a1 := a[(i+1)*k : (i+1)*k+k]
			a2 := a[(i+2)*k : (i+2)*k+k]
			a3 := a[(i+3)*k : (i+3)*k+k]
			a1, a2, a3 = a1[:len(a0)], a2[:len(a0)], a3[:len(a0)]
			j := jp
			for ; j+4 <= je; j += 4 {
				b0 := b[j*k : j*k+k]
				b1 := b[(j+1)*k : (j+1)*k+k]
				b2 := b[(j+2)*k : (j+2)*k+k]
				b3 := b[(j+3)*k : (j+3)*k+k]
				b0, b1, b2, b3 = b0[:len(a0)], b1[:len(a0)], b2[:len(a0)], b3[:len(a0)]
				var c00, c01, c02, c03, c10, c11, c12, c13 float32
				var c20, c21, c22, c23, c30, c31, c32, c33 float32
				for p := range a0 {
					x0, x1, x2, x3 := a0[p], a1[p], a2[p], a3[p]
					y0, y1, y2, y3 := b0[p], b1[p], b2[p], b3[p]
					c00 += x0 * y0
					c01 += x0 * y1
					c02 += x0 * y2
					c03 += x0 * y3
					c10 += x1 * y0
					c11 += x1 * y1
					c12 += x1 * y2
					c13 += x1 * y3
					c20 += x2 * y0
					c21 += x2 * y1
					c22 += x2 * y2
					c23 += x2 * y3
					c30 += x3 * y0
					c31 += x3 * y1
					c32 += x3 * y2
					c33 += x3 * y3
				}
				r0 := c[i*ldc+j : i*ldc+j+4]
				r1 := c[(i+1)*ldc+j : (i+1)*ldc+j+4]
				r2 := c[(i+2)*ldc+j : (i+2)*ldc+j+4]
				r3 := c[(i+3)*ldc+j : (i+3)*ldc+j+4]
				r0[0], r0[1], r0[2], r0[3] = c00, c01, c02, c03
				r1[0], r1[1], r1[2], r1[3] = c10, c11, c12, c13
				r2[0], r2[1], r2[2], r2[3] = c20, c21, c22, c23
				r3[0], r3[1], r3[2], r3[3] = c30, c31, c32, c33
			}
			for ; j < je; j++ {
				bj := b[j*k : j*k+k]
				c[i*ldc+j] = dot(a0, bj)
				c[(i+1)*ldc+j] = dot(a1, bj)
				c[(i+2)*ldc+j] = dot(a2, bj)
				c[(i+3)*ldc+j] = dot(a3, bj)
			}
		}
		for ; i < i1; i++ {
			ai := a[i*k : i*k+k]
			for j := jp; j < je; j++ {
				c[i*ldc+j] = dot(ai, b[j*k:j*k+k])
			}
		}
	}
}

// dot returns Σ x[i]·y[i] in float32 over four partial sums.
func dot(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// parallelFor calls fn for chunks [lo, hi) covering [0, n) on up to
// threads goroutines.
func parallelFor(threads, n int, fn func(lo, hi int)) {
	threads = max(1, min(threads, n))
	if threads == 1 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + threads - 1) / threads
	for lo := 0; lo < n; lo += step {
		hi := min(lo+step, n)
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(lo, hi)
		}()
	}
	wg.Wait()
}
