package run

import (
	"fmt"
	"math"

	"github.com/lmsparse/lmsparse/tensor"
)

// Tensor is a value flowing through the graph. Exactly one of F32, I64 and
// Bool holds the elements, row-major, according to the kind of DType:
//
//   - floating point (F32, F16, BF16, F64): F32, with F16 and BF16 values
//     rounded to their precision after every computing operator and F64
//     computed in float32;
//   - integers (I64, I32, I16, I8, U64, U32, U16, U8): I64, with values
//     wrapped to the width of the dtype by Cast;
//   - BOOL: Bool.
//
// A nil or empty Shape is a scalar. Tensors passed to and returned by a
// [Session] must not be modified while the session may still read them:
// operators such as Reshape return views sharing their input's elements.
type Tensor struct {
	DType tensor.DType
	Shape []int
	F32   []float32
	I64   []int64
	Bool  []bool
}

type kind int

const (
	kindNone kind = iota
	kindFloat
	kindInt
	kindBool
)

func kindOf(d tensor.DType) kind {
	switch d {
	case tensor.F32, tensor.F16, tensor.BF16, tensor.F64:
		return kindFloat
	case tensor.I64, tensor.I32, tensor.I16, tensor.I8, tensor.U64, tensor.U32, tensor.U16, tensor.U8:
		return kindInt
	case tensor.BOOL:
		return kindBool
	}
	return kindNone
}

func (t *Tensor) kind() kind { return kindOf(t.DType) }

// Len returns the number of elements.
func (t *Tensor) Len() int {
	switch t.kind() {
	case kindFloat:
		return len(t.F32)
	case kindInt:
		return len(t.I64)
	case kindBool:
		return len(t.Bool)
	}
	return 0
}

// NewF32 returns a float32 tensor of the given shape holding data (not
// copied), which must have exactly the shape's element count.
func NewF32(shape []int, data []float32) (*Tensor, error) {
	return newChecked(&Tensor{DType: tensor.F32, Shape: shape, F32: data})
}

// NewI64 returns an int64 tensor of the given shape holding data.
func NewI64(shape []int, data []int64) (*Tensor, error) {
	return newChecked(&Tensor{DType: tensor.I64, Shape: shape, I64: data})
}

func newChecked(t *Tensor) (*Tensor, error) {
	n, err := elems(t.Shape, math.MaxInt)
	if err != nil {
		return nil, err
	}
	if t.Len() != n {
		return nil, fmt.Errorf("%w: %d elements for shape %v", ErrInput, t.Len(), t.Shape)
	}
	return t, nil
}

// elems returns the element count of shape, failing for negative
// dimensions, overflow and counts over max.
func elems(shape []int, max int64) (int, error) {
	if len(shape) > tensor.MaxDims {
		return 0, fmt.Errorf("%w: %d dimensions (at most %d)", ErrInvalid, len(shape), tensor.MaxDims)
	}
	n := int64(1)
	for _, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("%w: shape %v has a negative dimension", ErrInvalid, shape)
		}
		var err error
		if n, err = tensor.MulInt64(n, int64(d)); err != nil {
			return 0, fmt.Errorf("%w: shape %v: element count overflows", ErrInvalid, shape)
		}
	}
	if n > max {
		return 0, fmt.Errorf("%w: shape %v has %d elements, over the limit of %d", ErrInvalid, shape, n, max)
	}
	return int(n), nil
}

// alloc returns a zeroed tensor of dtype d and shape, checking the
// session's element limit; during a run its elements come from the run's
// arena.
func (e *exec) alloc(d tensor.DType, shape []int) (*Tensor, error) {
	return e.allocFrom(d, shape, true)
}

// allocRaw is alloc without zeroing, for operators that write every
// element.
func (e *exec) allocRaw(d tensor.DType, shape []int) (*Tensor, error) {
	return e.allocFrom(d, shape, false)
}

// allocNew returns a fresh zeroed tensor of dtype d and shape.
func (e *exec) allocNew(d tensor.DType, shape []int) (*Tensor, error) {
	n, err := elems(shape, e.maxElems)
	if err != nil {
		return nil, err
	}
	t := &Tensor{DType: d, Shape: shape}
	switch kindOf(d) {
	case kindFloat:
		t.F32 = make([]float32, n)
	case kindInt:
		t.I64 = make([]int64, n)
	case kindBool:
		t.Bool = make([]bool, n)
	default:
		return nil, fmt.Errorf("%w: dtype %s", ErrUnsupported, d)
	}
	return t, nil
}

// view returns a tensor sharing t's elements with another shape.
func view(t *Tensor, shape []int) *Tensor {
	return &Tensor{DType: t.DType, Shape: shape, F32: t.F32, I64: t.I64, Bool: t.Bool}
}

// ints returns the elements of an integer tensor (shape-like inputs).
func ints(t *Tensor, what string) ([]int64, error) {
	if t == nil {
		return nil, fmt.Errorf("%w: %s is missing", ErrInvalid, what)
	}
	if t.kind() != kindInt {
		return nil, fmt.Errorf("%w: %s has dtype %s, want an integer type", ErrInvalid, what, t.DType)
	}
	return t.I64, nil
}

// scalarInt returns the single element of an integer tensor.
func scalarInt(t *Tensor, what string) (int64, error) {
	v, err := ints(t, what)
	if err != nil {
		return 0, err
	}
	if len(v) != 1 {
		return 0, fmt.Errorf("%w: %s has %d elements, want 1", ErrInvalid, what, len(v))
	}
	return v[0], nil
}

