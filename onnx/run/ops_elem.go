package run

import (
	"fmt"
	"math"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/tensor"
)

// binaryPlan checks two operands and returns the broadcast output shape
// and iteration plan.
func binaryPlan(a, b *Tensor) ([]int, bplan, error) {
	out, err := broadcastShapes(a.Shape, b.Shape)
	if err != nil {
		return nil, bplan{}, err
	}
	return out, planBroadcast(out, a.Shape, b.Shape), nil
}

// asFloat returns the elements of a numeric tensor as float32.
func asFloat(t *Tensor) []float32 {
	switch t.kind() {
	case kindFloat:
		return t.F32
	case kindInt:
		f := make([]float32, len(t.I64))
		for i, v := range t.I64 {
			f[i] = float32(v)
		}
		return f
	}
	f := make([]float32, len(t.Bool))
	for i, v := range t.Bool {
		if v {
			f[i] = 1
		}
	}
	return f
}

func opArith(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	b, err := c.need(1)
	if err != nil {
		return nil, err
	}
	op := c.op()
	if op != "Pow" {
		if err := sameKind(a, b); err != nil {
			return nil, err
		}
	}
	shape, p, err := binaryPlan(a, b)
	if err != nil {
		return nil, err
	}
	var out *Tensor
	if a.kind() == kindFloat && (b.kind() == kindFloat || op == "Pow") {
		out, err = c.outFor(a.DType, shape, 0, 1) // element-wise: in place over a dying operand
	} else {
		out, err = c.e.alloc(a.DType, shape)
	}
	if err != nil {
		return nil, err
	}
	fmod := c.attrInt("fmod", 0) != 0
	switch a.kind() {
	case kindFloat:
		if op == "Pow" {
			return []*Tensor{out}, powFloat(out.F32, a.F32, asFloat(b), p)
		}
		var f func(x, y float32) float32
		switch op {
		case "Add":
			f = func(x, y float32) float32 { return x + y }
		case "Sub":
			f = func(x, y float32) float32 { return x - y }
		case "Mul":
			f = func(x, y float32) float32 { return x * y }
		case "Div":
			f = func(x, y float32) float32 { return x / y }
		case "Mod":
			f = func(x, y float32) float32 {
				r := math.Mod(float64(x), float64(y))
				if !fmod && r != 0 && (r < 0) != (y < 0) {
					r += float64(y)
				}
				return float32(r)
			}
		}
		if op == "Mod" {
			mapBinary(out.F32, a.F32, b.F32, p, f)
		} else {
			arithF32(op[0], out.F32, a.F32, b.F32, p) // the same operations, without a call per element
		}
	case kindInt:
		var bi []int64
		if b.kind() == kindInt {
			bi = b.I64
		} else if op == "Pow" {
			fb := asFloat(b)
			fa := asFloat(a)
			tmp := make([]float32, len(out.I64))
			if err := powFloat(tmp, fa, fb, p); err != nil {
				return nil, err
			}
			for i, v := range tmp {
				out.I64[i] = int64(v)
			}
			return []*Tensor{out}, nil
		} else {
			return nil, fmt.Errorf("%w: %s of %s and %s", ErrInvalid, op, a.DType, b.DType)
		}
		var divErr error
		var f func(x, y int64) int64
		switch op {
		case "Add":
			f = func(x, y int64) int64 { return x + y }
		case "Sub":
			f = func(x, y int64) int64 { return x - y }
		case "Mul":
			f = func(x, y int64) int64 { return x * y }
		case "Div":
			f = func(x, y int64) int64 {
				if y == 0 {
					divErr = fmt.Errorf("%w: integer division by zero", ErrInvalid)
					return 0
				}
				return x / y
			}
		case "Mod":
			f = func(x, y int64) int64 {
				if y == 0 {
					divErr = fmt.Errorf("%w: integer modulo by zero", ErrInvalid)
					return 0
				}
				r := x % y
				if !fmod && r != 0 && (r < 0) != (y < 0) {
					r += y
				}
				return r
			}
		case "Pow":
			f = powInt
		}
		mapBinary(out.I64, a.I64, bi, p, f)
		if divErr != nil {
			return nil, divErr
		}
	default:
		return nil, fmt.Errorf("%w: %s of %s", ErrInvalid, op, a.DType)
	}
	return []*Tensor{out}, nil
}

