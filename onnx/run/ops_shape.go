package run

import (
	"fmt"
	"math"
	"slices"

	"github.com/lmsparse/lmsparse/tensor"
)

// onAny calls the function matching t's kind with its element slice.
func onAny(t *Tensor, f func(fs []float32), i func(is []int64), b func(bs []bool)) {
	switch t.kind() {
	case kindFloat:
		f(t.F32)
	case kindInt:
		i(t.I64)
	case kindBool:
		b(t.Bool)
	}
}

func opIdentity(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	out := []*Tensor{a}
	if c.op() == "Dropout" && c.n.ver >= 12 {
		// training_mode (input 2, from opset 12): inference only.
		if tm := c.input(2); tm != nil {
			if tm.kind() != kindBool || len(tm.Bool) != 1 {
				return nil, fmt.Errorf("%w: Dropout's training_mode must be a boolean scalar, got %s %v", ErrInvalid, tm.DType, tm.Shape)
			}
			if tm.Bool[0] {
				return nil, fmt.Errorf("%w: Dropout with training_mode true (random masks); only inference (training_mode false or absent) is implemented", ErrUnsupported)
			}
		}
	}
	if c.op() == "Dropout" && len(c.n.out) > 1 && c.n.out[1] >= 0 {
		mask, err := c.e.alloc(tensor.BOOL, a.Shape)
		if err != nil {
			return nil, err
		}
		for i := range mask.Bool {
			mask.Bool[i] = true
		}
		out = append(out, mask)
	}
	return out, nil
}

// opConstant turns a Constant node's attribute into a tensor (folded when
// the session is loaded).
func opConstant(c *call) ([]*Tensor, error) {
	if len(c.n.pb.GetAttribute()) != 1 {
		return nil, fmt.Errorf("%w: Constant needs exactly one attribute, has %d", ErrInvalid, len(c.n.pb.GetAttribute()))
	}
	a := c.n.pb.GetAttribute()[0]
	switch a.GetName() {
	case "value":
		if c.m == nil {
			return nil, fmt.Errorf("%w: Constant outside Load", ErrInvalid)
		}
		dt, shape, data, err := c.m.TensorData(a.GetT())
		if err != nil {
			return nil, err
		}
		t, err := fromBytes(dt, shape, data)
		return []*Tensor{t}, err
	case "sparse_value":
		if c.m == nil {
			return nil, fmt.Errorf("%w: Constant outside Load", ErrInvalid)
		}
		dt, shape, data, err := c.m.SparseTensorData(a.GetSparseTensor())
		if err != nil {
			return nil, err
		}
		t, err := fromBytes(dt, shape, data)
		return []*Tensor{t}, err
	case "value_float":
		return []*Tensor{{DType: tensor.F32, F32: []float32{a.GetF()}}}, nil
	case "value_floats":
		v := slices.Clone(a.GetFloats())
		return []*Tensor{{DType: tensor.F32, Shape: []int{len(v)}, F32: v}}, nil
	case "value_int":
		return []*Tensor{{DType: tensor.I64, I64: []int64{a.GetI()}}}, nil
	case "value_ints":
		v := slices.Clone(a.GetInts())
		return []*Tensor{{DType: tensor.I64, Shape: []int{len(v)}, I64: v}}, nil
	}
	return nil, fmt.Errorf("%w: Constant attribute %q", ErrUnsupported, a.GetName())
}

func opConstantOfShape(c *call) ([]*Tensor, error) {
	s, err := c.need(0)
	if err != nil {
		return nil, err
	}
	dims, err := ints(s, "shape")
	if err != nil {
		return nil, err
	}
	shape, err := toInts(dims, "ConstantOfShape shape")
	if err != nil {
		return nil, err
	}
	val := &Tensor{DType: tensor.F32, F32: []float32{0}}
	if c.attr("value") != nil {
		if val, err = c.attrTensor("value"); err != nil {
			return nil, err
		}
		if val.Len() != 1 {
			return nil, fmt.Errorf("%w: ConstantOfShape value has %d elements", ErrInvalid, val.Len())
		}
	}
	out, err := c.e.alloc(val.DType, shape)
	if err != nil {
		return nil, err
	}
	onAny(val, func(v []float32) { fill(out.F32, v[0]) }, func(v []int64) { fill(out.I64, v[0]) }, func(v []bool) { fill(out.Bool, v[0]) })
	return []*Tensor{out}, nil
}

