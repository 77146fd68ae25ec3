package run

import (
	"fmt"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
)

// impl is an operator implementation.
type impl struct {
	fn func(c *call) ([]*Tensor, error)
	// moves is set for operators that only move or select elements, whose
	// float outputs need no rounding to F16/BF16.
	moves bool
}

// call is one execution of a node.
type call struct {
	e  *exec
	n  *node
	in []*Tensor
	m  *onnx.Model // set while constants are folded in Load
}

// implFor returns the implementation of a default-domain operator, or a
// zero impl when it is not implemented.
func implFor(op string) impl {
	c := func(f func(c *call) ([]*Tensor, error)) impl { return impl{fn: f} }
	mv := func(f func(c *call) ([]*Tensor, error)) impl { return impl{fn: f, moves: true} }
	switch op {
	// Element-wise arithmetic with broadcasting.
	case "Add", "Sub", "Mul", "Div", "Pow", "Mod":
		return c(opArith)
	case "Max", "Min", "Sum", "Mean":
		return c(opVariadic)
	case "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual":
		return c(opCompare)
	case "And", "Or", "Xor":
		return c(opLogical)
	case "Not":
		return c(opNot)
	case "Where":
		return mv(opWhere)
	case "Sqrt", "Reciprocal", "Exp", "Log", "Tanh", "Erf", "Sigmoid", "Sin", "Cos",
		"Floor", "Ceil", "Round", "Softplus", "Gelu", "Relu", "Neg", "Abs", "Sign":
		return c(opUnary)
	case "IsNaN", "IsInf":
		return c(opIsNaN)
	case "Clip":
		return c(opClip)
	case "Cast", "CastLike":
		return c(opCast)
	// Linear algebra and normalization.
	case "MatMul":
		return c(opMatMul)
	case "Gemm":
		return c(opGemm)
	case "Softmax", "LogSoftmax":
		return c(opSoftmax)
	case "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceSumSquare":
		return c(opReduce)
	case "LayerNormalization":
		return c(opLayerNorm)
	case "CumSum":
		return c(opCumSum)
	// Shapes and data movement.
	case "Identity", "Dropout":
		return mv(opIdentity)
	case "Constant":
		return mv(opConstant)
	case "ConstantOfShape":
		return mv(opConstantOfShape)
	case "Shape":
		return mv(opShape)
	case "Size":
		return mv(opSize)
	case "Reshape":
		return mv(opReshape)
	case "Flatten":
		return mv(opFlatten)
	case "Squeeze":
		return mv(opSqueeze)
	case "Unsqueeze":
		return mv(opUnsqueeze)
	case "Transpose":
		return mv(opTranspose)
	case "Concat":
		return mv(opConcat)
	case "Split":
		return mv(opSplit)
	case "Slice":
		return mv(opSlice)
	case "Gather":
		return mv(opGather)
	case "Expand":
		return mv(opExpand)
	case "Tile":
		return mv(opTile)
	case "Range":
		return c(opRange)
	case "Trilu":
		return mv(opTrilu)
	case "ScatterND":
		return mv(opScatterND)
	case "Pad":
		return mv(opPad)
	}
	return impl{}
}

// Ops returns the operators of the default ONNX domain the executor
// implements, sorted.
func Ops() []string {
	return []string{
		"Abs", "Add", "And", "Cast", "CastLike", "Ceil", "Clip", "Concat", "Constant",
		"ConstantOfShape", "Cos", "CumSum", "Div", "Dropout", "Equal", "Erf", "Exp", "Expand",
		"Flatten", "Floor", "Gather", "Gelu", "Gemm", "Greater", "GreaterOrEqual", "Identity",
		"IsInf", "IsNaN", "LayerNormalization", "Less", "LessOrEqual", "Log", "LogSoftmax",
		"MatMul", "Max", "Mean", "Min", "Mod", "Mul", "Neg", "Not", "Or", "Pad", "Pow", "Range",
		"Reciprocal", "ReduceMax", "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum",
		"ReduceSumSquare", "Relu", "Reshape", "Round", "ScatterND", "Shape", "Sigmoid", "Sign", "Sin",
		"Size", "Slice", "Softmax", "Softplus", "Split", "Sqrt", "Squeeze", "Sub", "Sum",
		"Tanh", "Tile", "Transpose", "Trilu", "Unsqueeze", "Where", "Xor",
	}
}

func (c *call) op() string { return c.n.pb.GetOpType() }

// input returns input i, nil when omitted or absent.
func (c *call) input(i int) *Tensor {
	if i < len(c.in) {
		return c.in[i]
	}
	return nil
}

// need returns input i, failing when it is missing.
func (c *call) need(i int) (*Tensor, error) {
	t := c.input(i)
	if t == nil {
		return nil, fmt.Errorf("%w: input %d is missing", ErrInvalid, i)
	}
	return t, nil
}

func (c *call) attr(name string) *onnxpb.AttributeProto {
	for _, a := range c.n.pb.GetAttribute() {
		if a.GetName() == name {
			return a
		}
	}
	return nil
}

func (c *call) attrInt(name string, def int64) int64 {
	if a := c.attr(name); a != nil {
		return a.GetI()
	}
	return def
}

func (c *call) attrFloat(name string, def float32) float32 {
	if a := c.attr(name); a != nil {
		return a.GetF()
	}
	return def
}

func (c *call) attrString(name, def string) string {
	if a := c.attr(name); a != nil {
		return string(a.GetS())
	}
	return def
}

// attrTensor returns the TENSOR attribute name, decoded when the session
// was loaded.
func (c *call) attrTensor(name string) (*Tensor, error) {
	if t, ok := c.n.tensors[name]; ok {
		return t, nil
	}
	a := c.attr(name)
	if a == nil || a.GetT() == nil {
		return nil, fmt.Errorf("%w: no tensor attribute %q", ErrInvalid, name)
	}
	if c.m == nil {
		return nil, fmt.Errorf("%w: tensor attribute %q was not decoded", ErrInvalid, name)
	}
	dt, shape, data, err := c.m.TensorData(a.GetT())
	if err != nil {
		return nil, err
	}
	return fromBytes(dt, shape, data)
}

func (c *call) attrInts(name string) ([]int64, bool) {
	if a := c.attr(name); a != nil {
		return a.GetInts(), true
	}
	return nil, false
}

// axesInput returns axes given as an attribute (before opset since) or as
// input i (from opset since on); ok is false when there are none.
func (c *call) axesInput(since int64, i int) ([]int64, bool, error) {
	if c.n.ver < since {
		v, ok := c.attrInts("axes")
		return v, ok, nil
	}
	t := c.input(i)
	if t == nil {
		return nil, false, nil
	}
	v, err := ints(t, "axes")
	return v, true, err
}

// sameKind checks that all present inputs share a kind of dtype.
func sameKind(ts ...*Tensor) error {
	var k kind
	var d tensor.DType
	for _, t := range ts {
		if t == nil {
			continue
		}
		if k == kindNone {
			k, d = t.kind(), t.DType
			continue
		}
		if t.kind() != k {
			return fmt.Errorf("%w: operands of dtypes %s and %s", ErrInvalid, d, t.DType)
		}
	}
	return nil
}

// roundFloat rounds the elements of an F16 or BF16 tensor to its precision.
func roundFloat(t *Tensor) {
	switch t.DType {
	case tensor.F16:
		for i, v := range t.F32 {
			t.F32[i] = tensor.F16ToF32(tensor.F32ToF16(v))
		}
	case tensor.BF16:
		for i, v := range t.F32 {
			t.F32[i] = tensor.BF16ToF32(tensor.F32ToBF16(v))
		}
	}
}
