//go:build amd64 && !purego

package blas

//go:noescape
func pack4AVX2(dst, src *float32, k8, si, r int)

// pack4SliceAVX2 is Kernel.pack4 for the assembly kernels: it packs the
// leading multiple of 8 columns with pack4AVX2 (pack_amd64.s) and returns
// how many.
func pack4SliceAVX2(dst, src []float32, k, si, r int) int {
	k8 := k &^ 7
	if k8 == 0 {
		return 0
	}
	_ = src[3*si+k8-1]
	_ = dst[(k8-1)*r+3]
	pack4AVX2(&dst[0], &src[0], k8, si, r)
	return k8
}
