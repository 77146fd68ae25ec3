//go:build amd64 && !purego

package blas

import "golang.org/x/sys/cpu"

// sgemmAVX2 is the AVX2+FMA micro-kernel for a 6×16 tile (micro_amd64.s):
// twelve 8-wide accumulators, two loads of B and six broadcasts of A per step.
//
//go:noescape
func sgemmAVX2(kc int, a, b, c *float32, ldc int, load bool)

func microAVX2(kc int, a, b, c []float32, ldc int, load bool) {
	_ = a[kc*6-1]
	_ = b[kc*16-1]
	_ = c[5*ldc+15]
	sgemmAVX2(kc, &a[0], &b[0], &c[0], ldc, load)
}

// sgemmAVX512 is the AVX-512 micro-kernel for a 12×32 tile
// (micro_amd64.s): twenty-four 16-wide accumulators, two loads of B and
// twelve broadcasts of A per step.
//
//go:noescape
func sgemmAVX512(kc int, a, b, c *float32, ldc int, load bool)

func microAVX512(kc int, a, b, c []float32, ldc int, load bool) {
	_ = a[kc*12-1]
	_ = b[kc*32-1]
	_ = c[11*ldc+31]
	sgemmAVX512(kc, &a[0], &b[0], &c[0], ldc, load)
}

// asmKernels returns the assembly micro-kernels the CPU supports, best
// first.
func asmKernels() []*Kernel {
	if !cpu.X86.HasAVX2 || !cpu.X86.HasFMA {
		return nil
	}
	var ks []*Kernel
	if cpu.X86.HasAVX512F {
		ks = append(ks, &Kernel{name: "avx512", mr: 12, nr: 32, micro: microAVX512, pack4: pack4SliceAVX2, asm: true,
			spBlock: spBlockSliceAVX512, spFold: spFoldSliceAVX2, tr: transpose16AVX512, trB: 16,
			kc: 192, mcPanels: 16, ncPanels: 16})
	}
	return append(ks, &Kernel{name: "avx2", mr: 6, nr: 16, micro: microAVX2, pack4: pack4SliceAVX2, asm: true,
		spBlock: spBlockSliceAVX2, spFold: spFoldSliceAVX2, tr: transpose8AVX2, trB: 8})
}