func fill[T any](s []T, v T) {
	for i := range s {
		s[i] = v
	}
}

func opShape(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := int64(len(a.Shape))
	start, end := int64(0), r
	if c.n.ver >= 15 {
		start, end = c.attrInt("start", 0), c.attrInt("end", r)
	}
	clamp := func(v int64) int64 {
		if v < 0 {
			v += r
		}
		return min(max(v, 0), r)
	}
	start, end = clamp(start), clamp(end)
	var v []int64
	for i := start; i < end; i++ {
		v = append(v, int64(a.Shape[i]))
	}
	return []*Tensor{{DType: tensor.I64, Shape: []int{len(v)}, I64: v}}, nil
}

func opSize(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	return []*Tensor{{DType: tensor.I64, I64: []int64{int64(a.Len())}}}, nil
}

func opReshape(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	st, err := c.need(1)
	if err != nil {
		return nil, err
	}
	dims, err := ints(st, "Reshape shape")
	if err != nil {
		return nil, err
	}
	if len(dims) > tensor.MaxDims {
		return nil, fmt.Errorf("%w: Reshape to %d dimensions (at most %d)", ErrInvalid, len(dims), tensor.MaxDims)
	}
	allowZero := c.attrInt("allowzero", 0) != 0
	shape := make([]int, len(dims))
	infer := -1
	known := 1
	for i, d := range dims {
		switch {
		case d == -1:
			if infer >= 0 {
				return nil, fmt.Errorf("%w: Reshape shape %v has two -1", ErrInvalid, dims)
			}
			infer = i
			continue
		case d == 0 && !allowZero:
			if i >= len(a.Shape) {
				return nil, fmt.Errorf("%w: Reshape shape %v copies dimension %d of %v", ErrInvalid, dims, i, a.Shape)
			}
			shape[i] = a.Shape[i]
		case d < 0 || d > math.MaxInt32*int64(1<<16):
			return nil, fmt.Errorf("%w: Reshape shape %v", ErrInvalid, dims)
		default:
			shape[i] = int(d)
		}
		if shape[i] != 0 && known > math.MaxInt/shape[i] {
			return nil, fmt.Errorf("%w: Reshape shape %v overflows", ErrInvalid, dims)
		}
		known *= shape[i]
	}
	n := a.Len()
	if infer >= 0 {
		if known == 0 || n%known != 0 {
			return nil, fmt.Errorf("%w: cannot reshape %v to %v", ErrInvalid, a.Shape, dims)
		}
		shape[infer] = n / known
	} else if known != n {
		return nil, fmt.Errorf("%w: cannot reshape %v (%d elements) to %v", ErrInvalid, a.Shape, n, dims)
	}
	return []*Tensor{view(a, shape)}, nil
}

func opFlatten(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(a.Shape)
	axis := c.attrInt("axis", 1)
	if axis < -int64(r) || axis > int64(r) {
		return nil, fmt.Errorf("%w: Flatten axis %d for rank %d", ErrInvalid, axis, r)
	}
	if axis < 0 {
		axis += int64(r)
	}
	outer := 1
	for _, d := range a.Shape[:axis] {
		outer *= d
	}
	inner := 1
	for _, d := range a.Shape[axis:] {
		inner *= d
	}
	return []*Tensor{view(a, []int{outer, inner})}, nil
}

func opSqueeze(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	axes, ok, err := c.axesInput(13, 1)
	if err != nil {
		return nil, err
	}
	drop := make([]bool, len(a.Shape))
	if !ok {
		for i, d := range a.Shape {
			drop[i] = d == 1
		}
	}
	for _, ax := range axes {
		i, err := normAxis(ax, len(a.Shape))
		if err != nil {
			return nil, err
		}
		if a.Shape[i] != 1 {
			return nil, fmt.Errorf("%w: Squeeze axis %d of shape %v is not 1", ErrInvalid, ax, a.Shape)
		}
		drop[i] = true
	}
	var shape []int
	for i, d := range a.Shape {
		if !drop[i] {
			shape = append(shape, d)
		}
	}
	return []*Tensor{view(a, shape)}, nil
}

