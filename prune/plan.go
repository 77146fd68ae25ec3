package prune

import (
	"cmp"
	"fmt"
	"math"
	"slices"
)

// Matrix is one tensor to prune, viewed as a logical [Rows, Cols] matrix
// of output rows and input columns. Vals holds the elements in stored
// order: row-major [Rows, Cols], or with Transposed set, [Cols, Rows] (the
// [in, out] layout of GPT-2's Conv1D weights). A 1-D tensor is one row.
type Matrix struct {
	Name       string
	Vals       []float32
	Rows, Cols int
	Transposed bool
}

// index returns the stored index of logical element (r, c).
func (x *Matrix) index(r, c int) int {
	if x.Transposed {
		return c*x.Rows + r
	}
	return r*x.Cols + c
}

func (x *Matrix) checkShape() error {
	if x.Rows < 0 || x.Cols < 0 || x.Rows*x.Cols != len(x.Vals) {
		return fmt.Errorf("%w: tensor %q: %d values for a %d×%d matrix", ErrInvalid, x.Name, len(x.Vals), x.Rows, x.Cols)
	}
	return nil
}

func (x *Matrix) check() error {
	if err := x.checkShape(); err != nil {
		return err
	}
	for i, v := range x.Vals {
		if v != v {
			return fmt.Errorf("%w: tensor %q: NaN weight at flat index %d", ErrInvalid, x.Name, i)
		}
	}
	return nil
}

// Plan says which elements of one tensor are pruned. It is compact — a
// threshold per tensor or row, a pattern, or a set of rows or columns — so
// that it can be computed in one pass and applied in another.
type Plan struct {
	method     Method
	rows, cols int
	transposed bool
	tensor     Threshold   // ScopeTensor, ScopeGlobal
	row        []Threshold // ScopeRow
	lines      []bool      // structured: pruned rows or columns
	// Pruned is the number of elements the plan sets to zero (weights that
	// were already zero and are selected count too).
	Pruned int64
}

// Rows and Cols return the logical shape the plan was made for.
func (p *Plan) Rows() int { return p.rows }

// Cols returns the logical column count.
func (p *Plan) Cols() int { return p.cols }

// Selector makes plans. It holds scratch space; it is not safe for
// concurrent use, so use one per goroutine.
type Selector struct {
	radix   radix
	scratch []uint32
}

// NewPlan computes the plan of m for x. It fails with ErrInvalid when x
// holds a NaN. For ScopeGlobal use a [Global] instead.
func (s *Selector) NewPlan(m Method, x *Matrix) (*Plan, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	p := &Plan{method: m, rows: x.Rows, cols: x.Cols, transposed: x.Transposed}
	if m.Scope == ScopeTensor && !m.IsNM() && m.Structured == StructNone {
		// The NaN check rides on the selection's first pass: only a
		// histogram with keys above +Inf's bucket needs a scan.
		if err := x.checkShape(); err != nil {
			return nil, err
		}
		k := RoundHalfEven(m.Sparsity, int64(len(x.Vals)))
		t, nan, ok := s.radix.sampledSelect(x.Vals, k)
		if nan {
			if err := x.check(); err != nil {
				return nil, err
			}
		}
		if ok {
			p.tensor = t
			p.Pruned = t.Count()
			return p, nil
		}
		s.radix.fillHi(x.Vals)
		if s.radix.mayHoldNaN() {
			if err := x.check(); err != nil {
				return nil, err
			}
		}
		p.tensor = s.radix.selectFromHi(x.Vals, RoundHalfEven(m.Sparsity, int64(len(x.Vals))))
		p.Pruned = p.tensor.Count()
		return p, nil
	}
	if err := x.check(); err != nil {
		return nil, err
	}
	switch {
	case m.IsNM():
		p.Pruned = countNM(x.Rows, x.Cols, m.N, m.M)
	case m.Structured != StructNone:
		p.lines, p.Pruned = structured(m, x)
	case m.Scope == ScopeTensor:
		p.tensor = s.radix.selectK(x.Vals, RoundHalfEven(m.Sparsity, int64(len(x.Vals))))
		p.Pruned = p.tensor.Count()
	case m.Scope == ScopeRow:
		k := RoundHalfEven(m.Sparsity, int64(x.Cols))
		p.row = make([]Threshold, x.Rows)
		row := make([]float32, x.Cols)
		for r := 0; r < x.Rows; r++ {
			logicalRow(x, r, row)
			p.row[r] = s.selectRow(row, k)
			p.Pruned += p.row[r].Count()
		}
	default:
		return nil, fmt.Errorf("%w: scope %q needs a Global selector", ErrInvalid, m.Scope)
	}
	return p, nil
}