// scalarFloat64 returns the single element of a numeric tensor.
func scalarFloat64(t *Tensor, what string) (float64, error) {
	if t == nil || t.Len() != 1 {
		return 0, fmt.Errorf("%w: %s must have one element", ErrInvalid, what)
	}
	switch t.kind() {
	case kindFloat:
		return float64(t.F32[0]), nil
	case kindInt:
		return float64(t.I64[0]), nil
	}
	return 0, fmt.Errorf("%w: %s has dtype %s", ErrInvalid, what, t.DType)
}

// normAxis maps axis in [-rank, rank) to [0, rank).
func normAxis(axis int64, rank int) (int, error) {
	if axis < -int64(rank) || axis >= int64(rank) {
		return 0, fmt.Errorf("%w: axis %d out of range for rank %d", ErrInvalid, axis, rank)
	}
	if axis < 0 {
		axis += int64(rank)
	}
	return int(axis), nil
}

// toInts converts int64 dimensions to int, rejecting negative ones.
func toInts(v []int64, what string) ([]int, error) {
	out := make([]int, len(v))
	for i, x := range v {
		if x < 0 || x > math.MaxInt32*int64(1<<16) {
			return nil, fmt.Errorf("%w: %s: dimension %d", ErrInvalid, what, x)
		}
		out[i] = int(x)
	}
	return out, nil
}

func shapeEq(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// broadcastShapes returns the numpy broadcast of shapes.
func broadcastShapes(shapes ...[]int) ([]int, error) {
	r := 0
	for _, s := range shapes {
		r = max(r, len(s))
	}
	out := make([]int, r)
	for i := range out {
		out[i] = 1
	}
	for _, s := range shapes {
		off := r - len(s)
		for i, d := range s {
			switch o := out[off+i]; {
			case d == o:
			case o == 1:
				out[off+i] = d
			case d == 1:
			default:
				return nil, fmt.Errorf("%w: shapes %v do not broadcast", ErrInvalid, shapes)
			}
		}
	}
	return out, nil
}

// bplan iterates an output shape with inputs broadcast to it: run calls fn
// for each innermost run of n output elements (in order) with the offset of
// each input at the start of the run and its step along the run (0 or 1).
type bplan struct {
	dims    []int   // coalesced output dimensions
	strides [][]int // per input, per coalesced dimension
}

func planBroadcast(out []int, ins ...[]int) bplan {
	r := len(out)
	// Per input: element strides in the output's rank, 0 where broadcast.
	st := make([][]int, len(ins))
	for k, s := range ins {
		st[k] = make([]int, r)
		off := r - len(s)
		acc := 1
		for i := r - 1; i >= 0; i-- {
			d := 1
			if i >= off {
				d = s[i-off]
			}
			if d != 1 || out[i] == 1 {
				st[k][i] = acc
			}
			acc *= d
		}
	}
	// Coalesce dimensions: drop size-1 ones, merge neighbours where every
	// input is contiguous across both.
	var p bplan
	p.strides = make([][]int, len(ins))
	for i := 0; i < r; i++ {
		if out[i] == 1 {
			continue
		}
		if n := len(p.dims); n > 0 {
			merge := true
			for k := range ins {
				if st[k][i]*out[i] != p.strides[k][n-1] || (st[k][i] == 0) != (p.strides[k][n-1] == 0) {
					merge = false
					break
				}
			}
			if merge {
				p.dims[n-1] *= out[i]
				for k := range ins {
					p.strides[k][n-1] = st[k][i]
				}
				continue
			}
		}
		p.dims = append(p.dims, out[i])
		for k := range ins {
			p.strides[k] = append(p.strides[k], st[k][i])
		}
	}
	return p
}

func (p bplan) run(fn func(offs []int, n int, steps []int)) {
	nin := len(p.strides)
	offs := make([]int, nin)
	steps := make([]int, nin)
	r := len(p.dims)
	if r == 0 {
		fn(offs, 1, steps)
		return
	}
	for k := range steps {
		steps[k] = p.strides[k][r-1]
	}
	inner := p.dims[r-1]
	if inner == 0 {
		return
	}
	for _, d := range p.dims[:r-1] {
		if d == 0 {
			return
		}
	}
	idx := make([]int, r-1)
	for {
		fn(offs, inner, steps)
		// Advance the odometer over the outer dimensions.
		d := r - 2
		for ; d >= 0; d-- {
			idx[d]++
			for k := range offs {
				offs[k] += p.strides[k][d]
			}
			if idx[d] < p.dims[d] {
				break
			}
			for k := range offs {
				offs[k] -= p.strides[k][d] * p.dims[d]
			}
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// mapBinary fills dst (the broadcast output) with f(a, b).
func mapBinary[A, B, C any](dst []C, a []A, b []B, p bplan, f func(A, B) C) {
	o := 0
	p.run(func(offs []int, n int, steps []int) {
		ia, ib, sa, sb := offs[0], offs[1], steps[0], steps[1]
		for k := 0; k < n; k++ {
			dst[o] = f(a[ia], b[ib])
			o++
			ia += sa
			ib += sb
		}
	})
}

// bcastCopy copies src broadcast to dst's shape.
func bcastCopy[T any](dst, src []T, p bplan) {
	o := 0
	p.run(func(offs []int, n int, steps []int) {
		i, s := offs[0], steps[0]
		if s == 1 {
			copy(dst[o:o+n], src[i:i+n])
			o += n
			return
		}
		v := src[i]
		for k := 0; k < n; k++ {
			dst[o+k] = v
		}
		o += n
	})
}
