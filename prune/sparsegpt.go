package prune

import (
	"fmt"

	"gonum.org/v1/gonum/mat"
)

// SparseGPTOptions tune SparseGPT; the zero value takes the paper's
// defaults.
type SparseGPTOptions struct {
	// Damp is added to the Hessian's diagonal as Damp × mean(diag H);
	// 0 means 0.01.
	Damp float64
	// BlockSize is the number of columns whose mask is chosen together
	// and whose updates are applied lazily; 0 means 128. For N:M it is
	// rounded up to a multiple of M so groups never straddle blocks.
	BlockSize int
}

// SparseGPTResult says what SparseGPT did to one matrix.
type SparseGPTResult struct {
	Pruned int64 // weights set to zero by the mask
	Dead   int   // inputs never active (zero Hessian diagonal): their weights are zeroed
	// Damp is the damping factor that was used (relative to mean(diag H)),
	// larger than asked when the Cholesky factorization failed and was
	// retried with ×10 the damping (Retries times).
	Damp    float64
	Retries int
}

// SparseGPT prunes x in place by SparseGPT's approximate reconstruction,
// given h = 2·XᵀX/n (Stats.Hessian, [in, in]): columns are processed left
// to right in blocks; each block's mask keeps, unstructured, all but the
// round-half-even(S·out·bs) weights of lowest w²/[H⁻¹]²_jj in the block
// (ties to the lower row-major index), or for N:M in each row all but the
// M−N lowest of every group of M inputs; each pruned weight's error is
// compensated on the columns to its right through the upper Cholesky
// factor of H⁻¹, lazily between blocks. Kept weights change; pruned ones
// are exactly +0. Inputs whose diagonal is zero get H_jj = 1 and zero
// weights. If the damped Hessian is not positive definite the damping is
// raised ×10, up to three times.
func SparseGPT(m Method, x *Matrix, h []float64, opt SparseGPTOptions) (*SparseGPTResult, error) {
	k := x.Cols
	if len(h) != k*k {
		return nil, fmt.Errorf("%w: tensor %q: a Hessian of %d values for %d inputs", ErrInvalid, x.Name, len(h), k)
	}
	if err := checkCalib(m, x, k); err != nil {
		return nil, err
	}
	if opt.Damp == 0 {
		opt.Damp = 0.01
	}
	if opt.BlockSize <= 0 {
		opt.BlockSize = 128
	}
	if !(opt.Damp > 0) {
		return nil, fmt.Errorf("%w: damping %g must be positive", ErrInvalid, opt.Damp)
	}
	B := opt.BlockSize
	if m.IsNM() {
		B = (B + m.M - 1) / m.M * m.M
	}
	rows := x.Rows
	w := logical(x)
	hd := append([]float64(nil), h...)
	res := &SparseGPTResult{Damp: opt.Damp}
	mean := 0.0
	for j := 0; j < k; j++ {
		if hd[j*k+j] == 0 {
			hd[j*k+j] = 1
			res.Dead++
			for i := 0; i < rows; i++ {
				w[i*k+j] = 0
			}
		}
		mean += hd[j*k+j]
	}
	mean /= float64(max(k, 1))
	u, err := dampedInverseFactor(hd, k, mean, res)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", x.Name, err)
	}
	mask := make([]bool, rows*k)
	errs := make([]float64, rows*B)
	for i1 := 0; i1 < k; i1 += B {
		i2 := min(i1+B, k)
		n := i2 - i1
		if !m.IsNM() {
			blockMask(w, u, mask, rows, k, i1, i2, RoundHalfEven(m.Sparsity, int64(rows*n)))
		}
		for c := i1; c < i2; c++ {
			if m.IsNM() && c%m.M == 0 {
				groupMask(m, w, u, mask, rows, k, c)
			}
			d := u[c*k+c]
			urow := u[c*k : (c+1)*k]
			for r := 0; r < rows; r++ {
				wr := w[r*k : (r+1)*k]
				q := wr[c]
				if mask[r*k+c] {
					q = 0
				}
				e := (wr[c] - q) / d
				wr[c] = q
				errs[r*B+c-i1] = e
				if e != 0 {
					for j := c + 1; j < i2; j++ {
						wr[j] -= e * urow[j]
					}
				}
			}
		}
		// Lazy update of the columns right of the block: W[:, i2:] -= E·U[i1:i2, i2:].
		if i2 < k {
			e := mat.NewDense(rows, n, nil)
			for r := 0; r < rows; r++ {
				copy(e.RawRowView(r), errs[r*B:r*B+n])
			}
			ub := mat.NewDense(n, k-i2, nil)
			for i := 0; i < n; i++ {
				copy(ub.RawRowView(i), u[(i1+i)*k+i2:(i1+i+1)*k])
			}
			var upd mat.Dense
			upd.Mul(e, ub)
			for r := 0; r < rows; r++ {
				ur := upd.RawRowView(r)
				wr := w[r*k+i2 : (r+1)*k]
				for j := range wr {
					wr[j] -= ur[j]
				}
			}
		}
	}
	for i := 0; i < rows; i++ {
		for j := 0; j < k; j++ {
			v := w[i*k+j]
			if mask[i*k+j] {
				res.Pruned++
				v = 0
			}
			x.Vals[x.index(i, j)] = float32(v)
		}
	}
	return res, nil
}