// arithF32 is mapBinary for Add ('A'), Sub ('S'), Mul ('M') and Div
// ('D') of float32 operands, with a loop per operator and operand steps.
func arithF32(op byte, dst, a, b []float32, p bplan) {
	o := 0
	p.run(func(offs []int, n int, steps []int) {
		d := dst[o : o+n]
		o += n
		ia, ib := offs[0], offs[1]
		switch {
		case steps[0] == 1 && steps[1] == 1:
			x, y := a[ia:ia+n], b[ib:ib+n]
			switch op {
			case 'A':
				for i := range d {
					d[i] = x[i] + y[i]
				}
			case 'S':
				for i := range d {
					d[i] = x[i] - y[i]
				}
			case 'M':
				for i := range d {
					d[i] = x[i] * y[i]
				}
			default:
				for i := range d {
					d[i] = x[i] / y[i]
				}
			}
		case steps[0] == 1 && steps[1] == 0:
			x, y := a[ia:ia+n], b[ib]
			switch op {
			case 'A':
				for i := range d {
					d[i] = x[i] + y
				}
			case 'S':
				for i := range d {
					d[i] = x[i] - y
				}
			case 'M':
				for i := range d {
					d[i] = x[i] * y
				}
			default:
				for i := range d {
					d[i] = x[i] / y
				}
			}
		default:
			sa, sb := steps[0], steps[1]
			for i := range d {
				x, y := a[ia], b[ib]
				switch op {
				case 'A':
					d[i] = x + y
				case 'S':
					d[i] = x - y
				case 'M':
					d[i] = x * y
				default:
					d[i] = x / y
				}
				ia += sa
				ib += sb
			}
		}
	})
}

// powFloat computes x^y with exact fast paths for the squares and square
// roots of normalization layers.
func powFloat(dst, a, b []float32, p bplan) error {
	mapBinary(dst, a, b, p, func(x, y float32) float32 {
		switch y {
		case 2:
			return x * x
		case 1:
			return x
		case 0.5:
			return float32(math.Sqrt(float64(x)))
		case 3:
			return float32(float64(x) * float64(x) * float64(x))
		}
		return float32(math.Pow(float64(x), float64(y)))
	})
	return nil
}

func powInt(x, y int64) int64 {
	if y < 0 {
		switch x {
		case 1:
			return 1
		case -1:
			if y%2 == 0 {
				return 1
			}
			return -1
		}
		return 0
	}
	r := int64(1)
	for y > 0 {
		if y&1 != 0 {
			r *= x
		}
		x *= x
		y >>= 1
	}
	return r
}

// opVariadic implements Max, Min, Sum and Mean over any number of inputs.
func opVariadic(c *call) ([]*Tensor, error) {
	var acc *Tensor
	n := 0
	for i := range c.in {
		t := c.input(i)
		if t == nil {
			continue
		}
		n++
		if acc == nil {
			cp, err := c.e.alloc(t.DType, t.Shape)
			if err != nil {
				return nil, err
			}
			copy(cp.F32, t.F32)
			copy(cp.I64, t.I64)
			acc = cp
			continue
		}
		if err := sameKind(acc, t); err != nil {
			return nil, err
		}
		shape, p, err := binaryPlan(acc, t)
		if err != nil {
			return nil, err
		}
		out, err := c.e.alloc(acc.DType, shape)
		if err != nil {
			return nil, err
		}
		switch acc.kind() {
		case kindFloat:
			var f func(x, y float32) float32
			switch c.op() {
			case "Max":
				f = func(x, y float32) float32 {
					if x != x || y != y {
						return float32(math.NaN())
					}
					return max(x, y)
				}
			case "Min":
				f = func(x, y float32) float32 {
					if x != x || y != y {
						return float32(math.NaN())
					}
					return min(x, y)
				}
			default:
				f = func(x, y float32) float32 { return x + y }
			}
			mapBinary(out.F32, acc.F32, t.F32, p, f)
		case kindInt:
			var f func(x, y int64) int64
			switch c.op() {
			case "Max":
				f = func(x, y int64) int64 { return max(x, y) }
			case "Min":
				f = func(x, y int64) int64 { return min(x, y) }
			default:
				f = func(x, y int64) int64 { return x + y }
			}
			mapBinary(out.I64, acc.I64, t.I64, p, f)
		default:
			return nil, fmt.Errorf("%w: %s of %s", ErrInvalid, c.op(), t.DType)
		}
		acc = out
	}
	if acc == nil {
		return nil, fmt.Errorf("%w: %s without inputs", ErrInvalid, c.op())
	}
	if c.op() == "Mean" {
		if acc.kind() != kindFloat {
			return nil, fmt.Errorf("%w: Mean of %s", ErrInvalid, acc.DType)
		}
		for i := range acc.F32 {
			acc.F32[i] /= float32(n)
		}
	}
	return []*Tensor{acc}, nil
}

