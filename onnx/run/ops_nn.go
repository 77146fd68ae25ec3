package run

import (
	"fmt"
	"math"
	"slices"

	"github.com/lmsparse/lmsparse/internal/fastmath"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// prepareWeight prepares a constant 2-D float B operand of MatMul or Gemm
// once, as N rows of K: packed for the GEMM kernel, or kept sparse for
// the sparse kernel when sp says so (Options.Sparse).
func (s *Session) prepareWeight(n *node, consts []*Tensor, sp *sparsePolicy) {
	op := n.pb.GetOpType()
	if (op != "MatMul" && op != "Gemm") || len(n.in) < 2 || n.in[1] < 0 {
		return
	}
	b := consts[n.in[1]]
	if b == nil || b.kind() != kindFloat || len(b.Shape) != 2 {
		return
	}
	rows, cols := b.Shape[0], b.Shape[1]
	// [N, K] with transB; else [K, N]: row j of the operand is column j.
	nn, kk, si, sj := cols, rows, 1, cols
	if op == "Gemm" && attrIntOf(n, "transB", 0) != 0 {
		nn, kk, si, sj = rows, cols, cols, 1
	}
	n.bN, n.bK = nn, kk
	if sp.keepSparse(b.F32, nn, kk, si, sj) {
		n.sb = sparseB(b.F32, nn, kk, si, sj)
		s.weights[1]++
		return
	}
	n.bp = packB(b.F32, nn, kk, si, sj, s.exec.threads)
	s.weights[0]++
}

func attrIntOf(n *node, name string, def int64) int64 {
	for _, a := range n.pb.GetAttribute() {
		if a.GetName() == name {
			return a.GetI()
		}
	}
	return def
}

func opMatMul(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if a.kind() != kindFloat {
		return nil, fmt.Errorf("%w: MatMul of %s", ErrUnsupported, a.DType)
	}
	// A constant B prepared at load time: one product over all rows of A.
	if c.n.constB() {
		if len(a.Shape) == 0 || a.Shape[len(a.Shape)-1] != c.n.bK {
			return nil, fmt.Errorf("%w: MatMul of %v and [%d %d]", ErrInvalid, a.Shape, c.n.bK, c.n.bN)
		}
		shape := slices.Clone(a.Shape)
		shape[len(shape)-1] = c.n.bN
		out, err := c.e.allocRaw(a.DType, shape)
		if err != nil {
			return nil, err
		}
		rows := len(a.F32) / max(c.n.bK, 1)
		if c.n.bK == 0 {
			clear(out.F32)
		}
		c.e.gemmW(out.F32, a.F32, c.n, rows)
		return []*Tensor{out}, nil
	}
	b, err := c.need(1)
	if err != nil {
		return nil, err
	}
	if b.kind() != kindFloat {
		return nil, fmt.Errorf("%w: MatMul of %s", ErrUnsupported, b.DType)
	}
	as, bs := a.Shape, b.Shape
	if len(as) == 0 || len(bs) == 0 {
		return nil, fmt.Errorf("%w: MatMul of a scalar", ErrInvalid)
	}
	aVec, bVec := len(as) == 1, len(bs) == 1
	if aVec {
		as = []int{1, as[0]}
	}
	if bVec {
		bs = []int{bs[0], 1}
	}
	m, k := as[len(as)-2], as[len(as)-1]
	k2, n := bs[len(bs)-2], bs[len(bs)-1]
	if k != k2 {
		return nil, fmt.Errorf("%w: MatMul of %v and %v", ErrInvalid, a.Shape, b.Shape)
	}
	ab, bb := as[:len(as)-2], bs[:len(bs)-2]
	batch, err := broadcastShapes(ab, bb)
	if err != nil {
		return nil, err
	}
	shape := append(slices.Clone(batch), m, n)
	out, err := c.e.allocRaw(a.DType, shape)
	if err != nil {
		return nil, err
	}
	// Offsets of each batch's A and B matrices.
	var aOff, bOff []int
	p := planBroadcast(batch, ab, bb)
	p.run(func(offs []int, cnt int, steps []int) {
		for i := 0; i < cnt; i++ {
			aOff = append(aOff, (offs[0]+i*steps[0])*m*k)
			bOff = append(bOff, (offs[1]+i*steps[1])*k*n)
		}
	})
	c.e.batchedMatMul(out.F32, a.F32, b.F32, aOff, bOff, m, n, k)
	// Drop the dimensions added to 1-D operands.
	switch {
	case aVec && bVec:
		out.Shape = batch
	case aVec:
		out.Shape = append(slices.Clone(batch), n)
	case bVec:
		out.Shape = append(slices.Clone(batch), m)
	}
	return []*Tensor{out}, nil
}

func opGemm(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if a.kind() != kindFloat || len(a.Shape) != 2 {
		return nil, fmt.Errorf("%w: Gemm A of %s %v", ErrInvalid, a.DType, a.Shape)
	}
	alpha, beta := c.attrFloat("alpha", 1), c.attrFloat("beta", 1)
	transA, transB := c.attrInt("transA", 0) != 0, c.attrInt("transB", 0) != 0
	am := a.F32
	m, k := a.Shape[0], a.Shape[1]
	if transA {
		m, k = k, m
		am = make([]float32, len(a.F32))
		permute(am, a.F32, a.Shape, []int{1, 0})
	}
	var out *Tensor
	if c.n.constB() {
		if c.n.bK != k {
			return nil, fmt.Errorf("%w: Gemm of %v and a weight of %d inputs", ErrInvalid, a.Shape, c.n.bK)
		}
		if out, err = c.e.alloc(a.DType, []int{m, c.n.bN}); err != nil {
			return nil, err
		}
		c.e.gemmW(out.F32, am, c.n, m)
	} else {
		b, err := c.need(1)
		if err != nil {
			return nil, err
		}
		if b.kind() != kindFloat || len(b.Shape) != 2 {
			return nil, fmt.Errorf("%w: Gemm B of %s %v", ErrInvalid, b.DType, b.Shape)
		}
		var bt []float32
		var n int
		if transB {
			bt, n = b.F32, b.Shape[0]
			if b.Shape[1] != k {
				return nil, fmt.Errorf("%w: Gemm of %v and %v (transB)", ErrInvalid, a.Shape, b.Shape)
			}
		} else {
			if b.Shape[0] != k {
				return nil, fmt.Errorf("%w: Gemm of %v and %v", ErrInvalid, a.Shape, b.Shape)
			}
			n = b.Shape[1]
			bt = make([]float32, len(b.F32))
			permute(bt, b.F32, b.Shape, []int{1, 0})
		}
		if out, err = c.e.alloc(a.DType, []int{m, n}); err != nil {
			return nil, err
		}
		matMulT(out.F32, am, bt, m, n, k, c.e.threads)
	}
	if alpha != 1 {
		for i := range out.F32 {
			out.F32[i] *= alpha
		}
	}
	if ct := c.input(2); ct != nil && beta != 0 {
		if ct.kind() != kindFloat {
			return nil, fmt.Errorf("%w: Gemm C of %s", ErrInvalid, ct.DType)
		}
		shape, err := broadcastShapes(out.Shape, ct.Shape)
		if err != nil || !shapeEq(shape, out.Shape) {
			return nil, fmt.Errorf("%w: Gemm C of shape %v for output %v", ErrInvalid, ct.Shape, out.Shape)
		}
		p := planBroadcast(out.Shape, out.Shape, ct.Shape)
		mapBinary(out.F32, out.F32, ct.F32, p, func(x, y float32) float32 { return x + beta*y })
	}
	return []*Tensor{out}, nil
}

// opSoftmax implements Softmax and LogSoftmax: along one axis from opset
// 13 on (default −1), over the dimensions from axis on, flattened, before
// (default axis 1). Sums run in float64.
func opSoftmax(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if a.kind() != kindFloat {
		return nil, fmt.Errorf("%w: %s of %s", ErrInvalid, c.op(), a.DType)
	}
	r := len(a.Shape)
	def := int64(-1)
	if c.n.ver < 13 {
		def = 1
	}
	if r == 0 {
		return nil, fmt.Errorf("%w: %s of a scalar", ErrInvalid, c.op())
	}
	axis, err := normAxis(c.attrInt("axis", def), r)
	if err != nil {
		return nil, err
	}
	outer, n, inner := 1, a.Shape[axis], 1
	for _, d := range a.Shape[:axis] {
		outer *= d
	}
	for _, d := range a.Shape[axis+1:] {
		inner *= d
	}
	if c.n.ver < 13 {
		n, inner = n*inner, 1
	}
	out, err := c.outFor(a.DType, a.Shape, 0)
	if err != nil {
		return nil, err
	}
	logSM := c.op() == "LogSoftmax"
	groups := outer * inner
	threads := c.e.threads
	if len(a.F32) < 1<<14 {
		threads = 1
	}
	blas.ParallelRows(threads, groups, 1, func(lo, hi int) {
		for g := lo; g < hi; g++ {
			o, in := g/inner, g%inner
			base := o*n*inner + in
			softmax(out.F32, a.F32, base, n, inner, logSM)
		}
	})
	return []*Tensor{out}, nil
}

// softmax normalizes x[base + i·stride], i < n, into dst (which may be x).
// Softmax takes its exponentials with expSub (float32; AVX2 when the CPU
// has it) and sums them in float64, every row, strided or not, through
// softmaxRow; LogSoftmax works in float64 throughout.
func softmax(dst, x []float32, base, n, stride int, logSM bool) {
	if n == 0 {
		return
	}
	if !logSM {
		if stride == 1 {
			softmaxRow(dst[base:base+n], x[base:base+n])
			return
		}
		row := make([]float32, n) // a strided softmax (not over the last axis): rare
		for i, j := 0, base; i < n; i, j = i+1, j+stride {
			row[i] = x[j]
		}
		softmaxRow(row, row)
		for i, j := 0, base; i < n; i, j = i+1, j+stride {
			dst[j] = row[i]
		}
		return
	}
	mx := float32(math.Inf(-1))
	for i, j := 0, base; i < n; i, j = i+1, j+stride {
		if x[j] > mx || x[j] != x[j] {
			mx = x[j]
		}
	}
	m := float64(mx)
	var sum float64
	for i, j := 0, base; i < n; i, j = i+1, j+stride {
		sum += math.Exp(float64(x[j]) - m)
	}
	lse := m + math.Log(sum)
	for i, j := 0, base; i < n; i, j = i+1, j+stride {
		dst[j] = float32(float64(x[j]) - lse)
	}
}

// softmaxRow is softmax of one contiguous row (dst may be x).
func softmaxRow(dst, x []float32) {
	dst = dst[:len(x)]
	mx := float32(math.Inf(-1))
	for _, v := range x {
		if v > mx || v != v {
			mx = v
		}
	}
	copy(dst, x)
	softmaxShifted(dst, mx)
}

// softmaxShifted finishes softmaxRow in place, given the row's maximum.
func softmaxShifted(dst []float32, mx float32) {
	inv := 1 / expSub(dst, mx)
	n8 := 0
	if vecExp {
		n8 = mulF64Vec(dst, inv)
	}
	for i, v := range dst[n8:] {
		dst[n8+i] = float32(float64(v) * inv)
	}
}

var negInf = math.Inf(-1)

// expSub sets x[i] = exp(x[i] − shift) and returns the sum of the new
// values in float64. With AVX2 (vecExp) eight lanes at a time, every
// element through the vector code, lanes below −87 set to 0, the sum
// accumulated per lane and then added in a fixed order; otherwise
// internal/fastmath.Expf one at a time (its polynomial written out in
// the loop: the compiler does not inline the call), underflows below −105
// skipped. Either way the result depends only on the values, not on the
// row's length or on how a caller splits its work.
func expSub(x []float32, shift float32) float64 {
	if vecExp {
		return expSubVec(x, shift)
	}
	var sum float64
	for i, v := range x {
		d := v - shift
		var e float32
		switch {
		case d >= -87 && d <= 88:
			t := d*1.44269504088896341 + 12582912
			n := int32(math.Float32bits(t)) - 0x4B400000
			fn := t - 12582912
			r := d - fn*0.693359375
			r -= fn * -2.12194440e-4
			p := float32(1.9875691500e-4)
			p = p*r + 1.3981999507e-3
			p = p*r + 8.3334519073e-3
			p = p*r + 4.1665795894e-2
			p = p*r + 1.6666665459e-1
			p = p*r + 5.0000001201e-1
			e = (p*r*r + r + 1) * math.Float32frombits(uint32(n+127)<<23)
		case d >= -105 || d != d: // below −105 Expf underflows to 0
			e = fastmath.Expf(d)
		}
		x[i] = e
		sum += float64(e)
	}
	return sum
}

// opReduce implements ReduceMean, ReduceSum, ReduceMax, ReduceMin,
// ReduceProd and ReduceSumSquare, accumulating in float64 (int64 for
// integers).
func opReduce(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	op := c.op()
	since := int64(18)
	if op == "ReduceSum" {
		since = 13
	}
	axes, _, err := c.axesInput(since, 1)
	if err != nil {
		return nil, err
	}
	r := len(a.Shape)
	keep := c.attrInt("keepdims", 1) != 0
	red := make([]bool, r)
	if len(axes) == 0 {
		if c.attrInt("noop_with_empty_axes", 0) != 0 {
			out, err := c.e.alloc(a.DType, a.Shape)
			if err != nil {
				return nil, err
			}
			copy(out.F32, a.F32)
			copy(out.I64, a.I64)
			copy(out.Bool, a.Bool)
			return []*Tensor{out}, nil
		}
		for i := range red {
			red[i] = true
		}
	}
	for _, ax := range axes {
		d, err := normAxis(ax, r)
		if err != nil {
			return nil, err
		}
		red[d] = true
	}
	kshape := make([]int, r) // keepdims shape
	count := 1
	for i, d := range a.Shape {
		kshape[i] = d
		if red[i] {
			kshape[i] = 1
			count *= d
		}
	}
	var shape []int
	if keep {
		shape = kshape
	} else {
		for i, d := range a.Shape {
			if !red[i] {
				shape = append(shape, d)
			}
		}
	}
	out, err := c.e.alloc(a.DType, shape)
	if err != nil {
		return nil, err
	}
	p := planBroadcast(a.Shape, kshape)
	switch a.kind() {
	case kindFloat:
		acc := make([]float64, len(out.F32))
		init := 0.0
		switch op {
		case "ReduceMax":
			init = math.Inf(-1)
		case "ReduceMin":
			init = math.Inf(1)
		case "ReduceProd":
			init = 1
		}
		for i := range acc {
			acc[i] = init
		}
		x := 0
		p.run(func(offs []int, n int, steps []int) {
			o, s := offs[0], steps[0]
			for k := 0; k < n; k++ {
				v := float64(a.F32[x])
				switch op {
				case "ReduceMax":
					if v > acc[o] || v != v {
						acc[o] = v
					}
				case "ReduceMin":
					if v < acc[o] || v != v {
						acc[o] = v
					}
				case "ReduceProd":
					acc[o] *= v
				case "ReduceSumSquare":
					acc[o] += v * v
				default:
					acc[o] += v
				}
				x++
				o += s
			}
		})
		for i, v := range acc {
			if op == "ReduceMean" {
				v /= float64(count)
			}
			out.F32[i] = float32(v)
		}
	case kindInt:
		acc := out.I64
		for i := range acc {
			switch op {
			case "ReduceMax":
				acc[i] = math.MinInt64
			case "ReduceMin":
				acc[i] = math.MaxInt64
			case "ReduceProd":
				acc[i] = 1
			}
		}
		x := 0
		p.run(func(offs []int, n int, steps []int) {
			o, s := offs[0], steps[0]
			for k := 0; k < n; k++ {
				v := a.I64[x]
				switch op {
				case "ReduceMax":
					acc[o] = max(acc[o], v)
				case "ReduceMin":
					acc[o] = min(acc[o], v)
				case "ReduceProd":
					acc[o] *= v
				case "ReduceSumSquare":
					acc[o] += v * v
				default:
					acc[o] += v
				}
				x++
				o += s
			}
		})
		if op == "ReduceMean" && count > 0 {
			for i := range acc {
				acc[i] /= int64(count)
			}
		}
	case kindBool:
		if op == "ReduceMax" || op == "ReduceMin" {
			// Valid ONNX since opset 20 (any/all), not implemented here.
			return nil, fmt.Errorf("%w: %s of %s", ErrUnsupported, op, a.DType)
		}
		return nil, fmt.Errorf("%w: %s of %s", ErrInvalid, op, a.DType)
	default:
		return nil, fmt.Errorf("%w: %s of %s", ErrInvalid, op, a.DType)
	}
	return []*Tensor{out}, nil
}

// opLayerNorm implements LayerNormalization (opset 17): normalization over
// the dimensions from axis on, statistics in float64. The optional Mean and
// InvStdDev outputs are computed when the node asks for them.
func opLayerNorm(c *call) ([]*Tensor, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	scale, err := c.need(1)
	if err != nil {
		return nil, err
	}
	bias := c.input(2)
	if err := sameKind(x, scale, bias); err != nil || x.kind() != kindFloat {
		return nil, fmt.Errorf("%w: LayerNormalization of %s", ErrInvalid, x.DType)
	}
	r := len(x.Shape)
	axis, err := normAxis(c.attrInt("axis", -1), r)
	if err != nil {
		return nil, err
	}
	eps := float64(c.attrFloat("epsilon", 1e-5))
	norm := x.Shape[axis:]
	outer, n := 1, 1
	for _, d := range x.Shape[:axis] {
		outer *= d
	}
	for _, d := range norm {
		n *= d
	}
	expand := func(t *Tensor, what string) ([]float32, error) {
		if t == nil {
			return nil, nil
		}
		if s, err := broadcastShapes(norm, t.Shape); err != nil || !shapeEq(s, norm) {
			return nil, fmt.Errorf("%w: LayerNormalization %s of shape %v for normalized shape %v", ErrInvalid, what, t.Shape, norm)
		}
		v := make([]float32, n)
		bcastCopy(v, t.F32, planBroadcast(norm, t.Shape))
		return v, nil
	}
	sv, err := expand(scale, "scale")
	if err != nil {
		return nil, err
	}
	bv, err := expand(bias, "bias")
	if err != nil {
		return nil, err
	}
	y, err := c.e.alloc(x.DType, x.Shape)
	if err != nil {
		return nil, err
	}
	sshape := slices.Clone(x.Shape)
	for i := axis; i < r; i++ {
		sshape[i] = 1
	}
	mean, err := c.e.alloc(x.DType, sshape)
	if err != nil {
		return nil, err
	}
	inv, err := c.e.alloc(x.DType, sshape)
	if err != nil {
		return nil, err
	}
	for o := 0; o < outer; o++ {
		row := x.F32[o*n : (o+1)*n]
		var s float64
		for _, v := range row {
			s += float64(v)
		}
		mu := s / float64(n)
		var q float64
		for _, v := range row {
			d := float64(v) - mu
			q += d * d
		}
		is := 1 / math.Sqrt(q/float64(n)+eps)
		mean.F32[o], inv.F32[o] = float32(mu), float32(is)
		dst := y.F32[o*n : (o+1)*n]
		for i, v := range row {
			z := (float64(v) - mu) * is * float64(sv[i])
			if bv != nil {
				z += float64(bv[i])
			}
			dst[i] = float32(z)
		}
	}
	return []*Tensor{y, mean, inv}, nil
}

func opCumSum(c *call) ([]*Tensor, error) {
	x, err := c.need(0)
	if err != nil {
		return nil, err
	}
	at, err := c.need(1)
	if err != nil {
		return nil, err
	}
	ax, err := scalarInt(at, "CumSum axis")
	if err != nil {
		return nil, err
	}
	axis, err := normAxis(ax, len(x.Shape))
	if err != nil {
		return nil, err
	}
	exclusive, reverse := c.attrInt("exclusive", 0) != 0, c.attrInt("reverse", 0) != 0
	out, err := c.e.alloc(x.DType, x.Shape)
	if err != nil {
		return nil, err
	}
	outer, n, inner := 1, x.Shape[axis], 1
	for _, d := range x.Shape[:axis] {
		outer *= d
	}
	for _, d := range x.Shape[axis+1:] {
		inner *= d
	}
	for o := 0; o < outer; o++ {
		for in := 0; in < inner; in++ {
			var fs float64
			var is int64
			for step := 0; step < n; step++ {
				i := step
				if reverse {
					i = n - 1 - step
				}
				j := (o*n+i)*inner + in
				switch x.kind() {
				case kindFloat:
					if exclusive {
						out.F32[j] = float32(fs)
						fs += float64(x.F32[j])
					} else {
						fs += float64(x.F32[j])
						out.F32[j] = float32(fs)
					}
				case kindInt:
					if exclusive {
						out.I64[j] = is
						is += x.I64[j]
					} else {
						is += x.I64[j]
						out.I64[j] = is
					}
				default:
					return nil, fmt.Errorf("%w: CumSum of %s", ErrInvalid, x.DType)
				}
			}
		}
	}
	return []*Tensor{out}, nil
}
