package prune

import (
	"fmt"
	"math"
	"slices"

	tblas "github.com/lmsparse/lmsparse/tensor/blas"
)

// Activation statistics and the two pruning methods that use them: Wanda
// (Sun et al. 2023, "A Simple and Effective Pruning Approach for Large
// Language Models") and SparseGPT (Frantar & Alistarh 2023, "SparseGPT:
// Massive Language Models Can Be Accurately Pruned in One-Shot").
//
// A weight matrix here is logical [out, in] (W·x maps an input x of in
// values to out values); Matrix.Transposed says it is stored [in, out].

// Stats accumulates, for the inputs X [n, k] of a projection, Wanda's
// squared column norms Σ_t x_tj² (float64) and, when Hessian is set,
// SparseGPT's XᵀX: the products of each chunk of up to 512 rows are
// summed in float32 by the GEMM kernels (package tensor/blas, as a float32
// reference implementation sums them all), and the chunks accumulated in
// float64.
type Stats struct {
	K     int
	N     int64     // rows seen
	SumSq []float64 // [k] Σ x_tj²
	// XtX is [k, k] row-major (nil without Hessian).
	XtX []float64
	// Threads of the GEMM; 0 means GOMAXPROCS.
	Threads int
	c       []float32
}

// NewStats returns empty statistics for inputs of k values; hessian
// also accumulates XᵀX.
func NewStats(k int, hessian bool) *Stats {
	s := &Stats{K: k, SumSq: make([]float64, k)}
	if hessian {
		s.XtX = make([]float64, k*k)
	}
	return s
}

// Add adds rows inputs of k values each, row r at in[r*ld:].
func (s *Stats) Add(in []float32, rows, k, ld int) {
	if k != s.K {
		panic(fmt.Sprintf("prune: Stats of %d inputs given rows of %d", s.K, k))
	}
	s.N += int64(rows)
	for r := 0; r < rows; r++ {
		row := in[r*ld : r*ld+k]
		for j, v := range row {
			s.SumSq[j] += float64(v) * float64(v)
		}
	}
	if s.XtX == nil {
		return
	}
	// XᵀX += Aᵀ·A, chunk by chunk: Aᵀ [k, n] is both GEMM operands.
	kr := tblas.Best()
	const chunk = 512
	if s.c == nil {
		s.c = make([]float32, k*k)
	}
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		src := in[r0*ld:]
		a := kr.PackA(src, k, n, 1, ld, s.Threads)
		b := kr.PackB(src, k, n, 1, ld, s.Threads)
		kr.Gemm(s.c, k, a, b, k, k, n, s.Threads)
		for i, v := range s.c {
			s.XtX[i] += float64(v)
		}
	}
}

// Norms returns Wanda's input-column norms ‖X_j‖₂.
func (s *Stats) Norms() []float64 {
	out := make([]float64, s.K)
	for j, v := range s.SumSq {
		out[j] = math.Sqrt(v)
	}
	return out
}

// Hessian returns H = 2·XᵀX/n as a full symmetric [k, k] matrix.
func (s *Stats) Hessian() []float64 {
	k := s.K
	h := make([]float64, k*k)
	if s.N == 0 {
		return h
	}
	f := 2 / float64(s.N)
	for i := 0; i < k; i++ {
		for j := i; j < k; j++ {
			v := (s.XtX[i*k+j] + s.XtX[j*k+i]) / 2 * f // exactly symmetric
			h[i*k+j], h[j*k+i] = v, v
		}
	}
	return h
}

// logical returns x's values as a float64 logical [out, in] matrix.
func logical(x *Matrix) []float64 {
	w := make([]float64, x.Rows*x.Cols)
	for i := 0; i < x.Rows; i++ {
		for j := 0; j < x.Cols; j++ {
			w[i*x.Cols+j] = float64(x.Vals[x.index(i, j)])
		}
	}
	return w
}

// checkCalib validates a method for the calibrated pruners: unstructured
// (its Scope is ignored: Wanda compares within rows, SparseGPT within
// column blocks) or N:M.
func checkCalib(m Method, x *Matrix, k int) error {
	if err := m.Validate(); err != nil {
		return err
	}
	if m.Structured != StructNone {
		return fmt.Errorf("%w: tensor %q: Wanda and SparseGPT prune unstructured or N:M, not structured %s", ErrInvalid, x.Name, m.Structured)
	}
	if k != x.Cols {
		return fmt.Errorf("%w: tensor %q: statistics of %d inputs for a matrix of %d", ErrInvalid, x.Name, k, x.Cols)
	}
	return x.check()
}

// pruneOrder returns the indices idx sorted for pruning: smallest score
// first, ties to the lower index.
func pruneOrder(idx []int, score func(int) float64) {
	slices.SortFunc(idx, func(a, b int) int {
		sa, sb := score(a), score(b)
		switch {
		case sa < sb:
			return -1
		case sa > sb:
			return 1
		}
		return a - b
	})
}

// nmPrune is how many of a group of g columns an N:M pattern prunes: a
// last partial group keeps min(N, g).
func nmPrune(m Method, g int) int { return g - min(m.N, g) }

// Wanda prunes x in place (pruned weights become +0) by the score
// |W_ij|·‖X_j‖₂, where norms are the input-column norms (Stats.Norms):
// unstructured, the round-half-even(S·in) lowest scores of each output
// row; N:M, the M−N lowest of each group of M consecutive inputs of a row.
// Ties go to the lower input index. It returns the number of weights
// pruned.
func Wanda(m Method, x *Matrix, norms []float64) (int64, error) {
	if err := checkCalib(m, x, len(norms)); err != nil {
		return 0, err
	}
	var pruned int64
	idx := make([]int, x.Cols)
	for i := 0; i < x.Rows; i++ {
		score := func(j int) float64 { return math.Abs(float64(x.Vals[x.index(i, j)])) * norms[j] }
		prune := func(cols []int, k int) {
			pruneOrder(cols, score)
			for _, j := range cols[:k] {
				x.Vals[x.index(i, j)] = 0
			}
			pruned += int64(k)
		}
		if m.IsNM() {
			for j0 := 0; j0 < x.Cols; j0 += m.M {
				g := min(m.M, x.Cols-j0)
				cols := idx[:g]
				for j := range cols {
					cols[j] = j0 + j
				}
				prune(cols, nmPrune(m, g))
			}
			continue
		}
		for j := range idx {
			idx[j] = j
		}
		prune(idx, int(RoundHalfEven(m.Sparsity, int64(x.Cols))))
	}
	return pruned, nil
}
