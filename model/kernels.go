package model

import (
	"fmt"
	"sync"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// kernel is the matrix-multiply kernel of package blas a Model runs on,
// with the element-wise kernels used beside it: the AVX2 ones with an
// assembly GEMM kernel, the pure-Go ones with the "go" kernel, which
// thereby runs no assembly at all.
type kernel struct {
	*blas.Kernel
	vec *vecOps
	// tail8, when set, is the micro-kernel on rows 0-7 of an A panel
	// (stride lda floats per step) and a B panel of NR columns: c (+)= the
	// same sums, bit for bit, as the full kernel gives those rows (see
	// Model.pv).
	tail8 func(kc int, a []float32, lda int, b, c []float32, ldc int, load bool)

	kcOnce sync.Once
	kc     int // longest sum Gemm runs as one block (see kBlock)
}

func newKernel(k *blas.Kernel) *kernel {
	return &kernel{Kernel: k, vec: vecFor(k), tail8: tail8For(k)}
}

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

// kBlock returns the length of the blocks Gemm splits a sum of n terms
// into: ceil(n/nb) terms each, nb = ceil(n/kc) blocks, where kc is the
// kernel's longest block. Each block is one chain of multiply-adds from
// zero, added to the sum of the blocks before it (see blas.Kernel.Gemm).
// The cached attention of [Sample] sums in the same order, so that its
// results match the forward pass's bit for bit. kc, internal to package
// blas, is found once by probing Gemm: a sum 2²⁴ + 1 + 1 + … stays at
// 2²⁴ in one chain (each 1 is lost to rounding), and grows once the ones
// fall in a block of their own. (Attention's Vᵀ·P through kernel.tail8
// uses the same blocks.)
func (k *kernel) kBlock(n int) int {
	k.kcOnce.Do(func() {
		const limit = 1 << 16
		oneBlock := func(n int) bool {
			a, b, c := make([]float32, n), make([]float32, n), make([]float32, 1)
			for i := range a {
				a[i], b[i] = 1, 1
			}
			a[0] = 1 << 24
			k.MatMulT(c, a, b, 1, 1, n, 1)
			return c[0] == 1<<24
		}
		// Doubling, then bisecting: the probes stay about as long as kc
		// (each packs its operands: a probe of 2¹⁶ would take 11 MB).
		lo, hi := 1, 2 // oneBlock(lo); kc < hi unless hi > limit
		for hi <= limit && oneBlock(hi) {
			lo, hi = hi, 2*hi
		}
		hi = min(hi, limit)
		for hi-lo > 1 {
			mid := (lo + hi) / 2
			if oneBlock(mid) {
				lo = mid
			} else {
				hi = mid
			}
		}
		k.kc = lo
	})
	if n <= k.kc {
		return max(n, 1)
	}
	nb := (n + k.kc - 1) / k.kc
	return (n + nb - 1) / nb
}
