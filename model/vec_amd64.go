//go:build amd64 && !purego

package model

import "github.com/lmsparse/lmsparse/tensor/blas"

// Element-wise AVX2+FMA kernels (vec_amd64.s). Each processes whole vectors
// of 8; the wrappers below finish the tail with the scalar Go code.

//go:noescape
func maxColsAVX2(x *float32, rows, ld int, scale float32, out *float32)

//go:noescape
func expColsAVX2(x *float32, rows, ld int, scale float32, shift *float32, sum *float64)

//go:noescape
func geluAVX2(x *float32, n int)

//go:noescape
func siluMulAVX2(gp, up *float32, n int)

// vecFor returns the element-wise kernels used with k: with an assembly
// kernel (which implies AVX2 and FMA) the AVX2 ones, and with the AVX-512
// kernel (which implies AVX-512F) the AVX-512 column softmax; else the
// pure-Go ones.
func vecFor(k *blas.Kernel) *vecOps {
	if k.Assembly() && k.Name() == "avx512" {
		return avx512Vec()
	}
	if k.Assembly() {
		return avx2Vec()
	}
	return goVec()
}

// avx2Vec returns the AVX2 element-wise kernels.
func avx2Vec() *vecOps {
	return &vecOps{softmaxCols: softmaxColsAVX2, gelu: geluSliceAVX2, siluMul: siluMulSliceAVX2}
}

// softmaxColsAVX2 is vecOps.softmaxCols on strips of eight columns.
func softmaxColsAVX2(s []float32, rows, w int, scale float32, sum []float64) {
	if w%8 != 0 || rows < 1 {
		softmaxCols(s, rows, w, scale, sum)
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
	for c := 0; c < w; c += 8 {
		maxColsAVX2(&s[c], rows, w, scale, &mx[c])
		expColsAVX2(&s[c], rows, w, scale, &mx[c], &sum[c])
	}
}

func geluSliceAVX2(x []float32) {
	n8 := len(x) &^ 7
	if n8 > 0 {
		geluAVX2(&x[0], n8)
	}
	geluSlice(x[n8:])
}

func siluMulSliceAVX2(g, u []float32) {
	u = u[:len(g)]
	n8 := len(g) &^ 7
	if n8 > 0 {
		siluMulAVX2(&g[0], &u[0], n8)
	}
	siluMulSlice(g[n8:], u[n8:])
}
