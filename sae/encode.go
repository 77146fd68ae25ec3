package sae

import (
	"context"
	"math"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// maxGramLatents bounds the latent count for which the refit uses the full
// Gram matrix of the dictionary (m² floats); above it, each row's Gram is
// computed from the dictionary rows.
const maxGramLatents = 8192

// refitRidge is added to the diagonal of each row's Gram matrix (whose
// diagonal is 1) so that nearly parallel atoms stay solvable.
const refitRidge = 1e-6

// result encodes every row with the trained parameters and assembles the
// Result: codes in the input's units, statistics of the reconstruction.
func (t *trainer) result(ctx context.Context) (*Result, error) {
	d, m := t.d, t.m
	refit := !t.opt.NoRefit
	var gram []float32
	if refit && m <= maxGramLatents {
		gram = make([]float32, m*m)
		t.kern.MatMulT(gram, t.p.wDec, t.p.wDec, m, m, d, t.threads)
	}
	k := t.k
	type rowCodes struct {
		idx []int32
		val []float32
		enc float64 // squared error of the encoder's codes
	}
	rows := make([]rowCodes, t.rows)
	b := t.b
	bs := b.capRows
	for lo := 0; lo < t.rows; lo += bs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+bs, t.rows)
		b.n = hi - lo
		copy(b.x, t.x[lo*d:hi*d])
		t.encode(b)
		blas.ParallelRows(t.threads, hi-lo, 8, func(rlo, rhi int) {
			heap := make([]int32, k)
			xhat := make([]float32, d)
			xc := make([]float32, d)
			var ws refitWork
			for i := rlo; i < rhi; i++ {
				pre := b.pre[i*m : (i+1)*m]
				x := b.x[i*d : (i+1)*d]
				var sel []int32
				if t.l1 > 0 {
					for j, v := range pre {
						if v > 0 {
							sel = append(sel, int32(j))
						}
					}
				} else {
					sel = slices32(topK(pre, nil, k, heap))
				}
				enc := make([]float32, len(sel))
				for s, j := range sel {
					enc[s] = max(pre[j], 0)
				}
				rc := rowCodes{enc: t.sqErr(x, sel, enc, xhat)}
				val := enc
				if refit && len(sel) <= d {
					for c := range xc {
						xc[c] = x[c] - t.p.bPre[c]
					}
					if z, ok := ws.solve(t.p.wDec, gram, m, d, sel, xc); ok {
						val = z
					}
				}
				// Keep only nonzero codes (ReLU zeros of the encoder).
				for s, j := range sel {
					if val[s] != 0 {
						rc.idx = append(rc.idx, j)
						rc.val = append(rc.val, val[s])
					}
				}
				rows[lo+i] = rc
			}
		})
	}

	res := &Result{Rows: t.rows, Dim: d, Latents: m, Scale: t.scale, History: t.history,
		Dictionary: append([]float32(nil), t.p.wDec...), Bias: make([]float32, d),
		EncoderWeight: append([]float32(nil), t.p.wEnc...), EncoderBias: append([]float32(nil), t.p.bEnc...)}
	for c, v := range t.p.bPre {
		res.Bias[c] = v * t.scale
	}
	codes := &Codes{Rows: t.rows, Cols: m, RowPtr: make([]int64, t.rows+1)}
	used := make([]bool, m)
	var encErr float64
	for i, rc := range rows {
		codes.RowPtr[i+1] = codes.RowPtr[i] + int64(len(rc.idx))
		codes.Col = append(codes.Col, rc.idx...)
		for _, v := range rc.val {
			codes.Val = append(codes.Val, v*t.scale)
		}
		for _, j := range rc.idx {
			used[j] = true
		}
		encErr += rc.enc
	}
	res.Codes = codes
	// The scaled data's total variance, Σ‖x − mean‖².
	mean := colMean(t.x, t.rows, d)
	var tv float64
	for i := 0; i < t.rows; i++ {
		for c, v := range t.x[i*d : (i+1)*d] {
			dv := float64(v) - mean[c]
			tv += dv * dv
		}
	}
	xhat := Reconstruct(codes, res.Dictionary, res.Bias, d, t.threads)
	x := make([]float32, len(t.x))
	for i, v := range t.x {
		x[i] = v * t.scale
	}
	res.Stats.FVU, res.Stats.Cosine = Metrics(x, xhat, t.rows, d)
	res.Stats.EncoderFVU = ratio(encErr, tv)
	res.Stats.L0 = float64(codes.NNZ()) / float64(t.rows)
	for _, u := range used {
		if !u {
			res.Stats.Dead++
		}
	}
	return res, nil
}

func slices32(s []int32) []int32 { return append([]int32(nil), s...) }

func ratio(a, b float64) float64 {
	if b == 0 {
		if a == 0 {
			return 0
		}
		return math.Inf(1)
	}
	return a / b
}

