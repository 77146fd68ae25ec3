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

// avx512Vec returns the element-wise kernels used with the AVX-512 GEMM
// kernel: the AVX2 ones with the column softmax on 16-column strips.
func avx512Vec() *vecOps {
	v := avx2Vec()
	v.softmaxCols = softmaxColsAVX512
	return v
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
