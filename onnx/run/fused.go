package run

import (
	"math"
	"slices"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// The fused kernels compute what their patterns' nodes compute, operation
// by operation in float32 with the same rounding (the float64 sums of
// ReduceMean and Softmax, the float64 transcendental functions rounded
// once), so fused and unfused results agree to the last bit except for
// MatMul+Add with k above the GEMM's block depth, whose bias joins the
// first block's sum instead of the whole sum. Operands the kernel does not
// handle (not float32, shapes the load-time checks could not see) run the
// replaced nodes instead: fallback.

// fallback runs the nodes a fused node replaced, one by one.
func (c *call) fallback() ([]*Tensor, error) {
	fz := c.n.fused
	local := make(map[int]*Tensor, len(fz.sub)+len(c.in))
	for j, i := range c.n.in {
		if i >= 0 {
			local[i] = c.in[j]
		}
	}
	for _, sn := range fz.sub {
		in := make([]*Tensor, len(sn.in))
		for j, i := range sn.in {
			if i >= 0 {
				in[j] = local[i]
			}
		}
		out, err := runCall(&call{e: c.e, n: sn, in: in})
		if err != nil {
			return nil, err
		}
		for k, i := range sn.out {
			if i >= 0 && k < len(out) {
				local[i] = out[k]
			}
		}
	}
	outs := make([]*Tensor, len(c.n.out))
	for k, i := range c.n.out {
		if i >= 0 {
			outs[k] = local[i]
		}
	}
	return outs, nil
}

// floatX returns input 0 when it is a float32 tensor of rank ≥ rank.
func (c *call) floatX(rank int) *Tensor {
	x := c.input(0)
	if x == nil || x.DType != tensor.F32 || len(x.Shape) < max(rank, 1) {
		return nil
	}
	return x
}

// parallelRows runs fn over rows [0, rows) on the session's threads when
// the work (elems) is large enough to pay for them.
func (c *call) parallelRows(rows, elems int, fn func(lo, hi int)) {
	threads := c.e.threads
	if elems < 1<<14 {
		threads = 1
	}
	blas.ParallelRows(threads, rows, 1, fn)
}

func kMatMulAdd(c *call) ([]*Tensor, error) {
	fz, mm := c.n.fused, c.n.fused.sub[0]
	x := c.floatX(fz.rankLo)
	if x == nil || x.Shape[len(x.Shape)-1] != mm.bK {
		return c.fallback()
	}
	shape := append([]int(nil), x.Shape...)
	shape[len(shape)-1] = mm.bN
	out, err := c.e.allocRaw(tensor.F32, shape)
	if err != nil {
		return nil, err
	}
	n := mm.bN
	rows := len(out.F32) / max(n, 1)
	if mm.sb != nil {
		// The sparse kernel writes the product; the bias is added after,
		// as the unfused Add adds it.
		c.e.gemmW(out.F32, x.F32, mm, rows)
		for r := 0; r < rows; r++ {
			o := out.F32[r*n : (r+1)*n]
			for j, b := range fz.gamma {
				o[j] += b
			}
		}
		return []*Tensor{out}, nil
	}
	for r := 0; r < rows; r++ {
		copy(out.F32[r*n:(r+1)*n], fz.gamma)
	}
	c.e.gemmB(out.F32, x.F32, mm.bp, rows, n, mm.bK, true)
	return []*Tensor{out}, nil
}

func kNorm(c *call) ([]*Tensor, error) {
	fz := c.n.fused
	x := c.floatX(fz.rankLo)
	if x == nil {
		return c.fallback()
	}
	d := x.Shape[len(x.Shape)-1]
	if d == 0 || (fz.gamma != nil && len(fz.gamma) != d) {
		return c.fallback()
	}
	out, err := c.outFor(tensor.F32, x.Shape, 0)
	if err != nil {
		return nil, err
	}
	eps, g, b := fz.k[0], fz.gamma, fz.beta
	ln := fz.kind == FuseLayerNorm
	c.parallelRows(len(x.F32)/d, len(x.F32), func(lo, hi int) {
		for r := lo; r < hi; r++ {
			src, dst := x.F32[r*d:(r+1)*d], out.F32[r*d:(r+1)*d]
			var mu float32
			if ln {
				var s float64
				for _, v := range src {
					s += float64(v)
				}
				mu = float32(s / float64(d))
			}
			var q float64
			for _, v := range src {
				if ln {
					v -= mu
				}
				q += float64(v * v)
			}
			root := float32(math.Sqrt(float64(float32(q/float64(d)) + eps)))
			inv := 1 / root
			for i, v := range src {
				if ln {
					v -= mu
				}
				if fz.form == 0 {
					v /= root
				} else {
					v *= inv
				}
				if g != nil {
					v *= g[i]
				}
				if b != nil {
					v += b[i]
				}
				dst[i] = v
			}
		}
	})
	return []*Tensor{out}, nil
}

// elementwise applies f to every element of input 0 (float32), in place
// when input 0 dies here, on the session's threads.
func (c *call) elementwise(f func(float32) float32) ([]*Tensor, error) {
	x := c.floatX(0)
	if x == nil {
		return c.fallback()
	}
	out, err := c.outFor(tensor.F32, x.Shape, 0)
	if err != nil {
		return nil, err
	}
	const chunk = 4096
	n := len(x.F32)
	c.parallelRows((n+chunk-1)/chunk, n, func(lo, hi int) {
		for i := lo * chunk; i < min(hi*chunk, n); i++ {
			out.F32[i] = f(x.F32[i])
		}
	})
	return []*Tensor{out}, nil
}

// geluTail finishes a GELU from x and e = erf(…) or tanh(…): form 0 is
// (x · (e + 1)) · 0.5, form 1 (x · 0.5) · (e + 1).
func geluTail(form int, x, e float32) float32 {
	if form == 0 {
		return (x * (e + 1)) * 0.5
	}
	return (x * 0.5) * (e + 1)
}

func kGelu(c *call) ([]*Tensor, error) {
	fz := c.n.fused
	k, div, form := fz.k[0], fz.form&1 == 1, fz.form>>1
	return c.elementwise(func(x float32) float32 {
		t := x * k
		if div {
			t = x / k
		}
		return geluTail(form, x, float32(math.Erf(float64(t))))
	})
}

func kGeluTanh(c *call) ([]*Tensor, error) {
	fz := c.n.fused
	c1, c2, form := fz.k[0], fz.k[1], fz.form
	return c.elementwise(func(x float32) float32 {
		x3 := float32(float64(x) * float64(x) * float64(x))
		s := (x + x3*c2) * c1
		return geluTail(form, x, float32(math.Tanh(float64(s))))
	})
}

func kSiLU(c *call) ([]*Tensor, error) {
	return c.elementwise(func(x float32) float32 {
		return x * float32(1/(1+math.Exp(-float64(x))))
	})
}

func kScaleSoftmax(c *call) ([]*Tensor, error) {
	fz := c.n.fused
	x := c.floatX(1)
	if x == nil {
		return c.fallback()
	}
	r := len(x.Shape)
	n := x.Shape[r-1]
	var m *Tensor
	var mstr []int
	if fz.mask >= 0 {
		var ok bool
		if m = c.input(fz.mask); m == nil {
			return c.fallback()
		}
		if mstr, ok = maskStrides(m, x.Shape); !ok {
			return c.fallback()
		}
	}
	var out *Tensor
	var err error
	if fz.mask == 0 { // the mask is the scores themselves: not in place
		out, err = c.e.allocRaw(tensor.F32, x.Shape)
	} else {
		out, err = c.outFor(tensor.F32, x.Shape, 0)
	}
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return []*Tensor{out}, nil
	}
	k, div := fz.k[0], fz.form == 0
	c.parallelRows(len(x.F32)/n, len(x.F32), func(lo, hi int) {
		for row := lo; row < hi; row++ {
			src, dst := x.F32[row*n:(row+1)*n], out.F32[row*n:(row+1)*n]
			if m != nil {
				scaleMaskSoftmax(dst, src, k, div, m.F32, maskRow(x.Shape, mstr, row), mstr[r-1])
			} else {
				scaleMaskSoftmax(dst, src, k, div, nil, 0, 0)
			}
		}
	})
	return []*Tensor{out}, nil
}