// sqErr returns ‖x − (b_pre + Σ_s val[s]·W_dec[idx[s]])‖², using xhat as
// scratch.
func (t *trainer) sqErr(x []float32, idx []int32, val []float32, xhat []float32) float64 {
	d := t.d
	copy(xhat, t.p.bPre)
	for s, j := range idx {
		axpy(xhat, val[s], t.p.wDec[int(j)*d:int(j+1)*d])
	}
	var se float64
	for c, v := range x {
		r := float64(xhat[c]) - float64(v)
		se += r * r
	}
	return se
}

// refitWork is the scratch memory of one goroutine's refits.
type refitWork struct {
	a, rhs []float64
}

// solve returns the least-squares codes z over the atoms sel of the
// dictionary w ([m, d]) for the centred row xc: (G_SS + ρI)·z = W_S·xc,
// with G the Gram matrix (gram, or computed from w when gram is nil),
// solved by Cholesky in float64. ok is false when the system is not
// positive definite.
func (ws *refitWork) solve(w, gram []float32, m, d int, sel []int32, xc []float32) ([]float32, bool) {
	s := len(sel)
	if s == 0 {
		return nil, true
	}
	if cap(ws.a) < s*s {
		ws.a = make([]float64, s*s)
		ws.rhs = make([]float64, s)
	}
	a, rhs := ws.a[:s*s], ws.rhs[:s]
	for p, jp := range sel {
		wp := w[int(jp)*d : int(jp+1)*d]
		var r float64
		for c, v := range wp {
			r += float64(v) * float64(xc[c])
		}
		rhs[p] = r
		for q := 0; q <= p; q++ {
			jq := sel[q]
			var g float64
			if gram != nil {
				g = float64(gram[int(jp)*m+int(jq)])
			} else {
				wq := w[int(jq)*d : int(jq+1)*d]
				for c, v := range wp {
					g += float64(v) * float64(wq[c])
				}
			}
			a[p*s+q] = g
		}
		a[p*s+p] += refitRidge
	}
	// Cholesky a = L·Lᵀ in the lower triangle.
	for p := 0; p < s; p++ {
		for q := 0; q <= p; q++ {
			sum := a[p*s+q]
			for r := 0; r < q; r++ {
				sum -= a[p*s+r] * a[q*s+r]
			}
			if p == q {
				if !(sum > 0) {
					return nil, false
				}
				a[p*s+p] = math.Sqrt(sum)
			} else {
				a[p*s+q] = sum / a[q*s+q]
			}
		}
	}
	// Forward then backward substitution.
	for p := 0; p < s; p++ {
		sum := rhs[p]
		for r := 0; r < p; r++ {
			sum -= a[p*s+r] * rhs[r]
		}
		rhs[p] = sum / a[p*s+p]
	}
	for p := s - 1; p >= 0; p-- {
		sum := rhs[p]
		for r := p + 1; r < s; r++ {
			sum -= a[r*s+p] * rhs[r]
		}
		rhs[p] = sum / a[p*s+p]
	}
	z := make([]float32, s)
	for p, v := range rhs {
		z[p] = float32(v)
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, false
		}
	}
	return z, true
}

// Reconstruct returns Z·D + b ([rows, d]) for codes Z, dictionary D ([m, d])
// and bias b ([d]) with the arithmetic of the stored format (package
// formats/sparse, DecodeSAE): each element sums its row's codes in
// ascending column order in float64, adds the bias and rounds once.
func Reconstruct(z *Codes, dict, bias []float32, d, threads int) []float32 {
	out := make([]float32, z.Rows*d)
	blas.ParallelRows(blas.Threads(threads), z.Rows, 64, func(lo, hi int) {
		acc := make([]float64, d)
		for r := lo; r < hi; r++ {
			clear(acc)
			for p := z.RowPtr[r]; p < z.RowPtr[r+1]; p++ {
				v := float64(z.Val[p])
				j := int(z.Col[p])
				for c, w := range dict[j*d : (j+1)*d] {
					acc[c] += v * float64(w)
				}
			}
			o := out[r*d : (r+1)*d]
			for c := range o {
				o[c] = float32(acc[c] + float64(bias[c]))
			}
		}
	})
	return out
}

// Metrics compares a reconstruction xhat with x (both [rows, d]): the
// fraction of variance unexplained Σ‖x−x̂‖² / Σ‖x−mean‖² and the mean over
// rows of cos(x, x̂) (a zero row against a zero row counts 1, against
// anything else 0), in float64.
func Metrics(x, xhat []float32, rows, d int) (fvu, cosine float64) {
	mean := colMean(x, rows, d)
	var se, tv, cs float64
	for i := 0; i < rows; i++ {
		var xx, yy, xy float64
		for c := 0; c < d; c++ {
			a, b := float64(x[i*d+c]), float64(xhat[i*d+c])
			r := a - b
			se += r * r
			dv := a - mean[c]
			tv += dv * dv
			xx += a * a
			yy += b * b
			xy += a * b
		}
		switch {
		case xx > 0 && yy > 0:
			cs += xy / math.Sqrt(xx*yy)
		case xx == 0 && yy == 0:
			cs++
		}
	}
	if rows > 0 {
		cs /= float64(rows)
	}
	return ratio(se, tv), cs
}