func opCompare(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	b, err := c.need(1)
	if err != nil {
		return nil, err
	}
	if err := sameKind(a, b); err != nil {
		return nil, err
	}
	shape, p, err := binaryPlan(a, b)
	if err != nil {
		return nil, err
	}
	out, err := c.e.alloc(tensor.BOOL, shape)
	if err != nil {
		return nil, err
	}
	op := c.op()
	switch a.kind() {
	case kindFloat:
		mapBinary(out.Bool, a.F32, b.F32, p, cmpFunc[float32](op))
	case kindInt:
		mapBinary(out.Bool, a.I64, b.I64, p, cmpFunc[int64](op))
	case kindBool:
		if op != "Equal" {
			return nil, fmt.Errorf("%w: %s of BOOL", ErrInvalid, op)
		}
		mapBinary(out.Bool, a.Bool, b.Bool, p, func(x, y bool) bool { return x == y })
	}
	return []*Tensor{out}, nil
}

func cmpFunc[T float32 | int64](op string) func(x, y T) bool {
	switch op {
	case "Less":
		return func(x, y T) bool { return x < y }
	case "Greater":
		return func(x, y T) bool { return x > y }
	case "LessOrEqual":
		return func(x, y T) bool { return x <= y }
	case "GreaterOrEqual":
		return func(x, y T) bool { return x >= y }
	}
	return func(x, y T) bool { return x == y }
}

func opLogical(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	b, err := c.need(1)
	if err != nil {
		return nil, err
	}
	if a.kind() != kindBool || b.kind() != kindBool {
		return nil, fmt.Errorf("%w: %s of %s and %s", ErrInvalid, c.op(), a.DType, b.DType)
	}
	shape, p, err := binaryPlan(a, b)
	if err != nil {
		return nil, err
	}
	out, err := c.e.alloc(tensor.BOOL, shape)
	if err != nil {
		return nil, err
	}
	f := func(x, y bool) bool { return x && y }
	switch c.op() {
	case "Or":
		f = func(x, y bool) bool { return x || y }
	case "Xor":
		f = func(x, y bool) bool { return x != y }
	}
	mapBinary(out.Bool, a.Bool, b.Bool, p, f)
	return []*Tensor{out}, nil
}

func opNot(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	if a.kind() != kindBool {
		return nil, fmt.Errorf("%w: Not of %s", ErrInvalid, a.DType)
	}
	out, err := c.e.alloc(tensor.BOOL, a.Shape)
	if err != nil {
		return nil, err
	}
	for i, v := range a.Bool {
		out.Bool[i] = !v
	}
	return []*Tensor{out}, nil
}

func opWhere(c *call) ([]*Tensor, error) {
	cond, err := c.need(0)
	if err != nil {
		return nil, err
	}
	x, err := c.need(1)
	if err != nil {
		return nil, err
	}
	y, err := c.need(2)
	if err != nil {
		return nil, err
	}
	if cond.kind() != kindBool {
		return nil, fmt.Errorf("%w: Where condition of dtype %s", ErrInvalid, cond.DType)
	}
	if err := sameKind(x, y); err != nil {
		return nil, err
	}
	shape, err := broadcastShapes(cond.Shape, x.Shape, y.Shape)
	if err != nil {
		return nil, err
	}
	out, err := c.e.alloc(x.DType, shape)
	if err != nil {
		return nil, err
	}
	p := planBroadcast(shape, cond.Shape, x.Shape, y.Shape)
	switch x.kind() {
	case kindFloat:
		where(out.F32, cond.Bool, x.F32, y.F32, p)
	case kindInt:
		where(out.I64, cond.Bool, x.I64, y.I64, p)
	default:
		where(out.Bool, cond.Bool, x.Bool, y.Bool, p)
	}
	return []*Tensor{out}, nil
}

