//go:build !amd64 || purego

package model

import "github.com/lmsparse/lmsparse/tensor/blas"

// vecFor returns the element-wise kernels used with k: this build has only
// the pure-Go ones.
func vecFor(*blas.Kernel) *vecOps { return goVec() }
