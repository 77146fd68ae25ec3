package model

import (
	"fmt"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// kernel is the matrix-multiply kernel of package blas a Model runs on,
// with the element-wise kernels used beside it: the AVX2 ones with an
// assembly GEMM kernel, the pure-Go ones with the "go" kernel, which
// thereby runs no assembly at all.
type kernel struct {
	*blas.Kernel
	vec *vecOps
}

func newKernel(k *blas.Kernel) *kernel { return &kernel{Kernel: k, vec: vecFor(k)} }

// kernels returns every kernel usable on this CPU and build, best first;
// the pure-Go kernel is always last.
func kernels() []*kernel {
	var ks []*kernel
	for _, k := range blas.All() {
		ks = append(ks, newKernel(k))
	}
	return ks
}

// Kernels lists the names of the matrix-multiply kernels usable on this
// CPU and build, best first, for [Options].Kernel (see [blas.Kernels]).
// "go", the portable pure-Go kernel, is always present.
func Kernels() []string { return blas.Kernels() }

// findKernel returns the kernel called name; "" or "auto" means the best.
func findKernel(name string) (*kernel, error) {
	k, err := blas.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return newKernel(k), nil
}
