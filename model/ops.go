package model

import (
	"math"

	"github.com/lmsparse/lmsparse/internal/fastmath"
)

// expf is e^x in float32 (internal/fastmath: Cephes, a few ulp).
func expf(x float32) float32 { return fastmath.Expf(x) }

// vecOps are the element-wise kernels of the forward pass that use exp.
type vecOps struct {
	// softmaxCols replaces each of the w columns of s ([rows, w],
	// row-major) by exp(scale·s − column max) and sets sum[c] to the
	// column's sum, accumulated in float64 down the rows. Normalizing is
	// left to the caller.
	softmaxCols func(s []float32, rows, w int, scale float32, sum []float64)
	gelu        func(x []float32)    // gelu_new in place
	siluMul     func(g, u []float32) // g[i] = silu(g[i])·u[i]
}

// goVec returns the pure-Go element-wise kernels.
func goVec() *vecOps {
	return &vecOps{softmaxCols: softmaxCols, gelu: geluSlice, siluMul: siluMulSlice}
}

// softmaxCols is the pure-Go vecOps.softmaxCols.
func softmaxCols(s []float32, rows, w int, scale float32, sum []float64) {
	var buf [64]float32
	mx := buf[:0]
	if w > len(buf) {
		mx = make([]float32, 0, w)
	}
	for _, v := range s[:w] {
		mx = append(mx, v*scale)
	}
	for r := 1; r < rows; r++ {
		for c, v := range s[r*w : (r+1)*w] {
			if v*scale > mx[c] {
				mx[c] = v * scale
			}
		}
	}
	sum = sum[:w]
	clear(sum)
	for r := 0; r < rows; r++ {
		row := s[r*w : (r+1)*w]
		for c, v := range row {
			e := expf(v*scale - mx[c])
			row[c] = e
			sum[c] += float64(e)
		}
	}
}

func geluSlice(x []float32) {
	for i, v := range x {
		x[i] = geluTanh(v)
	}
}

func siluMulSlice(g, u []float32) {
	u = u[:len(g)]
	for i, v := range g {
		g[i] = silu(v) * u[i]
	}
}

// softmaxRef is the reference for softmax, in float64 with math.Exp.
func softmaxRef(x []float32, scale float32) {
	if len(x) == 0 {
		return
	}
	mx := math.Inf(-1)
	for _, v := range x {
		mx = math.Max(mx, float64(v*scale))
	}
	e := make([]float64, len(x))
	var sum float64
	for i, v := range x {
		e[i] = math.Exp(float64(v*scale) - mx)
		sum += e[i]
	}
	for i := range x {
		x[i] = float32(e[i] / sum)
	}
}

// rmsNorm writes x·w/√(mean(x²)+eps) to out (Llama's RMSNorm), summing the
// squares in float64. out may alias x.
func rmsNorm(out, x, w []float32, eps float64) {
	var ss float64
	for _, v := range x {
		ss += float64(v) * float64(v)
	}
	inv := float32(1 / math.Sqrt(ss/float64(len(x))+eps))
	w = w[:len(x)]
	out = out[:len(x)]
	for i, v := range x {
		out[i] = (v * inv) * w[i]
	}
}

// layerNorm writes (x-mean)/√(var+eps)·w + b to out (biased variance, as
// torch.nn.LayerNorm), with mean and variance in float64. out may alias x.
func layerNorm(out, x, w, b []float32, eps float64) {
	n := float64(len(x))
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	mean := s / n
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	inv := 1 / math.Sqrt(ss/n+eps)
	w = w[:len(x)]
	b = b[:len(x)]
	out = out[:len(x)]
	for i, v := range x {
		out[i] = float32((float64(v)-mean)*inv)*w[i] + b[i]
	}
}

// geluTanh is GPT-2's gelu_new, 0.5·x·(1+tanh(√(2/π)·(x+0.044715·x³))),
// computed as x·sigmoid(2u), which is the same function and keeps its
// relative accuracy for negative x.
func geluTanh(x float32) float32 {
	const c = 0.7978845608028654 // √(2/π)
	u := c * (x + 0.044715*x*x*x)
	return x / (1 + expf(-2*u))
}

// geluTanhRef is the reference for geluTanh, in float64 with math.Tanh.
func geluTanhRef(x float32) float32 {
	v := float64(x)
	return float32(0.5 * v * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(v+0.044715*v*v*v))))
}

// geluErf is the exact GELU, 0.5·x·(1+erf(x/√2)).
func geluErf(x float32) float32 {
	v := float64(x)
	return float32(0.5 * v * (1 + math.Erf(v/math.Sqrt2)))
}

// silu is x·sigmoid(x).
func silu(x float32) float32 { return x / (1 + expf(-x)) }

// siluRef is the reference for silu, in float64.
func siluRef(x float32) float32 {
	v := float64(x)
	return float32(v / (1 + math.Exp(-v)))
}