func opUnsqueeze(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	axes, ok, err := c.axesInput(13, 1)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: Unsqueeze without axes", ErrInvalid)
	}
	r := len(a.Shape) + len(axes)
	if r > tensor.MaxDims {
		return nil, fmt.Errorf("%w: Unsqueeze to rank %d", ErrInvalid, r)
	}
	ins := make([]bool, r)
	for _, ax := range axes {
		i, err := normAxis(ax, r)
		if err != nil {
			return nil, err
		}
		if ins[i] {
			return nil, fmt.Errorf("%w: Unsqueeze axes %v repeat %d", ErrInvalid, axes, ax)
		}
		ins[i] = true
	}
	shape := make([]int, r)
	j := 0
	for i := range shape {
		if ins[i] {
			shape[i] = 1
		} else {
			shape[i] = a.Shape[j]
			j++
		}
	}
	return []*Tensor{view(a, shape)}, nil
}

func opTranspose(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(a.Shape)
	p64, ok := c.attrInts("perm")
	perm := make([]int, r)
	if !ok {
		for i := range perm {
			perm[i] = r - 1 - i
		}
	} else {
		if len(p64) != r {
			return nil, fmt.Errorf("%w: Transpose perm %v for rank %d", ErrInvalid, p64, r)
		}
		seen := make([]bool, r)
		for i, p := range p64 {
			if p < 0 || p >= int64(r) || seen[p] {
				return nil, fmt.Errorf("%w: Transpose perm %v is not a permutation", ErrInvalid, p64)
			}
			seen[p] = true
			perm[i] = int(p)
		}
	}
	shape := make([]int, r)
	for i, p := range perm {
		shape[i] = a.Shape[p]
	}
	out, err := c.e.alloc(a.DType, shape)
	if err != nil {
		return nil, err
	}
	onAny(a, func(s []float32) { permute(out.F32, s, a.Shape, perm) },
		func(s []int64) { permute(out.I64, s, a.Shape, perm) },
		func(s []bool) { permute(out.Bool, s, a.Shape, perm) })
	return []*Tensor{out}, nil
}

// permute writes src (of shape) transposed by perm into dst.
func permute[T any](dst, src []T, shape, perm []int) {
	r := len(shape)
	if len(dst) == 0 {
		return
	}
	if r == 0 {
		dst[0] = src[0]
		return
	}
	istr := make([]int, r)
	acc := 1
	for i := r - 1; i >= 0; i-- {
		istr[i] = acc
		acc *= shape[i]
	}
	dims := make([]int, r)
	strides := make([]int, r) // input stride of each output dimension
	for i, p := range perm {
		dims[i], strides[i] = shape[p], istr[p]
	}
	// Dense 2-D transpose in cache-friendly tiles.
	if r == 2 && perm[0] == 1 {
		rows, cols := shape[0], shape[1]
		const tile = 32
		for i0 := 0; i0 < rows; i0 += tile {
			for j0 := 0; j0 < cols; j0 += tile {
				for i := i0; i < min(i0+tile, rows); i++ {
					for j := j0; j < min(j0+tile, cols); j++ {
						dst[j*rows+i] = src[i*cols+j]
					}
				}
			}
		}
		return
	}
	gatherStrided(dst, src, 0, dims, strides)
}

