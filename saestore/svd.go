package saestore

import (
	"fmt"

	"gonum.org/v1/gonum/mat"

	"github.com/lmsparse/lmsparse/sae"
	"github.com/lmsparse/lmsparse/tensor"
)

// SVDBaseline is the best rank-r approximation of a matrix around its mean
// row (PCA), r the largest rank whose factors — scores [rows, r],
// components [r, d] and the mean [d], in the matrix's dtype — take at most
// a budget of bytes.
type SVDBaseline struct {
	Rank    int
	Bytes   int64     // of the factors
	Rebuilt []float32 // [rows, d], as a checkpoint storing the factors would be read
	FVU     float64   // fraction of variance unexplained
	Cosine  float64   // mean row cosine
}

// FitSVD computes the baseline of x ([rows, d], row-major) within budget
// bytes from the eigenvectors of the d×d scatter matrix (float64, gonum).
// Factors are rounded to dt before the product, which is rounded to
// float32 and then to dt, as a checkpoint storing them would be read.
func FitSVD(x []float32, rows, d int, budget int64, dt tensor.DType) (*SVDBaseline, error) {
	es := int64(dt.Size())
	if rows < 1 || d < 1 || es == 0 || len(x) != rows*d {
		return nil, fmt.Errorf("svd baseline: %w: %d values for a [%d, %d] %s matrix", sae.ErrInvalid, len(x), rows, d, dt)
	}
	r := int((budget/es - int64(d)) / int64(rows+d))
	r = max(0, min(r, rows, d))
	b := &SVDBaseline{Rank: r, Bytes: (int64(rows*r) + int64(r*d) + int64(d)) * es}
	mean := make([]float64, d)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			mean[j] += float64(x[i*d+j])
		}
	}
	for j := range mean {
		mean[j] /= float64(rows)
	}
	c := mat.NewDense(rows, d, nil)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			c.Set(i, j, float64(x[i*d+j])-mean[j])
		}
	}
	round := func(v []float64) ([]float64, error) {
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		raw := make([]byte, len(f)*dt.Size())
		if err := tensor.EncodeF32(raw, f, dt); err != nil {
			return nil, err
		}
		if err := tensor.DecodeF32(f, raw, dt); err != nil {
			return nil, err
		}
		out := make([]float64, len(f))
		for i, x := range f {
			out[i] = float64(x)
		}
		return out, nil
	}
	meanR, err := round(mean)
	if err != nil {
		return nil, err
	}
	xhat := mat.NewDense(rows, d, nil)
	if r > 0 {
		var scatter mat.SymDense
		scatter.SymOuterK(1, c.T())
		var eig mat.EigenSym
		if !eig.Factorize(&scatter, true) {
			return nil, fmt.Errorf("svd baseline: the eigendecomposition did not converge")
		}
		var vecs mat.Dense
		eig.VectorsTo(&vecs)
		// Eigenvalues ascend: the last r columns are the top components.
		comp := mat.DenseCopyOf(vecs.Slice(0, d, d-r, d)) // [d, r]
		var scores mat.Dense
		scores.Mul(c, comp) // [rows, r]
		sr, err := round(scores.RawMatrix().Data)
		if err != nil {
			return nil, err
		}
		cr, err := round(comp.RawMatrix().Data)
		if err != nil {
			return nil, err
		}
		xhat.Mul(mat.NewDense(rows, r, sr), mat.NewDense(d, r, cr).T())
	}
	b.Rebuilt = make([]float32, rows*d)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			b.Rebuilt[i*d+j] = float32(xhat.At(i, j) + meanR[j])
		}
	}
	raw := make([]byte, len(b.Rebuilt)*dt.Size())
	if err := tensor.EncodeF32(raw, b.Rebuilt, dt); err != nil {
		return nil, err
	}
	if err := tensor.DecodeF32(b.Rebuilt, raw, dt); err != nil {
		return nil, err
	}
	b.FVU, b.Cosine = sae.Metrics(x, b.Rebuilt, rows, d)
	return b, nil
}
