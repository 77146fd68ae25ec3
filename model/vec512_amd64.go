//go:build amd64 && !purego

package model

// AVX-512 column softmax (vec512_amd64.s): the AVX2 kernels' arithmetic on
// strips of sixteen columns, bit for bit the same results.

//go:noescape
func maxCols16AVX512(x *float32, rows, ld int, scale float32, out *float32)

//go:noescape
func maxCols32AVX512(x *float32, rows, ld int, scale float32, out *float32)

//go:noescape
func expCols32AVX512(x *float32, rows, ld int, scale float32, shift *float32, sum *float64)

//go:noescape
func expCols16AVX512(x *float32, rows, ld int, scale float32, shift *float32, sum *float64)

//go:noescape
func geluAVX512(x *float32, n int)

//go:noescape
func siluMulAVX512(gp, up *float32, n int)

// avx512Vec returns the element-wise kernels used with the AVX-512 GEMM
// kernel: the AVX2 ones on 16 lanes, each element bit for bit as the AVX2
// kernels compute it.
func avx512Vec() *vecOps {
	return &vecOps{softmaxCols: softmaxColsAVX512, gelu: geluSliceAVX512, siluMul: siluMulSliceAVX512}
}

// softmaxColsAVX512 is vecOps.softmaxCols on strips of sixteen columns,
// two at a time for 32 (other widths: softmaxColsAVX2).
func softmaxColsAVX512(s []float32, rows, w int, scale float32, sum []float64) {
	if w%16 != 0 || rows < 1 {
		softmaxColsAVX2(s, rows, w, scale, sum)
		return
	}
	_ = s[(rows-1)*w+w-1]
	_ = sum[w-1]
	var buf [64]float32
	mx := buf[:0]
	if w > len(buf) {
		mx = make([]float32, 0, w)
	}
	mx = mx[:w]
	if w == 32 { // the AVX-512 kernel's panel width: both strips a row at a time
		maxCols32AVX512(&s[0], rows, w, scale, &mx[0])
		expCols32AVX512(&s[0], rows, w, scale, &mx[0], &sum[0])
		return
	}
	for c := 0; c < w; c += 16 {
		maxCols16AVX512(&s[c], rows, w, scale, &mx[c])
		expCols16AVX512(&s[c], rows, w, scale, &mx[c], &sum[c])
	}
}

// geluSliceAVX512 is geluSliceAVX2 with whole blocks of 16 on 16 lanes;
// the elements past them go as geluSliceAVX2 takes them (8 lanes, then
// scalar), which are the ones it would take that way anyway.
func geluSliceAVX512(x []float32) {
	n16 := len(x) &^ 15
	if n16 > 0 {
		geluAVX512(&x[0], n16)
	}
	geluSliceAVX2(x[n16:])
}

// siluMulSliceAVX512 is siluMulSliceAVX2 with whole blocks of 16 on 16
// lanes, as geluSliceAVX512.
func siluMulSliceAVX512(g, u []float32) {
	u = u[:len(g)]
	n16 := len(g) &^ 15
	if n16 > 0 {
		siluMulAVX512(&g[0], &u[0], n16)
	}
	siluMulSliceAVX2(g[n16:], u[n16:])
}