func opConcat(c *call) ([]*Tensor, error) {
	var ins []*Tensor
	for i := range c.in {
		if t := c.input(i); t != nil {
			ins = append(ins, t)
		}
	}
	if len(ins) == 0 {
		return nil, fmt.Errorf("%w: Concat without inputs", ErrInvalid)
	}
	if err := sameKind(ins...); err != nil {
		return nil, err
	}
	r := len(ins[0].Shape)
	axis, err := normAxis(c.attrInt("axis", 0), r)
	if err != nil {
		return nil, err
	}
	shape := slices.Clone(ins[0].Shape)
	shape[axis] = 0
	for _, t := range ins {
		if len(t.Shape) != r {
			return nil, fmt.Errorf("%w: Concat of ranks %d and %d", ErrInvalid, r, len(t.Shape))
		}
		for d := range t.Shape {
			if d != axis && t.Shape[d] != ins[0].Shape[d] {
				return nil, fmt.Errorf("%w: Concat of shapes %v and %v on axis %d", ErrInvalid, ins[0].Shape, t.Shape, axis)
			}
		}
		shape[axis] += t.Shape[axis]
	}
	out, err := c.e.alloc(ins[0].DType, shape)
	if err != nil {
		return nil, err
	}
	outer := 1
	for _, d := range shape[:axis] {
		outer *= d
	}
	inner := 1
	for _, d := range shape[axis+1:] {
		inner *= d
	}
	o := 0
	for i := 0; i < outer; i++ {
		for _, t := range ins {
			n := t.Shape[axis] * inner
			switch t.kind() {
			case kindFloat:
				copy(out.F32[o:o+n], t.F32[i*n:(i+1)*n])
			case kindInt:
				copy(out.I64[o:o+n], t.I64[i*n:(i+1)*n])
			case kindBool:
				copy(out.Bool[o:o+n], t.Bool[i*n:(i+1)*n])
			}
			o += n
		}
	}
	return []*Tensor{out}, nil
}

func opSplit(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(a.Shape)
	axis, err := normAxis(c.attrInt("axis", 0), r)
	if err != nil {
		return nil, err
	}
	nout := len(c.n.out)
	dim := a.Shape[axis]
	var sizes []int64
	if c.n.ver >= 13 {
		if t := c.input(1); t != nil {
			if sizes, err = ints(t, "split"); err != nil {
				return nil, err
			}
		}
	} else if v, ok := c.attrInts("split"); ok {
		sizes = v
	}
	if sizes == nil {
		parts := int64(nout)
		if c.n.ver >= 18 && c.attr("num_outputs") != nil {
			parts = c.attrInt("num_outputs", int64(nout))
		}
		if parts <= 0 || parts != int64(nout) {
			return nil, fmt.Errorf("%w: Split into %d parts with %d outputs", ErrInvalid, parts, nout)
		}
		chunk := (int64(dim) + parts - 1) / parts
		if c.n.ver < 18 && int64(dim)%parts != 0 {
			return nil, fmt.Errorf("%w: Split of dimension %d into %d equal parts", ErrInvalid, dim, parts)
		}
		left := int64(dim)
		for i := int64(0); i < parts; i++ {
			s := min(chunk, left)
			sizes = append(sizes, s)
			left -= s
		}
	}
	if len(sizes) != nout {
		return nil, fmt.Errorf("%w: Split sizes %v for %d outputs", ErrInvalid, sizes, nout)
	}
	var total int64
	for _, s := range sizes {
		if s < 0 {
			return nil, fmt.Errorf("%w: Split sizes %v", ErrInvalid, sizes)
		}
		total += s
	}
	if total != int64(dim) {
		return nil, fmt.Errorf("%w: Split sizes %v do not add up to dimension %d", ErrInvalid, sizes, dim)
	}
	outer := 1
	for _, d := range a.Shape[:axis] {
		outer *= d
	}
	inner := 1
	for _, d := range a.Shape[axis+1:] {
		inner *= d
	}
	outs := make([]*Tensor, nout)
	start := 0
	for k, s := range sizes {
		shape := slices.Clone(a.Shape)
		shape[axis] = int(s)
		t, err := c.e.alloc(a.DType, shape)
		if err != nil {
			return nil, err
		}
		n := int(s) * inner
		for i := 0; i < outer; i++ {
			src := i*dim*inner + start*inner
			switch a.kind() {
			case kindFloat:
				copy(t.F32[i*n:(i+1)*n], a.F32[src:src+n])
			case kindInt:
				copy(t.I64[i*n:(i+1)*n], a.I64[src:src+n])
			case kindBool:
				copy(t.Bool[i*n:(i+1)*n], a.Bool[src:src+n])
			}
		}
		start += int(s)
		outs[k] = t
	}
	return outs, nil
}

