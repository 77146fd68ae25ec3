package run

import (
	"fmt"
	"slices"
)

// opScatterND implements ScatterND: a copy of data with the slices that
// indices [..., k] address replaced by (or, with reduction add, mul, max
// or min from opset 16/18, combined with) updates.
func opScatterND(c *call) ([]*Tensor, error) {
	data, err := c.need(0)
	if err != nil {
		return nil, err
	}
	it, err := c.need(1)
	if err != nil {
		return nil, err
	}
	upd, err := c.need(2)
	if err != nil {
		return nil, err
	}
	idx, err := ints(it, "ScatterND indices")
	if err != nil {
		return nil, err
	}
	if err := sameKind(data, upd); err != nil {
		return nil, err
	}
	if len(it.Shape) == 0 {
		return nil, fmt.Errorf("%w: ScatterND indices are a scalar", ErrInvalid)
	}
	k := it.Shape[len(it.Shape)-1]
	r := len(data.Shape)
	if k > r {
		return nil, fmt.Errorf("%w: ScatterND index depth %d for rank %d", ErrInvalid, k, r)
	}
	wantUpd := append(slices.Clone(it.Shape[:len(it.Shape)-1]), data.Shape[k:]...)
	if !shapeEq(upd.Shape, wantUpd) {
		return nil, fmt.Errorf("%w: ScatterND updates of shape %v, want %v", ErrInvalid, upd.Shape, wantUpd)
	}
	red := c.attrString("reduction", "none")
	switch red {
	case "none", "add", "mul", "max", "min":
	default:
		return nil, fmt.Errorf("%w: ScatterND reduction %q", ErrUnsupported, red)
	}
	out, err := c.e.alloc(data.DType, data.Shape)
	if err != nil {
		return nil, err
	}
	copy(out.F32, data.F32)
	copy(out.I64, data.I64)
	copy(out.Bool, data.Bool)
	strides := make([]int, r)
	acc := 1
	for i := r - 1; i >= 0; i-- {
		strides[i] = acc
		acc *= data.Shape[i]
	}
	block := 1
	for _, d := range data.Shape[k:] {
		block *= d
	}
	n := 1
	for _, d := range it.Shape[:len(it.Shape)-1] {
		n *= d
	}
	for i := 0; i < n; i++ {
		off := 0
		for j := 0; j < k; j++ {
			x, dim := idx[i*k+j], int64(data.Shape[j])
			if x < -dim || x >= dim {
				return nil, fmt.Errorf("%w: ScatterND index %d out of range for dimension %d", ErrInvalid, x, dim)
			}
			if x < 0 {
				x += dim
			}
			off += int(x) * strides[j]
		}
		switch out.kind() {
		case kindFloat:
			scatter(out.F32[off:off+block], upd.F32[i*block:(i+1)*block], red)
		case kindInt:
			scatter(out.I64[off:off+block], upd.I64[i*block:(i+1)*block], red)
		case kindBool:
			if red != "none" {
				return nil, fmt.Errorf("%w: ScatterND reduction %q of BOOL", ErrInvalid, red)
			}
			copy(out.Bool[off:off+block], upd.Bool[i*block:(i+1)*block])
		}
	}
	return []*Tensor{out}, nil
}

func scatter[T float32 | int64](dst, src []T, red string) {
	switch red {
	case "add":
		for i, v := range src {
			dst[i] += v
		}
	case "mul":
		for i, v := range src {
			dst[i] *= v
		}
	case "max":
		for i, v := range src {
			dst[i] = max(dst[i], v)
		}
	case "min":
		for i, v := range src {
			dst[i] = min(dst[i], v)
		}
	default:
		copy(dst, src)
	}
}

// opPad implements Pad in constant mode (pads as an attribute before
// opset 11, as inputs from 11, with axes from 18) and edge mode; other
// modes are unsupported.
func opPad(c *call) ([]*Tensor, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(x.Shape)
	mode := c.attrString("mode", "constant")
	if mode != "constant" && mode != "edge" {
		return nil, fmt.Errorf("%w: Pad mode %q", ErrUnsupported, mode)
	}
	var pads []int64
	var value float64
	if c.n.ver < 11 {
		pads, _ = c.attrInts("pads")
		value = float64(c.attrFloat("value", 0))
	} else {
		pt, err := c.need(1)
		if err != nil {
			return nil, err
		}
		if pads, err = ints(pt, "Pad pads"); err != nil {
			return nil, err
		}
		if v := c.input(2); v != nil && v.Len() > 0 {
			if value, err = scalarFloat64(v, "Pad constant_value"); err != nil && v.kind() != kindBool {
				return nil, err
			}
		}
	}
	axes := make([]int, 0, r)
	if at := c.input(3); at != nil && c.n.ver >= 18 {
		av, err := ints(at, "Pad axes")
		if err != nil {
			return nil, err
		}
		for _, a := range av {
			d, err := normAxis(a, r)
			if err != nil {
				return nil, err
			}
			axes = append(axes, d)
		}
	} else {
		for i := 0; i < r; i++ {
			axes = append(axes, i)
		}
	}
	if len(pads) != 2*len(axes) {
		return nil, fmt.Errorf("%w: Pad pads %v for %d axes", ErrInvalid, pads, len(axes))
	}
	before := make([]int, r)
	shape := slices.Clone(x.Shape)
	for i, d := range axes {
		b, e := pads[i], pads[i+len(axes)]
		nd := int64(x.Shape[d]) + b + e
		if nd < 0 || nd > c.e.maxElems || b < -int64(x.Shape[d]) || e < -int64(x.Shape[d]) {
			return nil, fmt.Errorf("%w: Pad pads %v for shape %v", ErrInvalid, pads, x.Shape)
		}
		before[d], shape[d] = int(b), int(nd)
	}
	out, err := c.e.alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	if out.Len() == 0 {
		return []*Tensor{out}, nil
	}
	if mode == "edge" && x.Len() == 0 {
		return nil, fmt.Errorf("%w: Pad edge mode of an empty tensor", ErrInvalid)
	}
	// For each output element, the source element (or none).
	istr := make([]int, r)
	acc := 1
	for i := r - 1; i >= 0; i-- {
		istr[i] = acc
		acc *= x.Shape[i]
	}
	idx := make([]int, r)
	for o := 0; o < out.Len(); o++ {
		src, inside := 0, true
		for d := 0; d < r; d++ {
			s := idx[d] - before[d]
			if s < 0 || s >= x.Shape[d] {
				if mode == "constant" {
					inside = false
					break
				}
				s = min(max(s, 0), x.Shape[d]-1)
			}
			src += s * istr[d]
		}
		switch out.kind() {
		case kindFloat:
			if inside {
				out.F32[o] = x.F32[src]
			} else {
				out.F32[o] = float32(value)
			}
		case kindInt:
			if inside {
				out.I64[o] = x.I64[src]
			} else {
				out.I64[o] = int64(value)
			}
		case kindBool:
			out.Bool[o] = inside && x.Bool[src]
		}
		for d := r - 1; d >= 0; d-- {
			idx[d]++
			if idx[d] < shape[d] {
				break
			}
			idx[d] = 0
		}
	}
	return []*Tensor{out}, nil
}
