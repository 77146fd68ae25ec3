package prune

import (
	"math"
	"math/rand/v2"
	"testing"
)

// calibCase is a random layer with inputs: out × in weights, n input rows,
// some inputs dead (always zero).
type calibCase struct {
	name       string
	out, in, n int
	dead       []int
	transposed bool
	method     Method
	blockSize  int
}

func calibCases() []calibCase {
	un := func(s float64) Method { return Method{Sparsity: s, Scope: ScopeRow} }
	return []calibCase{
		{name: "square-50", out: 16, in: 16, n: 64, method: un(0.5)},
		{name: "wide-30-dead", out: 8, in: 40, n: 100, dead: []int{3, 17, 39}, method: un(0.3)},
		{name: "tall-70-transposed", out: 24, in: 12, n: 50, transposed: true, method: un(0.7), blockSize: 5},
		{name: "nm-2:4", out: 10, in: 32, n: 80, dead: []int{0}, method: Method{N: 2, M: 4}},
		{name: "nm-1:3-partial", out: 6, in: 14, n: 40, method: Method{N: 1, M: 3}, blockSize: 4},
		{name: "blocks-uneven", out: 7, in: 45, n: 90, method: un(0.5), blockSize: 16},
	}
}

// data returns the case's weights (stored layout) and inputs [n, in].
func (c calibCase) data(rng *rand.Rand) (*Matrix, []float32) {
	vals := make([]float32, c.out*c.in)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64())
	}
	x := make([]float32, c.n*c.in)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * (1 + float64(i%c.in)/4)) // columns of different scale
	}
	for _, j := range c.dead {
		for r := 0; r < c.n; r++ {
			x[r*c.in+j] = 0
		}
	}
	return &Matrix{Name: c.name, Vals: vals, Rows: c.out, Cols: c.in, Transposed: c.transposed}, x
}

func stats(x []float32, n, k int) *Stats {
	s := NewStats(k, true)
	// Two chunks, as a probe delivers them.
	s.Add(x, n/2, k, k)
	s.Add(x[(n/2)*k:], n-n/2, k, k)
	return s
}

func TestStats(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	n, k := 300, 9
	x := make([]float32, n*k)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	s := stats(x, n, k)
	h := s.Hessian()
	for i := 0; i < k; i++ {
		var sq float64
		for r := 0; r < n; r++ {
			sq += float64(x[r*k+i]) * float64(x[r*k+i])
		}
		if math.Abs(s.SumSq[i]-sq) > 1e-9*sq {
			t.Errorf("SumSq[%d] = %v, want %v", i, s.SumSq[i], sq)
		}
		for j := 0; j < k; j++ {
			var want float64
			for r := 0; r < n; r++ {
				want += float64(x[r*k+i]) * float64(x[r*k+j])
			}
			want *= 2 / float64(n)
			if math.Abs(h[i*k+j]-want) > 1e-5*(1+math.Abs(want)) { // float32 within chunks
				t.Errorf("H[%d,%d] = %v, want %v", i, j, h[i*k+j], want)
			}
		}
	}
}

// wandaReference marks pruned weights by counting, for each weight, the
// weights of its row (or N:M group) that come before it in pruning order
// (score ascending, then input index): pruned when fewer than the quota.
func wandaReference(m Method, w []float64, out, in int, norms []float64) []bool {
	mask := make([]bool, out*in)
	for i := 0; i < out; i++ {
		score := func(j int) float64 { return math.Abs(w[i*in+j]) * norms[j] }
		for j := 0; j < in; j++ {
			lo, hi, quota := 0, in, int(math.RoundToEven(m.Sparsity*float64(in)))
			if m.IsNM() {
				lo = j / m.M * m.M
				hi = min(lo+m.M, in)
				quota = (hi - lo) - min(m.N, hi-lo)
			}
			before := 0
			for l := lo; l < hi; l++ {
				if score(l) < score(j) || score(l) == score(j) && l < j {
					before++
				}
			}
			mask[i*in+j] = before < quota
		}
	}
	return mask
}

func TestWandaMatchesReference(t *testing.T) {
	seed := uint64(11)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, c := range calibCases() {
		t.Run(c.name, func(t *testing.T) {
			x, in := c.data(rng)
			// Ties: a few equal scores in the first row.
			x.Vals[x.index(0, 1)], x.Vals[x.index(0, 2)] = x.Vals[x.index(0, 0)], -x.Vals[x.index(0, 0)]
			s := stats(in, c.n, c.in)
			norms := s.Norms()
			w := logical(x)
			want := wandaReference(c.method, w, c.out, c.in, norms)
			pruned, err := Wanda(c.method, x, norms)
			if err != nil {
				t.Fatal(err)
			}
			var count int64
			for i := 0; i < c.out; i++ {
				rowZeros := 0
				for j := 0; j < c.in; j++ {
					got := x.Vals[x.index(i, j)]
					if want[i*c.in+j] {
						count++
						rowZeros++
						if math.Float32bits(got) != 0 {
							t.Fatalf("(%d,%d) should be pruned, is %v", i, j, got)
						}
					} else if float64(got) != w[i*c.in+j] {
						t.Fatalf("(%d,%d) kept as %v, was %v", i, j, got, w[i*c.in+j])
					}
				}
				if !c.method.IsNM() && rowZeros != int(RoundHalfEven(c.method.Sparsity, int64(c.in))) {
					t.Errorf("row %d: %d pruned", i, rowZeros)
				}
			}
			if pruned != count {
				t.Errorf("Wanda says %d pruned, reference %d", pruned, count)
			}
		})
	}
}

