//go:build !amd64 || purego

package model

import "github.com/lmsparse/lmsparse/tensor/blas"

// tail8For returns the 8-row form of k's micro-kernel: none in this build.
func tail8For(*blas.Kernel) func(kc int, a []float32, lda int, b, c []float32, ldc int, load bool) {
	return nil
}