// maskStrides checks that m, a float32 tensor, broadcasts to shape and
// returns its stride along each of shape's dimensions (0 where it is
// broadcast).
func maskStrides(m *Tensor, shape []int) ([]int, bool) {
	r := len(shape)
	if m.DType != tensor.F32 || len(m.Shape) > r {
		return nil, false
	}
	if s, err := broadcastShapes(shape, m.Shape); err != nil || !shapeEq(s, shape) {
		return nil, false
	}
	st := make([]int, r)
	acc := 1
	for i := len(m.Shape) - 1; i >= 0; i-- {
		if m.Shape[i] != 1 {
			st[r-len(m.Shape)+i] = acc
		}
		acc *= m.Shape[i]
	}
	return st, true
}

// maskRow returns the offset in a mask of strides st of row row of a
// tensor of shape (rows: every dimension but the last).
func maskRow(shape, st []int, row int) int {
	off := 0
	for d := len(shape) - 2; d >= 0; d-- {
		off += row % shape[d] * st[d]
		row /= shape[d]
	}
	return off
}

// scaleMaskSoftmax sets dst to the softmax of src / k (div) or src · k,
// plus the mask row at m[off] (step st; m nil: none): the Div or Mul, the
// Add and the Softmax nodes' operations, the first two and the row's
// maximum in one pass.
func scaleMaskSoftmax(dst, src []float32, k float32, div bool, m []float32, off, st int) {
	dst = dst[:len(src)]
	mx := float32(math.Inf(-1))
	n8, nan := 0, false
	if vecExp && (m == nil || st == 1) {
		var mv []float32
		if m != nil {
			mv = m[off : off+len(src)]
		}
		n8, mx, nan = scaleMaskVec(dst, src, k, div, mv)
		if nan {
			mx = float32(math.NaN())
		}
	}
	for i := n8; i < len(src); i++ {
		v := src[i]
		if div {
			v /= k
		} else {
			v *= k
		}
		if m != nil {
			v += m[off+i*st]
		}
		dst[i] = v
		if v > mx || v != v {
			mx = v
		}
	}
	softmaxShifted(dst, mx)
}