func opSlice(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(a.Shape)
	var starts, ends, axes, steps []int64
	if c.n.ver < 10 {
		starts, _ = c.attrInts("starts")
		ends, _ = c.attrInts("ends")
		axes, _ = c.attrInts("axes")
	} else {
		get := func(i int, what string) ([]int64, error) {
			if t := c.input(i); t != nil {
				return ints(t, what)
			}
			return nil, nil
		}
		if starts, err = get(1, "starts"); err != nil {
			return nil, err
		}
		if ends, err = get(2, "ends"); err != nil {
			return nil, err
		}
		if axes, err = get(3, "axes"); err != nil {
			return nil, err
		}
		if steps, err = get(4, "steps"); err != nil {
			return nil, err
		}
	}
	if len(starts) != len(ends) || (axes != nil && len(axes) != len(starts)) || (steps != nil && len(steps) != len(starts)) {
		return nil, fmt.Errorf("%w: Slice starts %v, ends %v, axes %v, steps %v differ in length", ErrInvalid, starts, ends, axes, steps)
	}
	begin := make([]int, r)
	step := make([]int, r)
	shape := slices.Clone(a.Shape)
	for i := range step {
		step[i] = 1
	}
	seen := make([]bool, r)
	for i := range starts {
		ax := int64(i)
		if axes != nil {
			ax = axes[i]
		}
		d, err := normAxis(ax, r)
		if err != nil {
			return nil, err
		}
		if seen[d] {
			return nil, fmt.Errorf("%w: Slice axes %v repeat", ErrInvalid, axes)
		}
		seen[d] = true
		st := int64(1)
		if steps != nil {
			st = steps[i]
		}
		if st == 0 {
			return nil, fmt.Errorf("%w: Slice step 0", ErrInvalid)
		}
		dim := int64(a.Shape[d])
		s, e := starts[i], ends[i]
		if s < 0 {
			s += dim
		}
		if e < 0 {
			e += dim
		}
		var n int64
		if st > 0 {
			s, e = min(max(s, 0), dim), min(max(e, 0), dim)
			if e > s {
				n = (e - s + st - 1) / st
			}
		} else {
			s, e = min(max(s, 0), dim-1), min(max(e, -1), dim-1)
			if s > e {
				n = (s - e - st - 1) / -st
			}
		}
		begin[d], step[d], shape[d] = int(s), int(st), int(n)
	}
	out, err := c.e.alloc(a.DType, shape)
	if err != nil {
		return nil, err
	}
	if out.Len() == 0 {
		return []*Tensor{out}, nil
	}
	onAny(a, func(s []float32) { strided(out.F32, s, a.Shape, shape, begin, step) },
		func(s []int64) { strided(out.I64, s, a.Shape, shape, begin, step) },
		func(s []bool) { strided(out.Bool, s, a.Shape, shape, begin, step) })
	return []*Tensor{out}, nil
}

// strided copies the elements begin + i·step of src (of shape in) into dst
// (of shape out).
func strided[T any](dst, src []T, in, out, begin, step []int) {
	r := len(in)
	if r == 0 {
		dst[0] = src[0]
		return
	}
	istr := make([]int, r)
	acc := 1
	for i := r - 1; i >= 0; i-- {
		istr[i] = acc
		acc *= in[i]
	}
	base := 0
	jump := make([]int, r)
	for i := range in {
		base += begin[i] * istr[i]
		jump[i] = step[i] * istr[i]
	}
	gatherStrided(dst, src, base, out, jump)
}

