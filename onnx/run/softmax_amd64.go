//go:build amd64 && !purego

package run

import "math"

//go:noescape
func expSubAVX2(x *float32, n int, shift float32, sum *[8]float64)

// vecExp is set when the GEMM kernel is in assembly, which implies AVX2
// and FMA (the check package model makes for its AVX2 kernels).
var vecExp = kernel.Assembly()

// expSubVec is expSub on whole vectors of 8 (expSubAVX2), the tail padded
// to a vector of its own, so that every element, whatever its position
// and the row's length, gets the same bits.
func expSubVec(x []float32, shift float32) float64 {
	var acc [8]float64
	n8 := len(x) &^ 7
	if n8 > 0 {
		expSubAVX2(&x[0], n8, shift, &acc)
	}
	if t := len(x) - n8; t > 0 {
		var pad [8]float32
		for i := range pad {
			pad[i] = float32(negInf)
		}
		copy(pad[:], x[n8:])
		var tail [8]float64
		expSubAVX2(&pad[0], 8, shift, &tail)
		copy(x[n8:], pad[:t])
		for l := range acc {
			acc[l] += tail[l]
		}
	}
	return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]))
}

//go:noescape
func scaleMaskAVX2(dst, src, m *float32, n int, k float32, div bool, out *[16]float32)

// scaleMaskVec runs scaleMaskAVX2 over the whole vectors of src, returning
// how many elements it did, their maximum and whether one was NaN.
func scaleMaskVec(dst, src []float32, k float32, div bool, m []float32) (int, float32, bool) {
	n8 := len(src) &^ 7
	if n8 == 0 {
		return 0, float32(negInf), false
	}
	var out [16]float32
	var mp *float32
	if m != nil {
		mp = &m[0]
	}
	scaleMaskAVX2(&dst[0], &src[0], mp, n8, k, div, &out)
	mx, nan := float32(negInf), false
	for l := range 8 {
		mx = max(mx, out[l])
		nan = nan || math.Float32bits(out[8+l]) != 0
	}
	return n8, mx, nan
}

//go:noescape
func mulF64AVX2(x *float32, n int, f float64)

// mulF64Vec runs mulF64AVX2 over the whole vectors of x and returns how
// many elements it did.
func mulF64Vec(x []float32, f float64) int {
	n8 := len(x) &^ 7
	if n8 > 0 {
		mulF64AVX2(&x[0], n8, f)
	}
	return n8
}