func finite(v []float32) bool {
	for _, x := range v {
		if x-x != 0 { // ±Inf and NaN
			return false
		}
	}
	return true
}

// kAttention computes MatMul(ScaleSoftmax(MatMul(Q, Kᵀ)), V) for Q
// [..., T, hd], Kᵀ [..., hd, S] and V [..., S, dv] of the same batch
// dimensions: per batch and block of query rows, the scores, their scaled
// and masked softmax and the product by V, with K and V packed once per
// batch. Where the mask is −∞ from a column to the end of a row, those
// columns are skipped: their probability is exactly 0 (the operands are
// checked finite first, so no score there could be NaN or +∞). Scores
// and probabilities are computed as the unfused nodes compute them; the
// product by V sums only up to the last column a block of rows uses, so
// with more than the GEMM's block depth of columns its rounding may
// differ from the unfused product's in the last bits.
func kAttention(c *call) ([]*Tensor, error) {
	fz := c.n.fused
	q, kt, v := c.input(0), c.input(fz.kt), c.input(fz.v)
	if q == nil || kt == nil || v == nil || q.DType != tensor.F32 || kt.DType != tensor.F32 || v.DType != tensor.F32 {
		return c.fallback()
	}
	r := len(q.Shape)
	if r < 2 || len(kt.Shape) != r || len(v.Shape) != r || !shapeEq(q.Shape[:r-2], kt.Shape[:r-2]) || !shapeEq(q.Shape[:r-2], v.Shape[:r-2]) {
		return c.fallback()
	}
	T, hd, S, dv := q.Shape[r-2], q.Shape[r-1], kt.Shape[r-1], v.Shape[r-1]
	if kt.Shape[r-2] != hd || v.Shape[r-2] != S || T == 0 || hd == 0 || S == 0 || dv == 0 {
		return c.fallback()
	}
	nb := len(q.F32) / (T * hd)
	scores := append(append([]int(nil), q.Shape[:r-2]...), T, S)
	var m *Tensor
	var mstr []int
	if fz.mask >= 0 {
		var ok bool
		if m = c.input(fz.mask); m == nil {
			return c.fallback()
		}
		if mstr, ok = maskStrides(m, scores); !ok {
			return c.fallback()
		}
	}
	if !finite(q.F32) || !finite(kt.F32) || !finite(v.F32) {
		return c.fallback()
	}
	// Row lengths: up to the last column whose mask is not −∞. A mask
	// shared by the batches (a causal mask) is scanned once.
	rows := nb * T
	lens := c.e.intScratch(rows)
	distinct := rows
	if m == nil || !slices.ContainsFunc(mstr[:r-2], func(s int) bool { return s != 0 }) {
		distinct = T
	}
	for row := range lens[:distinct] {
		L := S
		if m != nil {
			off, st := maskRow(scores, mstr, row), mstr[r-1]
			for L > 0 && math.IsInf(float64(m.F32[off+(L-1)*st]), -1) {
				L--
			}
		}
		if L == 0 {
			return c.fallback() // a fully masked row: NaN, as the nodes compute it
		}
		lens[row] = int64(L)
	}
	for row := distinct; row < rows; row++ {
		lens[row] = lens[row%T]
	}
	shape := append(append([]int(nil), q.Shape[:r-1]...), dv)
	out, err := c.e.allocRaw(tensor.F32, shape)
	if err != nil {
		return nil, err
	}
	mr, nr := kernel.MR(), kernel.NR()
	// The product by V as Oᵀ = Vᵀ·Pᵀ when V is narrower than a tile's
	// columns (head dimensions below NR): V fills tile rows instead, and
	// each output element is the same sum (a·b = b·a, same order).
	vt := dv < nr
	vr := nr
	if vt {
		vr = mr
	}
	kLen, vLen := packedLen(S, hd, nr), packedLen(dv, S, vr)
	kbuf, vbuf := c.e.scratch(nb*kLen), c.e.scratch(nb*vLen)
	kps, vps := make([]blas.Packed, nb), make([]blas.Packed, nb)
	threads := c.e.threads
	blas.ParallelFor(threads, nb, func(_, b int) {
		packInto(&kps[b], kbuf[b*kLen:(b+1)*kLen], kt.F32[b*hd*S:], S, hd, 1, S, nr, 1)
		packInto(&vps[b], vbuf[b*vLen:(b+1)*vLen], v.F32[b*S*dv:], dv, S, 1, dv, vr, 1)
	})
	const rb = 64 // query rows per block
	blocks := (T + rb - 1) / rb
	workers := min(threads, nb*blocks)
	type work struct {
		q, s, p, o []float32
		ap, pp     blas.Packed
	}
	ws := make([]work, workers)
	pr := mr
	if vt {
		pr = nr
	}
	for w := range ws {
		ws[w] = work{q: c.e.scratch(packedLen(rb, hd, mr)), s: c.e.scratch(rb * S), p: c.e.scratch(packedLen(rb, S, pr))}
		if vt {
			ws[w].o = c.e.scratch(dv * rb)
		}
	}
	k, div := fz.soft.k[0], fz.soft.form == 0
	blas.ParallelFor(workers, nb*blocks, func(w, u int) {
		b, r0 := u/blocks, u%blocks*rb
		n := min(r0+rb, T) - r0
		base := b*T + r0
		L := 0
		for _, l := range lens[base : base+n] {
			L = max(L, int(l))
		}
		ap, pp := &ws[w].ap, &ws[w].pp
		packInto(ap, ws[w].q, q.F32[base*hd:], n, hd, hd, 1, mr, 1)
		sc := ws[w].s[:n*L]
		kernel.Gemm(sc, L, ap, &kps[b], n, L, hd, 1)
		for i := 0; i < n; i++ {
			row := sc[i*L : (i+1)*L]
			li := int(lens[base+i])
			if m != nil {
				scaleMaskSoftmax(row[:li], row[:li], k, div, m.F32, maskRow(scores, mstr, base+i), mstr[r-1])
			} else {
				scaleMaskSoftmax(row[:li], row[:li], k, div, nil, 0, 0)
			}
			clear(row[li:])
		}
		packInto(pp, ws[w].p, sc, n, L, L, 1, pr, 1)
		if !vt {
			kernel.Gemm(out.F32[base*dv:], dv, pp, &vps[b], n, dv, L, 1)
			return
		}
		ot := ws[w].o[:dv*n]
		kernel.Gemm(ot, n, &vps[b], pp, dv, n, L, 1)
		o := out.F32[base*dv : (base+n)*dv]
		for d := 0; d < dv; d++ {
			for i, x := range ot[d*n : (d+1)*n] {
				o[i*dv+d] = x
			}
		}
	})
	return []*Tensor{out}, nil
}