// sparseGPTReference is SparseGPT written straight from the paper's
// algorithm in float64 with no blocking of the updates: every pruned
// column's error is applied to all the columns to its right at once; the
// mask is chosen every B columns (unstructured) or M columns (N:M) from
// the current weights. H⁻¹'s upper Cholesky factor comes from a plain
// Cholesky–Banachiewicz factorization and triangular inverses.
func sparseGPTReference(m Method, w []float64, out, in int, h []float64, damp float64, B int) ([]float64, []bool) {
	w = append([]float64(nil), w...)
	h = append([]float64(nil), h...)
	mean := 0.0
	for j := 0; j < in; j++ {
		if h[j*in+j] == 0 {
			h[j*in+j] = 1
			for i := 0; i < out; i++ {
				w[i*in+j] = 0
			}
		}
		mean += h[j*in+j]
	}
	mean /= float64(in)
	for j := 0; j < in; j++ {
		h[j*in+j] += damp * mean
	}
	// H = L·Lᵀ; H⁻¹ = L⁻ᵀ·L⁻¹; then H⁻¹ = Uᵀ·U with U upper.
	chol := func(a []float64, n int) []float64 { // lower L
		l := make([]float64, n*n)
		for i := 0; i < n; i++ {
			for j := 0; j <= i; j++ {
				s := a[i*n+j]
				for p := 0; p < j; p++ {
					s -= l[i*n+p] * l[j*n+p]
				}
				if i == j {
					l[i*n+i] = math.Sqrt(s)
				} else {
					l[i*n+j] = s / l[j*n+j]
				}
			}
		}
		return l
	}
	n := in
	l := chol(h, n)
	linv := make([]float64, n*n) // inverse of lower L, by forward substitution
	for c := 0; c < n; c++ {
		for i := 0; i < n; i++ {
			s := 0.0
			if i == c {
				s = 1
			}
			for p := 0; p < i; p++ {
				s -= l[i*n+p] * linv[p*n+c]
			}
			linv[i*n+c] = s / l[i*n+i]
		}
	}
	hinv := make([]float64, n*n)
	for i := 0; i < n; i++ {
		for j := 0; j < n; j++ {
			for p := 0; p < n; p++ {
				hinv[i*n+j] += linv[p*n+i] * linv[p*n+j]
			}
		}
	}
	// Upper U with Hinv = UᵀU: U = Lᵀ of Hinv's Cholesky factor.
	l2 := chol(hinv, n)
	u := func(i, j int) float64 { return l2[j*n+i] }
	mask := make([]bool, out*in)
	score := func(r, c int) float64 { return w[r*in+c] * w[r*in+c] / (u(c, c) * u(c, c)) }
	for c := 0; c < in; c++ {
		switch {
		case m.IsNM() && c%m.M == 0:
			hi := min(c+m.M, in)
			quota := (hi - c) - min(m.N, hi-c)
			for r := 0; r < out; r++ {
				for j := c; j < hi; j++ {
					before := 0
					for l := c; l < hi; l++ {
						if score(r, l) < score(r, j) || score(r, l) == score(r, j) && l < j {
							before++
						}
					}
					mask[r*in+j] = before < quota
				}
			}
		case !m.IsNM() && c%B == 0:
			hi := min(c+B, in)
			quota := int(math.RoundToEven(m.Sparsity * float64(out*(hi-c))))
			for r := 0; r < out; r++ {
				for j := c; j < hi; j++ {
					before := 0
					for r2 := 0; r2 < out; r2++ {
						for l := c; l < hi; l++ {
							if score(r2, l) < score(r, j) || score(r2, l) == score(r, j) && (r2*(hi-c)+l-c) < (r*(hi-c)+j-c) {
								before++
							}
						}
					}
					mask[r*in+j] = before < quota
				}
			}
		}
		for r := 0; r < out; r++ {
			q := w[r*in+c]
			if mask[r*in+c] {
				q = 0
			}
			e := (w[r*in+c] - q) / u(c, c)
			for j := c; j < in; j++ {
				w[r*in+j] -= e * u(c, j)
			}
			w[r*in+c] = q
		}
	}
	return w, mask
}