// dampedInverseFactor returns the upper Cholesky factor U of
// (H + damp·mean·I)⁻¹ (so that H⁻¹ = UᵀU), raising the damping ×10 up to
// three times when a factorization fails. With P the order-reversing
// permutation and P·H·P = L·Lᵀ (Cholesky), H⁻¹ = (P·L⁻¹·P)ᵀ·(P·L⁻¹·P) and
// P·L⁻¹·P is upper triangular: one factorization and one triangular
// inverse give U.
func dampedInverseFactor(h []float64, k int, mean float64, res *SparseGPTResult) ([]float64, error) {
	for try := 0; try <= 3; try++ {
		a := mat.NewSymDense(k, nil)
		for i := 0; i < k; i++ {
			for j := i; j < k; j++ {
				v := h[(k-1-i)*k+(k-1-j)]
				if i == j {
					v += res.Damp * mean
				}
				a.SetSym(i, j, v)
			}
		}
		var c mat.Cholesky
		if c.Factorize(a) {
			var l mat.TriDense
			c.LTo(&l)
			if err := l.InverseTri(&l); err == nil {
				u := make([]float64, k*k)
				raw := l.RawTriangular()
				for i := 0; i < k; i++ {
					for j := 0; j <= i; j++ {
						u[(k-1-i)*k+(k-1-j)] = raw.Data[i*raw.Stride+j]
					}
				}
				return u, nil
			}
		}
		if try < 3 {
			res.Damp *= 10
			res.Retries++
		}
	}
	return nil, fmt.Errorf("%w: the damped Hessian is not positive definite even with damping %g", ErrInvalid, res.Damp)
}

// blockMask marks, among columns [i1, i2) of all rows, the count weights
// of lowest w²/U_jj² (ties to the lower row-major index within the block).
func blockMask(w, u []float64, mask []bool, rows, k, i1, i2 int, count int64) {
	if count == 0 {
		return
	}
	n := i2 - i1
	type scored struct {
		s float64
		i int
	}
	all := make([]scored, rows*n)
	for r := 0; r < rows; r++ {
		for c := i1; c < i2; c++ {
			d := u[c*k+c]
			all[r*n+c-i1] = scored{w[r*k+c] * w[r*k+c] / (d * d), r*n + c - i1}
		}
	}
	less := func(a, b scored) int {
		switch {
		case a.s < b.s:
			return -1
		case a.s > b.s:
			return 1
		}
		return a.i - b.i
	}
	// The count lowest: select, then mark (their order does not matter).
	selectLowest(all, int(count), less)
	for _, e := range all[:count] {
		mask[(e.i/n)*k+i1+e.i%n] = true
	}
}

// selectLowest reorders v so that its first k elements are the k lowest
// under cmp (a total order), by quickselect with a median-of-three pivot.
func selectLowest[T any](v []T, k int, cmp func(a, b T) int) {
	lo, hi := 0, len(v)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		// Median of three to v[hi].
		if cmp(v[mid], v[lo]) < 0 {
			v[mid], v[lo] = v[lo], v[mid]
		}
		if cmp(v[hi], v[lo]) < 0 {
			v[hi], v[lo] = v[lo], v[hi]
		}
		if cmp(v[mid], v[hi]) < 0 {
			v[mid], v[hi] = v[hi], v[mid]
		}
		p := lo
		for i := lo; i < hi; i++ {
			if cmp(v[i], v[hi]) < 0 {
				v[i], v[p] = v[p], v[i]
				p++
			}
		}
		v[p], v[hi] = v[hi], v[p]
		switch {
		case p == k-1 || p == k:
			return
		case p < k:
			lo = p + 1
		default:
			hi = p - 1
		}
	}
}

// groupMask marks, in each row, the M−N weights of lowest w²/U_jj² among
// the group of inputs starting at c (ties to the lower index).
func groupMask(m Method, w, u []float64, mask []bool, rows, k, c int) {
	g := min(m.M, k-c)
	cols := make([]int, g)
	for r := 0; r < rows; r++ {
		for j := range cols {
			cols[j] = c + j
		}
		pruneOrder(cols, func(j int) float64 {
			d := u[j*k+j]
			return w[r*k+j] * w[r*k+j] / (d * d)
		})
		for _, j := range cols[:nmPrune(m, g)] {
			mask[r*k+j] = true
		}
	}
}