// Blocking of kQKV's tiles: the GEMM's default job size (16 panels of
// rows and of columns).
const qkvPanels = 16

// kQKV computes the products of a QKV group: x packed once as the A
// operand, then one parallel loop over every dense member's blocks of rows
// and columns, each a single-threaded GEMM (GemmAdd onto the bias rows for a
// MatMul+Add member) of x's rows by the member's own packed weight, into
// the member's output. The GEMM's summation order is fixed by K alone, so
// every element is summed exactly as the separate product (or fused
// MatMul+Add) computes it: the results are the same to the bit.
func kQKV(c *call) ([]*Tensor, error) {
	fz := c.n.fused
	x := c.floatX(fz.rankLo)
	depth := product(fz.sub[0]).bK
	if x == nil || x.Shape[len(x.Shape)-1] != depth {
		return c.fallback()
	}
	rows := 1
	for _, d := range x.Shape[:len(x.Shape)-1] {
		rows *= d
	}
	outs := make([]*Tensor, len(fz.sub))
	for j, sn := range fz.sub {
		mm := product(sn)
		shape := append([]int(nil), x.Shape...)
		shape[len(shape)-1] = mm.bN
		out, err := c.e.allocRaw(tensor.F32, shape)
		if err != nil {
			return nil, err
		}
		if sn.fused != nil && (mm.sb == nil || depth == 0) { // (a sparse member with depth adds its bias after)
			n := mm.bN
			for r := 0; r < rows; r++ {
				copy(out.F32[r*n:(r+1)*n], sn.fused.gamma)
			}
		} else if depth == 0 {
			clear(out.F32)
		}
		outs[j] = out
	}
	if rows == 0 || depth == 0 {
		return outs, nil
	}
	mr, nr := kernel.MR(), kernel.NR()
	mc, nc := qkvPanels*mr, qkvPanels*nr
	mBlocks := (rows + mc - 1) / mc
	jobs := 0
	blocks := func(sn *node) int {
		if mm := product(sn); mm.bp != nil {
			return mBlocks * ((mm.bN + nc - 1) / nc)
		}
		return 0 // a sparse member: below
	}
	for _, sn := range fz.sub {
		jobs += blocks(sn)
	}
	var ap blas.Packed
	if jobs > 0 {
		packInto(&ap, c.e.scratch(packedLen(rows, depth, mr)), x.F32, rows, depth, depth, 1, mr, c.e.threads)
	}
	blas.ParallelFor(c.e.threads, jobs, func(_, job int) {
		j := 0
		for ; ; j++ {
			nb := blocks(fz.sub[j])
			if job < nb {
				break
			}
			job -= nb
		}
		mm := product(fz.sub[j])
		n := mm.bN
		i0, j0 := job%mBlocks*mc, job/mBlocks*nc
		m, w := min(mc, rows-i0), min(nc, n-j0)
		a := blas.Packed{Data: ap.Data[i0/mr*depth*mr:], Rows: m, K: depth, R: mr}
		b := blas.Packed{Data: mm.bp.Data[j0/nr*depth*nr:], Rows: w, K: depth, R: nr}
		cc := outs[j].F32[i0*n+j0:]
		if fz.sub[j].fused != nil {
			kernel.GemmAdd(cc, n, &a, &b, m, w, depth, 1)
		} else {
			kernel.Gemm(cc, n, &a, &b, m, w, depth, 1)
		}
	})
	// Members kept sparse: x packed once more, in the sparse kernel's
	// panels; each product by the sparse kernel on every thread, its bias
	// added after (as the sparse MatMul+Add does).
	var sp blas.Packed
	for j, sn := range fz.sub {
		mm := product(sn)
		if mm.sb == nil {
			continue
		}
		if sp.Data == nil {
			packInto(&sp, c.e.scratch(packedLen(rows, depth, blas.SpanelRows)), x.F32, rows, depth, depth, 1, blas.SpanelRows, c.e.threads)
		}
		n := mm.bN
		kernel.SpMMTPacked(outs[j].F32, n, &sp, mm.sb, rows, c.e.threads)
		if sn.fused != nil {
			for r := 0; r < rows; r++ {
				o := outs[j].F32[r*n : (r+1)*n]
				for i, b := range sn.fused.gamma {
					o[i] += b
				}
			}
		}
	}
	return outs, nil
}