// gatherStrided fills dst, row-major of shape dims, with src[off + Σ
// i_d·strides[d]] over every index (i_0, …) of dims: the walk behind
// Transpose and Slice. len(dims) must be at least 1.
func gatherStrided[T any](dst, src []T, off int, dims, strides []int) {
	r := len(dims)
	inner, step := dims[r-1], strides[r-1]
	idx := make([]int, r-1)
	o := 0
	for {
		if step == 1 {
			copy(dst[o:o+inner], src[off:off+inner])
		} else {
			for k, x := 0, off; k < inner; k, x = k+1, x+step {
				dst[o+k] = src[x]
			}
		}
		o += inner
		d := r - 2
		for ; d >= 0; d-- {
			idx[d]++
			off += strides[d]
			if idx[d] < dims[d] {
				break
			}
			off -= strides[d] * dims[d]
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

func opGather(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	it, err := c.need(1)
	if err != nil {
		return nil, err
	}
	idx, err := ints(it, "Gather indices")
	if err != nil {
		return nil, err
	}
	r := len(a.Shape)
	axis, err := normAxis(c.attrInt("axis", 0), r)
	if err != nil {
		return nil, err
	}
	shape := append(append(slices.Clone(a.Shape[:axis]), it.Shape...), a.Shape[axis+1:]...)
	out, err := c.e.alloc(a.DType, shape)
	if err != nil {
		return nil, err
	}
	dim := a.Shape[axis]
	outer := 1
	for _, d := range a.Shape[:axis] {
		outer *= d
	}
	inner := 1
	for _, d := range a.Shape[axis+1:] {
		inner *= d
	}
	rows := make([]int, len(idx))
	for j, x := range idx {
		if x < -int64(dim) || x >= int64(dim) {
			return nil, fmt.Errorf("%w: Gather index %d out of range [%d, %d)", ErrInvalid, x, -dim, dim)
		}
		if x < 0 {
			x += int64(dim)
		}
		rows[j] = int(x)
	}
	onAny(a, func(s []float32) { gather(out.F32, s, rows, outer, dim, inner) },
		func(s []int64) { gather(out.I64, s, rows, outer, dim, inner) },
		func(s []bool) { gather(out.Bool, s, rows, outer, dim, inner) })
	return []*Tensor{out}, nil
}

func gather[T any](dst, src []T, rows []int, outer, dim, inner int) {
	o := 0
	for i := 0; i < outer; i++ {
		for _, r := range rows {
			s := (i*dim + r) * inner
			copy(dst[o:o+inner], src[s:s+inner])
			o += inner
		}
	}
}

func opExpand(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	st, err := c.need(1)
	if err != nil {
		return nil, err
	}
	dims, err := ints(st, "Expand shape")
	if err != nil {
		return nil, err
	}
	want, err := toInts(dims, "Expand shape")
	if err != nil {
		return nil, err
	}
	shape, err := broadcastShapes(a.Shape, want)
	if err != nil {
		return nil, err
	}
	out, err := c.e.alloc(a.DType, shape)
	if err != nil {
		return nil, err
	}
	p := planBroadcast(shape, a.Shape)
	onAny(a, func(s []float32) { bcastCopy(out.F32, s, p) },
		func(s []int64) { bcastCopy(out.I64, s, p) },
		func(s []bool) { bcastCopy(out.Bool, s, p) })
	return []*Tensor{out}, nil
}

func opTile(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	rt, err := c.need(1)
	if err != nil {
		return nil, err
	}
	reps, err := ints(rt, "Tile repeats")
	if err != nil {
		return nil, err
	}
	if len(reps) != len(a.Shape) {
		return nil, fmt.Errorf("%w: Tile repeats %v for shape %v", ErrInvalid, reps, a.Shape)
	}
	rep, err := toInts(reps, "Tile repeats")
	if err != nil {
		return nil, err
	}
	shape := slices.Clone(a.Shape)
	for i := range shape {
		v, err := tensor.MulInt64(int64(shape[i]), int64(rep[i]))
		if err != nil || v > c.e.maxElems {
			return nil, fmt.Errorf("%w: Tile of %v by %v is too large", ErrInvalid, a.Shape, reps)
		}
		shape[i] = int(v)
	}
	out, err := c.e.alloc(a.DType, shape) // checks the element count
	if err != nil {
		return nil, err
	}
	cur := view(a, slices.Clone(a.Shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if rep[d] == 1 {
			continue
		}
		next := cur.Shape
		next = slices.Clone(next)
		next[d] *= rep[d]
		t, err := c.e.alloc(a.DType, next)
		if err != nil {
			return nil, err
		}
		outer := 1
		for _, x := range cur.Shape[:d] {
			outer *= x
		}
		block := 1
		for _, x := range cur.Shape[d:] {
			block *= x
		}
		onAny(cur, func(s []float32) { tile(t.F32, s, outer, block, rep[d]) },
			func(s []int64) { tile(t.I64, s, outer, block, rep[d]) },
			func(s []bool) { tile(t.Bool, s, outer, block, rep[d]) })
		cur = t
	}
	copy(out.F32, cur.F32)
	copy(out.I64, cur.I64)
	copy(out.Bool, cur.Bool)
	return []*Tensor{out}, nil
}

func tile[T any](dst, src []T, outer, block, reps int) {
	o := 0
	for i := 0; i < outer; i++ {
		for r := 0; r < reps; r++ {
			copy(dst[o:o+block], src[i*block:(i+1)*block])
			o += block
		}
	}
}

func opRange(c *call) ([]*Tensor, error) {
	var ts [3]*Tensor
	for i := range ts {
		t, err := c.need(i)
		if err != nil {
			return nil, err
		}
		if t.Len() != 1 {
			return nil, fmt.Errorf("%w: Range input %d has %d elements", ErrInvalid, i, t.Len())
		}
		ts[i] = t
	}
	if err := sameKind(ts[:]...); err != nil {
		return nil, err
	}
	switch ts[0].kind() {
	case kindInt:
		start, limit, delta := ts[0].I64[0], ts[1].I64[0], ts[2].I64[0]
		if delta == 0 {
			return nil, fmt.Errorf("%w: Range delta 0", ErrInvalid)
		}
		span := (float64(limit) - float64(start)) / float64(delta)
		if span > float64(c.e.maxElems) {
			return nil, fmt.Errorf("%w: Range of %g elements", ErrInvalid, span)
		}
		var n int64
		if delta > 0 && limit > start {
			n = (limit - start + delta - 1) / delta
		} else if delta < 0 && limit < start {
			n = (start - limit - delta - 1) / -delta
		}
		out, err := c.e.alloc(ts[0].DType, []int{int(n)})
		if err != nil {
			return nil, err
		}
		for i := range out.I64 {
			out.I64[i] = start + int64(i)*delta
		}
		return []*Tensor{out}, nil
	case kindFloat:
		start, limit, delta := float64(ts[0].F32[0]), float64(ts[1].F32[0]), float64(ts[2].F32[0])
		if delta == 0 {
			return nil, fmt.Errorf("%w: Range delta 0", ErrInvalid)
		}
		span := math.Ceil((limit - start) / delta)
		if span != span || span > float64(c.e.maxElems) {
			return nil, fmt.Errorf("%w: Range of %g elements", ErrInvalid, span)
		}
		n := int(max(span, 0))
		out, err := c.e.alloc(ts[0].DType, []int{n})
		if err != nil {
			return nil, err
		}
		// As the reference: start, start+delta, ... accumulated in the type.
		v := ts[0].F32[0]
		for i := range out.F32 {
			out.F32[i] = v
			v += ts[2].F32[0]
		}
		return []*Tensor{out}, nil
	}
	return nil, fmt.Errorf("%w: Range of %s", ErrInvalid, ts[0].DType)
}

func opTrilu(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	r := len(a.Shape)
	if r < 2 {
		return nil, fmt.Errorf("%w: Trilu of rank %d", ErrInvalid, r)
	}
	var k int64
	if t := c.input(1); t != nil {
		if k, err = scalarInt(t, "Trilu k"); err != nil {
			return nil, err
		}
	}
	upper := c.attrInt("upper", 1) != 0
	out, err := c.e.alloc(a.DType, a.Shape)
	if err != nil {
		return nil, err
	}
	rows, cols := a.Shape[r-2], a.Shape[r-1]
	mats := 1
	for _, d := range a.Shape[:r-2] {
		mats *= d
	}
	keep := func(i, j int) bool {
		if upper {
			return int64(j)-int64(i) >= k
		}
		return int64(j)-int64(i) <= k
	}
	for m := 0; m < mats; m++ {
		for i := 0; i < rows; i++ {
			for j := 0; j < cols; j++ {
				if !keep(i, j) {
					continue
				}
				x := (m*rows+i)*cols + j
				switch a.kind() {
				case kindFloat:
					out.F32[x] = a.F32[x]
				case kindInt:
					out.I64[x] = a.I64[x]
				case kindBool:
					out.Bool[x] = a.Bool[x]
				}
			}
		}
	}
	return []*Tensor{out}, nil
}