// selectRow picks the threshold of one row.
func (s *Selector) selectRow(row []float32, k int64) Threshold {
	if len(row) >= 1<<17 {
		return s.radix.selectK(row, k)
	}
	if cap(s.scratch) < len(row) {
		s.scratch = make([]uint32, len(row))
	}
	return selectSmall(row, k, s.scratch)
}

// logicalRow copies logical row r of x into dst.
func logicalRow(x *Matrix, r int, dst []float32) {
	if !x.Transposed {
		copy(dst, x.Vals[r*x.Cols:(r+1)*x.Cols])
		return
	}
	for c := range dst {
		dst[c] = x.Vals[c*x.Rows+r]
	}
}

// Mask sets pruned[i] for every stored index i of vals that the plan
// prunes, and clears the others. vals must be the values the plan was made
// from (the same tensor); len(pruned) == len(vals).
func (p *Plan) Mask(vals []float32, pruned []bool) {
	x := &Matrix{Vals: vals, Rows: p.rows, Cols: p.cols, Transposed: p.transposed}
	clear(pruned)
	switch {
	case p.method.IsNM():
		maskNM(x, p.method.N, p.method.M, pruned)
	case p.lines != nil:
		for r := 0; r < p.rows; r++ {
			for c := 0; c < p.cols; c++ {
				if p.method.Structured == StructRows && p.lines[r] || p.method.Structured == StructCols && p.lines[c] {
					pruned[x.index(r, c)] = true
				}
			}
		}
	case p.row != nil:
		for r, t := range p.row {
			ties := t.Ties
			for c := 0; c < p.cols; c++ {
				i := x.index(r, c)
				k := key(vals[i])
				if k < t.Key || k == t.Key && ties > 0 {
					if k == t.Key {
						ties--
					}
					pruned[i] = true
				}
			}
		}
	default:
		t := p.tensor
		if t.Count() == 0 {
			return
		}
		// As zeroThreshold: up to the last pruned tie keys <= Key are
		// pruned, after it keys < Key.
		end := 0
		if t.Ties > 0 {
			end = afterTies(vals, t.Key, t.Ties)
		}
		maskBelow(vals[:end], pruned[:end], t.Key+1)
		maskBelow(vals[end:], pruned[end:], t.Key)
	}
}

// maskBelow sets pruned[i] to whether vals[i]'s key is below bound. Keys
// have the sign bit clear, so int32(k)-int32(bound) is negative exactly
// when k < bound.
func maskBelow(vals []float32, pruned []bool, bound uint32) {
	pruned = pruned[:len(vals)]
	for i, v := range vals {
		pruned[i] = int32(key(v))-int32(bound) < 0
	}
}

// KeepsOnlyNonzero reports whether every element the plan keeps is
// nonzero: an unstructured plan (tensor or row scope) whose thresholds are
// all above zero prunes every ±0. Then the elements left, and those with
// any bit set, are both the elements minus Pruned.
func (p *Plan) KeepsOnlyNonzero() bool {
	switch {
	case p.method.IsNM() || p.lines != nil:
		return false
	case p.row != nil:
		for _, t := range p.row {
			if t.Key == 0 {
				return false
			}
		}
		return true
	}
	return p.tensor.Key > 0
}