func where[T any](dst []T, cond []bool, x, y []T, p bplan) {
	o := 0
	p.run(func(offs []int, n int, steps []int) {
		ic, ix, iy := offs[0], offs[1], offs[2]
		for k := 0; k < n; k++ {
			if cond[ic] {
				dst[o] = x[ix]
			} else {
				dst[o] = y[iy]
			}
			o++
			ic += steps[0]
			ix += steps[1]
			iy += steps[2]
		}
	})
}

func opUnary(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	op := c.op()
	out, err := c.outFor(a.DType, a.Shape, 0)
	if err != nil {
		return nil, err
	}
	if a.kind() == kindInt {
		var f func(int64) int64
		switch op {
		case "Neg":
			f = func(x int64) int64 { return -x }
		case "Abs":
			f = func(x int64) int64 {
				if x < 0 {
					return -x
				}
				return x
			}
		case "Relu":
			f = func(x int64) int64 { return max(x, 0) }
		case "Sign":
			f = func(x int64) int64 {
				switch {
				case x > 0:
					return 1
				case x < 0:
					return -1
				}
				return 0
			}
		default:
			return nil, fmt.Errorf("%w: %s of %s", ErrInvalid, op, a.DType)
		}
		for i, v := range a.I64 {
			out.I64[i] = f(v)
		}
		return []*Tensor{out}, nil
	}
	if a.kind() != kindFloat {
		return nil, fmt.Errorf("%w: %s of %s", ErrInvalid, op, a.DType)
	}
	var f func(float64) float64
	switch op {
	case "Sqrt":
		f = math.Sqrt
	case "Reciprocal":
		f = func(x float64) float64 { return 1 / x }
	case "Exp":
		f = math.Exp
	case "Log":
		f = math.Log
	case "Tanh":
		f = math.Tanh
	case "Erf":
		f = math.Erf
	case "Sigmoid":
		f = func(x float64) float64 { return 1 / (1 + math.Exp(-x)) }
	case "Sin":
		f = math.Sin
	case "Cos":
		f = math.Cos
	case "Floor":
		f = math.Floor
	case "Ceil":
		f = math.Ceil
	case "Round":
		f = math.RoundToEven
	case "Softplus":
		f = func(x float64) float64 {
			if x > 30 {
				return x
			}
			return math.Log1p(math.Exp(x))
		}
	case "Relu":
		f = func(x float64) float64 { return max(x, 0) }
	case "Neg":
		f = func(x float64) float64 { return -x }
	case "Abs":
		f = math.Abs
	case "Sign":
		f = func(x float64) float64 {
			switch {
			case x > 0:
				return 1
			case x < 0:
				return -1
			}
			return x // ±0 and NaN
		}
	case "Gelu":
		switch approx := c.attrString("approximate", "none"); approx {
		case "none":
			f = func(x float64) float64 { return 0.5 * x * (1 + math.Erf(x/math.Sqrt2)) }
		case "tanh":
			f = func(x float64) float64 {
				return 0.5 * x * (1 + math.Tanh(math.Sqrt(2/math.Pi)*(x+0.044715*x*x*x)))
			}
		default:
			return nil, fmt.Errorf("%w: Gelu approximate=%q", ErrUnsupported, approx)
		}
	}
	for i, v := range a.F32 {
		out.F32[i] = float32(f(float64(v)))
	}
	return []*Tensor{out}, nil
}

func opIsNaN(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	out, err := c.e.alloc(tensor.BOOL, a.Shape)
	if err != nil {
		return nil, err
	}
	if a.kind() != kindFloat {
		return []*Tensor{out}, nil // integers are never NaN or infinite
	}
	neg, pos := c.attrInt("detect_negative", 1) != 0, c.attrInt("detect_positive", 1) != 0
	for i, v := range a.F32 {
		if c.op() == "IsNaN" {
			out.Bool[i] = v != v
		} else {
			out.Bool[i] = math.IsInf(float64(v), 1) && pos || math.IsInf(float64(v), -1) && neg
		}
	}
	return []*Tensor{out}, nil
}

