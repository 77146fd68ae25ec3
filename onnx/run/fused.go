package run

import (
	"math"

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
	return []*Tensor{local[c.n.out[0]]}, nil
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
	var mstr []int // the mask's stride along each of x's dimensions (0: broadcast)
	if fz.mask >= 0 {
		m = c.input(fz.mask)
		if m == nil || m.DType != tensor.F32 || len(m.Shape) > r {
			return c.fallback()
		}
		if s, err := broadcastShapes(x.Shape, m.Shape); err != nil || !shapeEq(s, x.Shape) {
			return c.fallback()
		}
		mstr = make([]int, r)
		acc := 1
		for i := len(m.Shape) - 1; i >= 0; i-- {
			if m.Shape[i] != 1 {
				mstr[r-len(m.Shape)+i] = acc
			}
			acc *= m.Shape[i]
		}
	}
	out, err := c.outFor(tensor.F32, x.Shape, 0)
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
			if div {
				for i, v := range src {
					dst[i] = v / k
				}
			} else {
				for i, v := range src {
					dst[i] = v * k
				}
			}
			if m != nil {
				off := 0
				for d, rem := r-2, row; d >= 0; d-- {
					off += rem % x.Shape[d] * mstr[d]
					rem /= x.Shape[d]
				}
				if st := mstr[r-1]; st == 0 {
					mv := m.F32[off]
					for i := range dst {
						dst[i] += mv
					}
				} else {
					for i, mv := range m.F32[off : off+n] {
						dst[i] += mv
					}
				}
			}
			softmax(dst, dst, 0, n, 1, false)
		}
	})
	return []*Tensor{out}, nil
}
