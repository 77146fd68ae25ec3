//go:build amd64 && !purego

package model

import "github.com/lmsparse/lmsparse/tensor/blas"

//go:noescape
func micro8x32AVX512(kc int, a *float32, lda int, b, c *float32, ldc int, load bool)

// tail8For returns the 8-row form of k's micro-kernel (see kernel.tail8):
// the AVX-512 kernel has one (attn512_amd64.s), the others none.
func tail8For(k *blas.Kernel) func(kc int, a []float32, lda int, b, c []float32, ldc int, load bool) {
	if !k.Assembly() || k.Name() != "avx512" || k.MR() != 12 || k.NR() != 32 {
		return nil
	}
	return func(kc int, a []float32, lda int, b, c []float32, ldc int, load bool) {
		_ = a[(kc-1)*lda+7]
		_ = b[kc*32-1]
		_ = c[7*ldc+31]
		micro8x32AVX512(kc, &a[0], lda, &b[0], &c[0], ldc, load)
	}
}
