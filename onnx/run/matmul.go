package run

import "github.com/lmsparse/lmsparse/tensor/blas"

// matMulT computes C = A·Bᵀ for row-major A [m, k], B [n, k] and C [m, n]
// with lmsparse's packed GEMM (tensor/blas: AVX-512, AVX2 or pure Go), the
// kernel of the native forward pass.
func matMulT(c, a, b []float32, m, n, k, threads int) {
	blas.MatMulT(c, a, b, m, n, k, threads)
}
