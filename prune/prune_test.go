package prune

import (
	"cmp"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// randomMatrix returns a matrix whose values repeat a lot (to exercise
// ties), with exact zeros of both signs and infinities.
func randomMatrix(rng *rand.Rand, name string, rows, cols int, transposed bool) *Matrix {
	pool := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1, -1, 2, float32(math.Inf(1)), 1e-30, -1e-30}
	vals := make([]float32, rows*cols)
	for i := range vals {
		if rng.IntN(3) == 0 {
			vals[i] = float32(rng.NormFloat64())
		} else {
			vals[i] = pool[rng.IntN(len(pool))]
		}
	}
	return &Matrix{Name: name, Vals: vals, Rows: rows, Cols: cols, Transposed: transposed}
}

// refSmallest marks the k smallest of the stored indices idx by
// (|value|, index) — the reference for every unstructured rule — using a
// full sort.
func refSmallest(vals []float32, idx []int, k int64, pruned []bool) {
	idx = slices.Clone(idx)
	slices.SortFunc(idx, func(a, b int) int {
		if c := cmp.Compare(math.Abs(float64(vals[a])), math.Abs(float64(vals[b]))); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, i := range idx[:k] {
		pruned[i] = true
	}
}

func rowIndices(x *Matrix, r int) []int {
	idx := make([]int, x.Cols)
	for c := range idx {
		idx[c] = x.index(r, c)
	}
	return idx
}

func reference(m Method, xs []*Matrix) [][]bool {
	out := make([][]bool, len(xs))
	for i, x := range xs {
		out[i] = make([]bool, len(x.Vals))
	}
	switch {
	case m.IsNM():
		for t, x := range xs {
			for r := 0; r < x.Rows; r++ {
				idx := rowIndices(x, r)
				for c0 := 0; c0 < x.Cols; c0 += m.M {
					g := idx[c0:min(c0+m.M, x.Cols)]
					if len(g) > m.N {
						refSmallest(x.Vals, g, int64(len(g)-m.N), out[t])
					}
				}
			}
		}
	case m.Structured != StructNone:
		for t, x := range xs {
			lines := x.Rows
			if m.Structured == StructCols {
				lines = x.Cols
			}
			norms := make([]float64, lines)
			for r := 0; r < x.Rows; r++ {
				for c := 0; c < x.Cols; c++ {
					l := r
					if m.Structured == StructCols {
						l = c
					}
					norms[l] += math.Abs(float64(x.Vals[x.index(r, c)]))
				}
			}
			order := make([]int, lines)
			for i := range order {
				order[i] = i
			}
			sortByKey(order, norms)
			k := int(math.RoundToEven(m.Sparsity * float64(lines)))
			for _, l := range order[:k] {
				for j := 0; j < len(x.Vals)/lines; j++ {
					if m.Structured == StructRows {
						out[t][x.index(l, j)] = true
					} else {
						out[t][x.index(j, l)] = true
					}
				}
			}
		}
	case m.Scope == ScopeTensor:
		for t, x := range xs {
			idx := make([]int, len(x.Vals))
			for i := range idx {
				idx[i] = i
			}
			refSmallest(x.Vals, idx, int64(math.RoundToEven(m.Sparsity*float64(len(idx)))), out[t])
		}
	case m.Scope == ScopeRow:
		for t, x := range xs {
			for r := 0; r < x.Rows; r++ {
				refSmallest(x.Vals, rowIndices(x, r), int64(math.RoundToEven(m.Sparsity*float64(x.Cols))), out[t])
			}
		}
	case m.Scope == ScopeGlobal:
		// Concatenate, sort by (|v|, position), split back.
		type pos struct{ t, i int }
		var all []pos
		for t, x := range xs {
			for i := range x.Vals {
				all = append(all, pos{t, i})
			}
		}
		slices.SortStableFunc(all, func(a, b pos) int {
			return cmp.Compare(math.Abs(float64(xs[a.t].Vals[a.i])), math.Abs(float64(xs[b.t].Vals[b.i])))
		})
		k := int(math.RoundToEven(m.Sparsity * float64(len(all))))
		for _, p := range all[:k] {
			out[p.t][p.i] = true
		}
	}
	return out
}

// sortByKey sorts order by key, ties by index: a simple insertion sort, so
// the reference shares no code with the implementation.
func sortByKey(order []int, key []float64) {
	for i := 1; i < len(order); i++ {
		for j := i; j > 0; j-- {
			a, b := order[j-1], order[j]
			if key[a] > key[b] || key[a] == key[b] && a > b {
				order[j-1], order[j] = b, a
			} else {
				break
			}
		}
	}
}

func planAll(t *testing.T, m Method, xs []*Matrix) []*Plan {
	t.Helper()
	plans := make([]*Plan, len(xs))
	if m.Scope == ScopeGlobal && !m.IsNM() && m.Structured == StructNone {
		var total int64
		for _, x := range xs {
			total += int64(len(x.Vals))
		}
		g, err := NewGlobal(m, total)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range xs {
			if err := g.Observe(x); err != nil {
				t.Fatal(err)
			}
		}
		for _, x := range xs {
			g.Refine(x)
		}
		for i, x := range xs {
			plans[i] = g.Plan(x)
		}
		return plans
	}
	var s Selector
	for i, x := range xs {
		p, err := s.NewPlan(m, x)
		if err != nil {
			t.Fatal(err)
		}
		plans[i] = p
	}
	return plans
}

// TestExactAgainstSort compares every mode with the sort-based reference on
// random tensors full of ties.
func TestExactAgainstSort(t *testing.T) {
	seed := uint64(20261129)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	methods := []Method{
		{Sparsity: 0.5, Scope: ScopeTensor}, {Sparsity: 0.3, Scope: ScopeTensor}, {Sparsity: 0.97, Scope: ScopeTensor}, {Sparsity: 0, Scope: ScopeTensor},
		{Sparsity: 0.5, Scope: ScopeRow}, {Sparsity: 0.71, Scope: ScopeRow},
		{Sparsity: 0.5, Scope: ScopeGlobal}, {Sparsity: 0.13, Scope: ScopeGlobal},
		{N: 2, M: 4}, {N: 1, M: 3}, {N: 0, M: 2}, {N: 4, M: 4}, {N: 3, M: 8},
		{Sparsity: 0.5, Structured: StructRows}, {Sparsity: 0.25, Structured: StructCols},
	}
	for trial := 0; trial < 46; trial++ {
		var xs []*Matrix
		// The last trials are large enough for the vector kernels' blocks
		// (16 lanes, 4096-element blocks).
		maxRows, maxCols := 13, 37
		if trial >= 40 {
			maxRows, maxCols = 100, 97
		}
		for j := 0; j < 1+rng.IntN(4); j++ {
			xs = append(xs, randomMatrix(rng, "w", 1+rng.IntN(maxRows), 1+rng.IntN(maxCols), rng.IntN(2) == 0))
		}
		for _, m := range methods {
			plans := planAll(t, m, xs)
			want := reference(m, xs)
			for i, x := range xs {
				got := make([]bool, len(x.Vals))
				plans[i].Mask(x.Vals, got)
				var n int64
				for j := range got {
					if got[j] != want[i][j] {
						t.Fatalf("trial %d, %s, tensor %d (%dx%d transposed=%v): index %d pruned=%v, reference %v",
							trial, m, i, x.Rows, x.Cols, x.Transposed, j, got[j], want[i][j])
					}
					if got[j] {
						n++
					}
				}
				if n != plans[i].Pruned {
					t.Fatalf("trial %d, %s: Pruned = %d, mask prunes %d", trial, m, plans[i].Pruned, n)
				}
				applied := slices.Clone(x.Vals)
				np, st, nz := plans[i].ApplyCount(applied)
				var wantSt, wantNZ int64
				for j, v := range applied {
					switch {
					case got[j] && math.Float32bits(v) != 0:
						t.Fatalf("trial %d, %s: ApplyCount left pruned index %d = %v", trial, m, j, v)
					case !got[j] && math.Float32bits(v) != math.Float32bits(x.Vals[j]):
						t.Fatalf("trial %d, %s: ApplyCount changed kept index %d", trial, m, j)
					}
					if math.Float32bits(v) != 0 {
						wantSt++
					}
					if v != 0 {
						wantNZ++
					}
				}
				if plans[i].KeepsOnlyNonzero() && (wantSt != int64(len(x.Vals))-n || wantNZ != wantSt) {
					t.Fatalf("trial %d, %s: KeepsOnlyNonzero, but %d of %d kept are stored and %d nonzero", trial, m, wantSt, int64(len(x.Vals))-n, wantNZ)
				}
				if np != n || st != wantSt || nz != wantNZ {
					t.Fatalf("trial %d, %s: ApplyCount = %d, %d, %d; want %d, %d, %d", trial, m, np, st, nz, n, wantSt, wantNZ)
				}
				switch {
				case m.Scope == ScopeTensor && !m.IsNM() && m.Structured == StructNone:
					if k := RoundHalfEven(m.Sparsity, int64(len(x.Vals))); n != k {
						t.Fatalf("tensor scope pruned %d, want exactly %d", n, k)
					}
				case m.Scope == ScopeRow:
					if k := RoundHalfEven(m.Sparsity, int64(x.Cols)) * int64(x.Rows); n != k {
						t.Fatalf("row scope pruned %d, want exactly %d", n, k)
					}
				}
			}
		}
	}
}

// TestLargeRowsUseRadix covers rows long enough for the radix path.
func TestLargeRowsUseRadix(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	x := randomMatrix(rng, "big", 2, 1<<17+3, false)
	m := Method{Sparsity: 0.4, Scope: ScopeRow}
	p := planAll(t, m, []*Matrix{x})[0]
	got := make([]bool, len(x.Vals))
	p.Mask(x.Vals, got)
	want := reference(m, []*Matrix{x})[0]
	if !slices.Equal(got, want) {
		t.Fatal("radix row selection differs from the reference")
	}
}

func TestRoundHalfEven(t *testing.T) {
	for _, tt := range []struct {
		s    float64
		n, k int64
	}{{0.5, 5, 2}, {0.5, 7, 4}, {0.5, 4, 2}, {0.3, 10, 3}, {0, 9, 0}, {0.999, 3, 3}, {0.25, 2, 0}, {0.75, 2, 2}} {
		if got := RoundHalfEven(tt.s, tt.n); got != tt.k {
			t.Errorf("RoundHalfEven(%g, %d) = %d, want %d", tt.s, tt.n, got, tt.k)
		}
	}
}

func TestInvalid(t *testing.T) {
	for _, m := range []Method{
		{Sparsity: 1, Scope: ScopeTensor}, {Sparsity: -0.1, Scope: ScopeTensor}, {Sparsity: math.NaN(), Scope: ScopeTensor},
		{N: 3, M: 2}, {N: 1, M: 0}, {N: -1, M: 4}, {Sparsity: 0.5, Scope: "layer"}, {Sparsity: 0.5, Structured: "diag"},
		{N: 2, M: 4, Structured: StructRows},
	} {
		if err := m.Validate(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: Validate() = %v, want ErrInvalid", m, err)
		}
	}
	x := &Matrix{Name: "model.layers.0.mlp.up_proj.weight", Vals: []float32{1, float32(math.NaN()), 2, 3}, Rows: 2, Cols: 2}
	var s Selector
	_, err := s.NewPlan(Method{Sparsity: 0.5, Scope: ScopeTensor}, x)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), x.Name) || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NaN: err = %v", err)
	}
	g, _ := NewGlobal(Method{Sparsity: 0.5, Scope: ScopeGlobal}, 4)
	if err := g.Observe(x); !errors.Is(err, ErrInvalid) {
		t.Errorf("global NaN: err = %v", err)
	}
}

