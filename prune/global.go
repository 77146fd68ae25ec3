package prune

import "fmt"

// Global chooses one threshold over several tensors, as torch's
// global_unstructured does: k = round-half-even(S·N) elements with the
// smallest magnitude over all N elements of all targets, ties broken by
// position in the concatenation of the targets in the order they are
// observed. Each tensor then ends with its own sparsity.
//
// Use it in three passes over the targets, always in the same order:
// Observe each (histogram of high key bits), Refine each (low bits inside
// the chosen bucket), then Plan each (tie allocation).
type Global struct {
	method      Method
	k, total    int64
	radix       radix
	bucket      uint32
	belowBucket int64
	thr         Threshold
	ties        int64 // ties not yet allocated
	pass        int
}

// NewGlobal prepares a global selection of m (Scope must be ScopeGlobal)
// over targets holding total elements.
func NewGlobal(m Method, total int64) (*Global, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	if m.Scope != ScopeGlobal || m.IsNM() || m.Structured != StructNone {
		return nil, fmt.Errorf("%w: NewGlobal needs unstructured global scope", ErrInvalid)
	}
	return &Global{method: m, total: total, k: RoundHalfEven(m.Sparsity, total)}, nil
}

// K returns the number of elements the selection prunes in all.
func (g *Global) K() int64 { return g.k }

// Observe is the first pass: it checks x for NaN and counts its keys.
func (g *Global) Observe(x *Matrix) error {
	if g.pass != 0 {
		return fmt.Errorf("%w: Observe after Refine", ErrInvalid)
	}
	if err := x.check(); err != nil {
		return err
	}
	for _, v := range x.Vals {
		g.radix.hi[key(v)>>16]++
	}
	return nil
}

// Refine is the second pass.
func (g *Global) Refine(x *Matrix) {
	if g.pass == 0 {
		g.pass = 1
		if g.k > 0 {
			g.bucket, g.belowBucket = bucket(&g.radix.hi, g.k)
		}
	}
	if g.k == 0 {
		return
	}
	for _, v := range x.Vals {
		if kv := key(v); kv>>16 == g.bucket {
			g.radix.lo[kv&0xffff]++
		}
	}
}

// Threshold returns the global threshold (valid after the Refine pass).
func (g *Global) Threshold() Threshold {
	g.finish()
	return g.thr
}

func (g *Global) finish() {
	if g.pass >= 2 {
		return
	}
	g.pass = 2
	if g.k == 0 {
		return
	}
	l, below := bucket(&g.radix.lo, g.k-g.belowBucket)
	g.thr = Threshold{Key: g.bucket<<16 | l, Below: g.belowBucket + below, Ties: g.k - g.belowBucket - below}
	g.ties = g.thr.Ties
}

// Plan is the third pass: it returns the plan of x, giving it the ties
// (elements exactly at the threshold) not taken by earlier tensors.
func (g *Global) Plan(x *Matrix) *Plan {
	g.finish()
	p := &Plan{method: g.method, rows: x.Rows, cols: x.Cols, transposed: x.Transposed}
	if g.k == 0 {
		return p
	}
	var below, eq int64
	for _, v := range x.Vals {
		switch k := key(v); {
		case k < g.thr.Key:
			below++
		case k == g.thr.Key:
			eq++
		}
	}
	ties := min(eq, g.ties)
	g.ties -= ties
	p.tensor = Threshold{Key: g.thr.Key, Below: below, Ties: ties}
	p.Pruned = below + ties
	return p
}