func TestSparseGPTMatchesReference(t *testing.T) {
	seed := uint64(5)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	for _, c := range calibCases() {
		t.Run(c.name, func(t *testing.T) {
			x, in := c.data(rng)
			h := stats(in, c.n, c.in).Hessian()
			B := c.blockSize
			if B == 0 {
				B = 128
			}
			if c.method.IsNM() {
				B = (B + c.method.M - 1) / c.method.M * c.method.M
			}
			want, wantMask := sparseGPTReference(c.method, logical(x), c.out, c.in, h, 0.01, B)
			res, err := SparseGPT(c.method, x, h, SparseGPTOptions{BlockSize: c.blockSize})
			if err != nil {
				t.Fatal(err)
			}
			if res.Dead != len(c.dead) || res.Retries != 0 {
				t.Errorf("result %+v, want %d dead inputs", res, len(c.dead))
			}
			var diff, norm float64
			var zeros int64
			for i := 0; i < c.out; i++ {
				for j := 0; j < c.in; j++ {
					got := float64(x.Vals[x.index(i, j)])
					d := got - want[i*c.in+j]
					diff += d * d
					norm += want[i*c.in+j] * want[i*c.in+j]
					if wantMask[i*c.in+j] {
						zeros++
						if math.Float32bits(float32(got)) != 0 {
							t.Fatalf("(%d,%d) should be pruned to +0, is %v", i, j, got)
						}
					}
				}
			}
			if rel := math.Sqrt(diff / norm); rel > 1e-5 {
				t.Errorf("relative difference %g from the reference", rel)
			}
			if res.Pruned != zeros {
				t.Errorf("pruned %d, reference %d", res.Pruned, zeros)
			}
			if c.method.IsNM() {
				for i := 0; i < c.out; i++ {
					for j0 := 0; j0 < c.in; j0 += c.method.M {
						g, z := min(c.method.M, c.in-j0), 0
						for j := j0; j < j0+g; j++ {
							if wantMask[i*c.in+j] {
								z++
							}
						}
						if z != nmPrune(c.method, g) {
							t.Errorf("row %d group %d: %d pruned", i, j0, z)
						}
					}
				}
			}
		})
	}
}

// TestSparseGPTDampingRetry: a singular Hessian (two equal inputs, no
// damping room) fails the first factorization only when damping is tiny;
// an indefinite one fails every retry.
func TestSparseGPTErrors(t *testing.T) {
	x := &Matrix{Name: "w", Vals: []float32{1, 2, 3, 4}, Rows: 2, Cols: 2}
	h := []float64{1, 2, 2, 1} // indefinite
	if _, err := SparseGPT(Method{Sparsity: 0.5, Scope: ScopeRow}, x, h, SparseGPTOptions{Damp: 1e-6}); err == nil {
		t.Error("an indefinite Hessian was accepted")
	}
	if _, err := SparseGPT(Method{Sparsity: 0.5, Scope: ScopeRow}, x, h[:3], SparseGPTOptions{}); err == nil {
		t.Error("a Hessian of the wrong size was accepted")
	}
	if _, err := SparseGPT(Method{Sparsity: 0.5, Structured: StructRows}, x, []float64{1, 0, 0, 1}, SparseGPTOptions{}); err == nil {
		t.Error("structured pruning was accepted")
	}
	if _, err := SparseGPT(Method{Sparsity: 0.5, Scope: ScopeRow}, x, []float64{1, 0, 0, 1}, SparseGPTOptions{Damp: -1}); err == nil {
		t.Error("negative damping was accepted")
	}
}

// TestCalibTies: with every score equal, the lowest indices are pruned
// first (row-major within a SparseGPT block, by input within a row for
// Wanda).
func TestCalibTies(t *testing.T) {
	const out, in = 3, 8
	vals := func() []float32 {
		v := make([]float32, out*in)
		for i := range v {
			v[i] = float32(1 - 2*(i%2)) // ±1
		}
		return v
	}
	ones := make([]float64, in)
	for j := range ones {
		ones[j] = 1
	}
	x := &Matrix{Name: "w", Vals: vals(), Rows: out, Cols: in}
	if _, err := Wanda(Method{Sparsity: 0.25, Scope: ScopeRow}, x, ones); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			if pruned := x.Vals[i*in+j] == 0; pruned != (j < 2) {
				t.Errorf("Wanda: (%d,%d) pruned %v", i, j, pruned)
			}
		}
	}
	h := make([]float64, in*in)
	for j := 0; j < in; j++ {
		h[j*in+j] = 1
	}
	x = &Matrix{Name: "w", Vals: vals(), Rows: out, Cols: in}
	if _, err := SparseGPT(Method{Sparsity: 0.25, Scope: ScopeRow}, x, h, SparseGPTOptions{}); err != nil {
		t.Fatal(err)
	}
	// 6 of the block's 24 weights: the first row's first six.
	for i := 0; i < out; i++ {
		for j := 0; j < in; j++ {
			if pruned := x.Vals[i*in+j] == 0; pruned != (i == 0 && j < 6) {
				t.Errorf("SparseGPT: (%d,%d) pruned %v", i, j, pruned)
			}
		}
	}
}