// BenchmarkSelect compares the radix selection (and its sampled form) with
// a full sort on 10M weights (the acceptance benchmark of issue 3).
func BenchmarkSelect(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 2))
	vals := make([]float32, 10_000_000)
	for i := range vals {
		vals[i] = float32(rng.NormFloat64() * 0.02)
	}
	k := int64(len(vals) / 2)
	b.Run("radix", func(b *testing.B) {
		var r radix
		for b.Loop() {
			r.selectK(vals, k)
		}
	})
	b.Run("sampled", func(b *testing.B) {
		var r radix
		for b.Loop() {
			if _, _, ok := r.sampledSelect(vals, k); !ok {
				b.Skip("sampledSelect declined (no AVX-512)")
			}
		}
	})
	b.Run("quickselect", func(b *testing.B) {
		scratch := make([]uint32, len(vals))
		for b.Loop() {
			selectSmall(vals, k, scratch)
		}
	})
	b.Run("fullsort", func(b *testing.B) {
		keys := make([]uint32, len(vals))
		for b.Loop() {
			for i, v := range vals {
				keys[i] = key(v)
			}
			slices.Sort(keys)
			_ = keys[k-1]
		}
	})
}

// TestApplyMatchesMask: Apply zeroes exactly the masked elements and
// leaves every other bit pattern (including -0) alone.
func TestApplyMatchesMask(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 12))
	for _, m := range []Method{{Sparsity: 0.5, Scope: ScopeTensor}, {Sparsity: 0.4, Scope: ScopeRow}, {N: 2, M: 4}, {Sparsity: 0.5, Structured: StructCols}} {
		x := randomMatrix(rng, "w", 7, 33, true)
		var s Selector
		p, err := s.NewPlan(m, x)
		if err != nil {
			t.Fatal(err)
		}
		mask := make([]bool, len(x.Vals))
		p.Mask(x.Vals, mask)
		got := slices.Clone(x.Vals)
		if n := p.Apply(got); n != p.Pruned {
			t.Errorf("%s: Apply pruned %d, plan says %d", m, n, p.Pruned)
		}
		got2 := slices.Clone(x.Vals)
		n, st, nz := p.ApplyCount(got2)
		var wantSt, wantNZ int64
		for _, v := range got {
			if math.Float32bits(v) != 0 {
				wantSt++
			}
			if v != 0 {
				wantNZ++
			}
		}
		if n != p.Pruned || st != wantSt || nz != wantNZ || !slices.Equal(bitsOf(got), bitsOf(got2)) {
			t.Errorf("%s: ApplyCount = %d, %d, %d; want %d, %d, %d and Apply's values", m, n, st, nz, p.Pruned, wantSt, wantNZ)
		}
		for i := range got {
			want := math.Float32bits(x.Vals[i])
			if mask[i] {
				want = 0
			}
			if math.Float32bits(got[i]) != want {
				t.Fatalf("%s: element %d is %08x, want %08x", m, i, math.Float32bits(got[i]), want)
			}
		}
	}
}

func bitsOf(v []float32) []uint32 {
	out := make([]uint32, len(v))
	for i, x := range v {
		out[i] = math.Float32bits(x)
	}
	return out
}