// countNM returns how many elements N:M prunes in a rows×cols matrix: in every logical row,
// each group of M consecutive columns keeps its N largest magnitudes; a
// final partial group of g < M columns keeps its min(N, g) largest.
func countNM(rows, cols, n, m int) int64 {
	perRow := int64(cols / m * (m - n))
	if rest := cols % m; rest > n {
		perRow += int64(rest - n)
	}
	return perRow * int64(rows)
}

// maskNM marks the elements N:M prunes: per group, the g−N smallest by
// (magnitude, index).
func maskNM(x *Matrix, n, m int, pruned []bool) {
	idx := make([]int, m)
	for r := 0; r < x.Rows; r++ {
		for c0 := 0; c0 < x.Cols; c0 += m {
			g := min(m, x.Cols-c0)
			if g <= n {
				continue
			}
			idx = idx[:g]
			for j := range idx {
				idx[j] = x.index(r, c0+j)
			}
			// Order the group by (key, stored index); prune the first g−n.
			slices.SortFunc(idx, func(a, b int) int {
				if c := cmp.Compare(key(x.Vals[a]), key(x.Vals[b])); c != 0 {
					return c
				}
				return cmp.Compare(a, b)
			})
			for _, i := range idx[:g-n] {
				pruned[i] = true
			}
		}
	}
}

// structured returns the rows (or columns) to prune — the k with the
// smallest L1 norm, ties by lower index — and the number of elements
// removed.
func structured(m Method, x *Matrix) ([]bool, int64) {
	lines, length := x.Rows, x.Cols
	if m.Structured == StructCols {
		lines, length = x.Cols, x.Rows
	}
	norms := make([]float64, lines)
	for r := 0; r < x.Rows; r++ {
		for c := 0; c < x.Cols; c++ {
			v := math.Abs(float64(x.Vals[x.index(r, c)]))
			if m.Structured == StructRows {
				norms[r] += v
			} else {
				norms[c] += v
			}
		}
	}
	order := make([]int, lines)
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(norms[a], norms[b]) })
	k := RoundHalfEven(m.Sparsity, int64(lines))
	pruned := make([]bool, lines)
	for _, i := range order[:k] {
		pruned[i] = true
	}
	return pruned, k * int64(length)
}

// ApplyCount is Apply that also counts what remains: stored, the elements
// whose bits are not all zero (so -0.0 counts), and nonzero, those whose
// value is not zero. For a tensor-scope plan whose threshold is above zero
// the counts follow from the plan, and it is one pass.
func (p *Plan) ApplyCount(vals []float32) (pruned, stored, nonzero int64) {
	if p.row == nil && p.lines == nil && !p.method.IsNM() && p.tensor.Key > 0 {
		// Every element left has a key of at least Key > 0: no zero, no
		// -0, so both counts are what is not pruned.
		zeroThreshold(vals, p.tensor)
		n := p.tensor.Count()
		return n, int64(len(vals)) - n, int64(len(vals)) - n
	}
	pruned = p.Apply(vals)
	for _, v := range vals {
		b := math.Float32bits(v)
		if b != 0 {
			stored++
			if b != 1<<31 {
				nonzero++
			}
		}
	}
	return pruned, stored, nonzero
}

// Apply sets the elements the plan prunes to +0 in place and returns how
// many it set. vals must be the values the plan was made from. Other
// elements, -0 included, are left bit for bit as they were.
func (p *Plan) Apply(vals []float32) int64 {
	if p.row == nil && p.lines == nil && !p.method.IsNM() {
		t := p.tensor
		if t.Count() == 0 {
			return 0
		}
		zeroThreshold(vals, t)
		return t.Count()
	}
	mask := make([]bool, len(vals))
	p.Mask(vals, mask)
	var n int64
	for i, m := range mask {
		if m {
			vals[i] = 0
			n++
		}
	}
	return n
}