func opClip(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	lo, hi := math.Inf(-1), math.Inf(1)
	if c.n.ver < 11 {
		lo = float64(c.attrFloat("min", float32(math.Inf(-1))))
		hi = float64(c.attrFloat("max", float32(math.Inf(1))))
	} else {
		if t := c.input(1); t != nil {
			if lo, err = scalarFloat64(t, "Clip min"); err != nil {
				return nil, err
			}
		}
		if t := c.input(2); t != nil {
			if hi, err = scalarFloat64(t, "Clip max"); err != nil {
				return nil, err
			}
		}
	}
	out, err := c.e.alloc(a.DType, a.Shape)
	if err != nil {
		return nil, err
	}
	switch a.kind() {
	case kindFloat:
		l, h := float32(lo), float32(hi)
		for i, v := range a.F32 {
			out.F32[i] = min(max(v, l), h)
			if v != v {
				out.F32[i] = v
			}
		}
	case kindInt:
		for i, v := range a.I64 {
			x := float64(v)
			switch {
			case x < lo:
				out.I64[i] = int64(lo)
			case x > hi:
				out.I64[i] = int64(hi)
			default:
				out.I64[i] = v
			}
		}
	default:
		return nil, fmt.Errorf("%w: Clip of %s", ErrInvalid, a.DType)
	}
	return []*Tensor{out}, nil
}

// opCast implements Cast and CastLike. Float to integer truncates toward
// zero (NaN gives 0); integers wrap to the target width; to BOOL is x ≠ 0;
// float targets round to their precision.
func opCast(c *call) ([]*Tensor, error) {
	a, err := c.need(0)
	if err != nil {
		return nil, err
	}
	var to tensor.DType
	if c.op() == "CastLike" {
		like, err := c.need(1)
		if err != nil {
			return nil, err
		}
		to = like.DType
	} else {
		if c.attr("to") == nil {
			return nil, fmt.Errorf("%w: Cast without a to attribute", ErrInvalid)
		}
		to = onnx.DType(int32(c.attrInt("to", 0)))
	}
	if kindOf(to) == kindNone {
		return nil, fmt.Errorf("%w: Cast to %s", ErrUnsupported, to)
	}
	out, err := c.e.alloc(to, a.Shape)
	if err != nil {
		return nil, err
	}
	switch kindOf(to) {
	case kindFloat:
		switch a.kind() {
		case kindFloat:
			copy(out.F32, a.F32)
		case kindInt:
			for i, v := range a.I64 {
				out.F32[i] = float32(v)
			}
		case kindBool:
			for i, v := range a.Bool {
				if v {
					out.F32[i] = 1
				}
			}
		}
	case kindInt:
		switch a.kind() {
		case kindFloat:
			for i, v := range a.F32 {
				out.I64[i] = wrapInt(to, floatToInt(v))
			}
		case kindInt:
			for i, v := range a.I64 {
				out.I64[i] = wrapInt(to, v)
			}
		case kindBool:
			for i, v := range a.Bool {
				if v {
					out.I64[i] = 1
				}
			}
		}
	case kindBool:
		switch a.kind() {
		case kindFloat:
			for i, v := range a.F32 {
				out.Bool[i] = v != 0
			}
		case kindInt:
			for i, v := range a.I64 {
				out.Bool[i] = v != 0
			}
		case kindBool:
			copy(out.Bool, a.Bool)
		}
	}
	return []*Tensor{out}, nil
}

func floatToInt(v float32) int64 {
	switch {
	case v != v:
		return 0
	case v >= 9.223372e18:
		return math.MaxInt64
	case v <= -9.223372e18:
		return math.MinInt64
	}
	return int64(v)
}

// wrapInt reduces v to the range of integer dtype d, as a C cast does.
func wrapInt(d tensor.DType, v int64) int64 {
	switch d {
	case tensor.I32:
		return int64(int32(v))
	case tensor.U32:
		return int64(uint32(v))
	case tensor.I16:
		return int64(int16(v))
	case tensor.U16:
		return int64(uint16(v))
	case tensor.I8:
		return int64(int8(v))
	case tensor.U8:
		return int64(uint8(v))
	}
	return v
}
