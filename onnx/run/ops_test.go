package run

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
)

type opCase struct {
	name   string
	op     string
	ver    int64
	attrs  []*onnxpb.AttributeProto
	in     []*Tensor
	consts []bool
	want   []*Tensor
	tol    float64
}

func sigmoid(x float64) float32 { return float32(1 / (1 + math.Exp(-x))) }

func opCases() []opCase {
	nan := float32(math.NaN())
	return []opCase{
		// Broadcasting arithmetic.
		{name: "Add row", op: "Add", ver: 14, in: []*Tensor{f32(sh(2, 3), 1, 2, 3, 4, 5, 6), f32(sh(3), 10, 20, 30)},
			want: []*Tensor{f32(sh(2, 3), 11, 22, 33, 14, 25, 36)}},
		{name: "Add outer", op: "Add", ver: 14, in: []*Tensor{f32(sh(2, 1), 1, 2), f32(sh(1, 3), 10, 20, 30)},
			want: []*Tensor{f32(sh(2, 3), 11, 21, 31, 12, 22, 32)}},
		{name: "Add scalar int64", op: "Add", ver: 14, in: []*Tensor{i64(sh(3), 1, 2, 3), i64(nil, -1)},
			want: []*Tensor{i64(sh(3), 0, 1, 2)}},
		{name: "Add middle broadcast", op: "Add", ver: 14, in: []*Tensor{f32(sh(2, 1, 2), 1, 2, 3, 4), f32(sh(3, 1), 10, 20, 30)},
			want: []*Tensor{f32(sh(2, 3, 2), 11, 12, 21, 22, 31, 32, 13, 14, 23, 24, 33, 34)}},
		{name: "Sub", op: "Sub", ver: 14, in: []*Tensor{f32(sh(2), 5, 1), f32(sh(2, 1), 1, 2)},
			want: []*Tensor{f32(sh(2, 2), 4, 0, 3, -1)}},
		{name: "Mul int64", op: "Mul", ver: 14, in: []*Tensor{i64(sh(2, 2), 1, 2, 3, 4), i64(sh(2), -1, 2)},
			want: []*Tensor{i64(sh(2, 2), -1, 4, -3, 8)}},
		{name: "Div float", op: "Div", ver: 14, in: []*Tensor{f32(sh(3), 1, -3, 0), f32(nil, 2)},
			want: []*Tensor{f32(sh(3), 0.5, -1.5, 0)}},
		{name: "Div int truncates", op: "Div", ver: 14, in: []*Tensor{i64(sh(3), 7, -7, 6), i64(nil, 2)},
			want: []*Tensor{i64(sh(3), 3, -3, 3)}},
		{name: "Mod int sign of divisor", op: "Mod", ver: 13, in: []*Tensor{i64(sh(3), -7, 7, 5), i64(sh(3), 2, -2, 5)},
			want: []*Tensor{i64(sh(3), 1, -1, 0)}},
		{name: "Mod float fmod", op: "Mod", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("fmod", 1)},
			in: []*Tensor{f32(sh(2), -7.5, 7.5), f32(nil, 2)}, want: []*Tensor{f32(sh(2), -1.5, 1.5)}},
		{name: "Pow square", op: "Pow", ver: 15, in: []*Tensor{f32(sh(3), 1, -2, 3), f32(nil, 2)},
			want: []*Tensor{f32(sh(3), 1, 4, 9)}},
		{name: "Pow int exponent", op: "Pow", ver: 15, in: []*Tensor{f32(sh(2), 2, 4), i64(sh(2), 3, -1)},
			want: []*Tensor{f32(sh(2), 8, 0.25)}},
		{name: "Pow int base", op: "Pow", ver: 15, in: []*Tensor{i64(sh(2), 2, 3), i64(nil, 3)},
			want: []*Tensor{i64(sh(2), 8, 27)}},
		{name: "Max variadic", op: "Max", ver: 13, in: []*Tensor{f32(sh(3), 1, 5, 2), f32(nil, 3), f32(sh(1), 0)},
			want: []*Tensor{f32(sh(3), 3, 5, 3)}},
		{name: "Min int", op: "Min", ver: 13, in: []*Tensor{i64(sh(2), 1, 5), i64(sh(2, 1), 3, 0)},
			want: []*Tensor{i64(sh(2, 2), 1, 3, 0, 0)}},
		{name: "Sum", op: "Sum", ver: 13, in: []*Tensor{f32(sh(2), 1, 2), f32(sh(2), 3, 4), f32(nil, 1)},
			want: []*Tensor{f32(sh(2), 5, 7)}},
		// Unary.
		{name: "Sqrt", op: "Sqrt", ver: 13, in: []*Tensor{f32(sh(3), 4, 2, 0)}, want: []*Tensor{f32(sh(3), 2, float32(math.Sqrt2), 0)}, tol: 1e-7},
		{name: "Reciprocal", op: "Reciprocal", ver: 13, in: []*Tensor{f32(sh(2), 4, -0.5)}, want: []*Tensor{f32(sh(2), 0.25, -2)}},
		{name: "Neg int", op: "Neg", ver: 13, in: []*Tensor{i64(sh(2), 4, -5)}, want: []*Tensor{i64(sh(2), -4, 5)}},
		{name: "Neg float", op: "Neg", ver: 13, in: []*Tensor{f32(sh(2), 4, -5)}, want: []*Tensor{f32(sh(2), -4, 5)}},
		{name: "Exp", op: "Exp", ver: 13, in: []*Tensor{f32(sh(2), 0, 1)}, want: []*Tensor{f32(sh(2), 1, float32(math.E))}, tol: 1e-7},
		{name: "Tanh", op: "Tanh", ver: 13, in: []*Tensor{f32(sh(2), 0, 0.5)}, want: []*Tensor{f32(sh(2), 0, float32(math.Tanh(0.5)))}, tol: 1e-7},
		{name: "Erf", op: "Erf", ver: 13, in: []*Tensor{f32(sh(2), 0, 1)}, want: []*Tensor{f32(sh(2), 0, float32(math.Erf(1)))}, tol: 1e-7},
		{name: "Sigmoid", op: "Sigmoid", ver: 13, in: []*Tensor{f32(sh(3), 0, 2, -30)}, want: []*Tensor{f32(sh(3), 0.5, sigmoid(2), sigmoid(-30))}, tol: 1e-7},
		{name: "Gelu tanh", op: "Gelu", ver: 20, attrs: []*onnxpb.AttributeProto{aStr("approximate", "tanh")}, in: []*Tensor{f32(sh(2), 0, 1)},
			want: []*Tensor{f32(sh(2), 0, float32(0.5*(1+math.Tanh(math.Sqrt(2/math.Pi)*(1+0.044715)))))}, tol: 1e-7},
		{name: "Relu Abs", op: "Relu", ver: 14, in: []*Tensor{f32(sh(2), -1, 2)}, want: []*Tensor{f32(sh(2), 0, 2)}},
		{name: "Clip inputs", op: "Clip", ver: 13, in: []*Tensor{f32(sh(3), -2, 0.5, 9), f32(nil, -1), f32(nil, 1)}, want: []*Tensor{f32(sh(3), -1, 0.5, 1)}},
		{name: "Clip attrs", op: "Clip", ver: 7, attrs: []*onnxpb.AttributeProto{aFloat("min", 0)}, in: []*Tensor{f32(sh(2), -2, 3)}, want: []*Tensor{f32(sh(2), 0, 3)}},
		// Comparisons and logic.
		{name: "Equal int", op: "Equal", ver: 13, in: []*Tensor{i64(sh(3), 1, 2, 3), i64(nil, 2)}, want: []*Tensor{bl(sh(3), false, true, false)}},
		{name: "Equal float NaN", op: "Equal", ver: 13, in: []*Tensor{f32(sh(2), 1, nan), f32(sh(2), 1, nan)}, want: []*Tensor{bl(sh(2), true, false)}},
		{name: "Equal bool", op: "Equal", ver: 13, in: []*Tensor{bl(sh(2), true, false), bl(nil, false)}, want: []*Tensor{bl(sh(2), false, true)}},
		{name: "Less", op: "Less", ver: 13, in: []*Tensor{f32(sh(2), 1, 3), f32(nil, 2)}, want: []*Tensor{bl(sh(2), true, false)}},
		{name: "GreaterOrEqual", op: "GreaterOrEqual", ver: 16, in: []*Tensor{i64(sh(3), 1, 2, 3), i64(nil, 2)}, want: []*Tensor{bl(sh(3), false, true, true)}},
		{name: "And", op: "And", ver: 7, in: []*Tensor{bl(sh(2), true, true), bl(sh(2, 1), true, false)}, want: []*Tensor{bl(sh(2, 2), true, true, false, false)}},
		{name: "Not", op: "Not", ver: 7, in: []*Tensor{bl(sh(2), true, false)}, want: []*Tensor{bl(sh(2), false, true)}},
		{name: "Where broadcast", op: "Where", ver: 16, in: []*Tensor{bl(sh(2, 1), true, false), f32(sh(3), 1, 2, 3), f32(nil, -1)},
			want: []*Tensor{f32(sh(2, 3), 1, 2, 3, -1, -1, -1)}},
		{name: "Where int64", op: "Where", ver: 16, in: []*Tensor{bl(sh(2), false, true), i64(sh(2), 1, 2), i64(sh(2), 8, 9)},
			want: []*Tensor{i64(sh(2), 8, 2)}},
		// Cast.
		{name: "Cast float to int64 truncates", op: "Cast", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("to", 7)},
			in: []*Tensor{f32(sh(3), -1.7, 2.9, 0)}, want: []*Tensor{i64(sh(3), -1, 2, 0)}},
		{name: "Cast int64 to float", op: "Cast", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("to", 1)},
			in: []*Tensor{i64(sh(2), -3, 5)}, want: []*Tensor{f32(sh(2), -3, 5)}},
		{name: "Cast to bool", op: "Cast", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("to", 9)},
			in: []*Tensor{f32(sh(3), 0, 0.1, -2)}, want: []*Tensor{bl(sh(3), false, true, true)}},
		{name: "Cast int64 to int32 wraps", op: "Cast", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("to", 6)},
			in: []*Tensor{i64(sh(2), 1<<32+5, -1)}, want: []*Tensor{{DType: tensor.I32, Shape: sh(2), I64: []int64{5, -1}}}},
		{name: "Cast to float16 rounds", op: "Cast", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("to", 10)},
			in: []*Tensor{f32(sh(2), 1.0001, 65504)}, want: []*Tensor{{DType: tensor.F16, Shape: sh(2), F32: []float32{1, 65504}}}},
		{name: "Cast bool to int", op: "Cast", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("to", 7)},
			in: []*Tensor{bl(sh(2), true, false)}, want: []*Tensor{i64(sh(2), 1, 0)}},
		// Softmax and reductions.
		{name: "Softmax last axis", op: "Softmax", ver: 13, in: []*Tensor{f32(sh(2, 2), 0, 0, 0, float32(math.Log(3)))},
			want: []*Tensor{f32(sh(2, 2), 0.5, 0.5, 0.25, 0.75)}, tol: 1e-7},
		{name: "Softmax axis 0", op: "Softmax", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("axis", 0)}, in: []*Tensor{f32(sh(2, 2), 0, 1, 0, 1)},
			want: []*Tensor{f32(sh(2, 2), 0.5, 0.5, 0.5, 0.5)}, tol: 1e-7},
		{name: "Softmax opset 11 flattens", op: "Softmax", ver: 11, in: []*Tensor{f32(sh(1, 2, 2), 0, 0, 0, 0)},
			want: []*Tensor{f32(sh(1, 2, 2), 0.25, 0.25, 0.25, 0.25)}, tol: 1e-7},
		{name: "LogSoftmax", op: "LogSoftmax", ver: 13, in: []*Tensor{f32(sh(2), 0, 0)},
			want: []*Tensor{f32(sh(2), float32(-math.Ln2), float32(-math.Ln2))}, tol: 1e-7},
		{name: "ReduceMean attr axes", op: "ReduceMean", ver: 13, attrs: []*onnxpb.AttributeProto{aInts("axes", -1)},
			in: []*Tensor{f32(sh(2, 3), 1, 2, 3, 4, 5, 6)}, want: []*Tensor{f32(sh(2, 1), 2, 5)}},
		{name: "ReduceMean opset 18 input axes", op: "ReduceMean", ver: 18, attrs: []*onnxpb.AttributeProto{aInt("keepdims", 0)},
			in: []*Tensor{f32(sh(2, 3), 1, 2, 3, 4, 5, 6), i64(sh(1), 0)}, want: []*Tensor{f32(sh(3), 2.5, 3.5, 4.5)}},
		{name: "ReduceMean all", op: "ReduceMean", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("keepdims", 0)},
			in: []*Tensor{f32(sh(2, 2), 1, 2, 3, 6)}, want: []*Tensor{f32(nil, 3)}},
		{name: "ReduceSum opset 13 input, noop", op: "ReduceSum", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("noop_with_empty_axes", 1)},
			in: []*Tensor{f32(sh(2), 1, 2)}, want: []*Tensor{f32(sh(2), 1, 2)}},
		{name: "ReduceSum middle axis", op: "ReduceSum", ver: 13, in: []*Tensor{f32(sh(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8), i64(sh(1), 1)},
			want: []*Tensor{f32(sh(2, 1, 2), 4, 6, 12, 14)}},
		{name: "ReduceMax int64", op: "ReduceMax", ver: 13, attrs: []*onnxpb.AttributeProto{aInts("axes", 0), aInt("keepdims", 0)},
			in: []*Tensor{i64(sh(2, 2), 1, 9, 7, 3)}, want: []*Tensor{i64(sh(2), 7, 9)}},
		{name: "LayerNormalization", op: "LayerNormalization", ver: 17, attrs: []*onnxpb.AttributeProto{aFloat("epsilon", 0)},
			in:   []*Tensor{f32(sh(2, 2), 1, 3, 5, 5), f32(sh(2), 1, 2), f32(sh(2), 0, 1)},
			want: []*Tensor{f32(sh(2, 2), -1, 3, float32(math.NaN()), float32(math.NaN()))}, tol: 1e-6},
		{name: "LayerNormalization axis 0 eps", op: "LayerNormalization", ver: 17, attrs: []*onnxpb.AttributeProto{aInt("axis", 0)},
			in:   []*Tensor{f32(sh(2), 0, 2), f32(nil, 1)},
			want: []*Tensor{f32(sh(2), float32(-1/math.Sqrt(1+1e-5)), float32(1/math.Sqrt(1+1e-5)))}, tol: 1e-6},
		{name: "CumSum exclusive reverse", op: "CumSum", ver: 14, attrs: []*onnxpb.AttributeProto{aInt("exclusive", 1), aInt("reverse", 1)},
			in: []*Tensor{i64(sh(3), 1, 2, 3), i64(nil, 0)}, want: []*Tensor{i64(sh(3), 5, 3, 0)}},
		// Matrix products.
		{name: "MatMul 2-D", op: "MatMul", ver: 13, in: []*Tensor{f32(sh(2, 3), 1, 2, 3, 4, 5, 6), f32(sh(3, 2), 1, 0, 0, 1, 1, 1)},
			want: []*Tensor{f32(sh(2, 2), 4, 5, 10, 11)}},
		{name: "MatMul constant B", op: "MatMul", ver: 13, consts: []bool{false, true},
			in:   []*Tensor{f32(sh(1, 2, 3), 1, 2, 3, 4, 5, 6), f32(sh(3, 2), 1, 0, 0, 1, 1, 1)},
			want: []*Tensor{f32(sh(1, 2, 2), 4, 5, 10, 11)}},
		{name: "MatMul batch broadcast", op: "MatMul", ver: 13, in: []*Tensor{f32(sh(2, 1, 2), 1, 2, 3, 4), f32(sh(2, 1), 10, 1)},
			want: []*Tensor{f32(sh(2, 1, 1), 12, 34)}},
		{name: "MatMul batched both", op: "MatMul", ver: 13, in: []*Tensor{f32(sh(2, 1, 2), 1, 2, 3, 4), f32(sh(1, 2, 2, 1), 1, 1, 1, -1)},
			want: []*Tensor{f32(sh(1, 2, 1, 1), 3, -1)}},
		{name: "MatMul vector", op: "MatMul", ver: 13, in: []*Tensor{f32(sh(2), 1, 2), f32(sh(2, 3), 1, 2, 3, 4, 5, 6)},
			want: []*Tensor{f32(sh(3), 9, 12, 15)}},
		{name: "MatMul matrix vector", op: "MatMul", ver: 13, in: []*Tensor{f32(sh(2, 2), 1, 2, 3, 4), f32(sh(2), 1, 1)},
			want: []*Tensor{f32(sh(2), 3, 7)}},
		{name: "Gemm transA transB alpha beta", op: "Gemm", ver: 13,
			attrs: []*onnxpb.AttributeProto{aInt("transA", 1), aInt("transB", 1), aFloat("alpha", 2), aFloat("beta", 0.5)},
			in:    []*Tensor{f32(sh(2, 1), 1, 2), f32(sh(3, 2), 1, 0, 0, 1, 1, 1), f32(sh(3), 2, 4, 6)},
			want:  []*Tensor{f32(sh(1, 3), 3, 6, 9)}},
		{name: "Gemm constant B transB", op: "Gemm", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("transB", 1)}, consts: []bool{false, true, true},
			in:   []*Tensor{f32(sh(2, 2), 1, 2, 3, 4), f32(sh(1, 2), 1, 1), f32(nil, 1)},
			want: []*Tensor{f32(sh(2, 1), 4, 8)}},
		{name: "Gemm constant B", op: "Gemm", ver: 13, consts: []bool{false, true},
			in:   []*Tensor{f32(sh(1, 2), 1, 2), f32(sh(2, 3), 1, 2, 3, 4, 5, 6)},
			want: []*Tensor{f32(sh(1, 3), 9, 12, 15)}},
		// Shapes and data movement.
		{name: "Reshape 0 and -1", op: "Reshape", ver: 14, in: []*Tensor{f32(sh(2, 3, 2), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12), i64(sh(2), 0, -1)},
			want: []*Tensor{f32(sh(2, 6), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)}},
		{name: "Reshape allowzero", op: "Reshape", ver: 14, attrs: []*onnxpb.AttributeProto{aInt("allowzero", 1)},
			in: []*Tensor{f32(sh(0, 2)), i64(sh(2), 2, 0)}, want: []*Tensor{f32(sh(2, 0))}},
		{name: "Flatten", op: "Flatten", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("axis", -1)}, in: []*Tensor{i64(sh(2, 1, 2), 1, 2, 3, 4)},
			want: []*Tensor{i64(sh(2, 2), 1, 2, 3, 4)}},
		{name: "Transpose perm", op: "Transpose", ver: 13, attrs: []*onnxpb.AttributeProto{aInts("perm", 0, 2, 1)},
			in: []*Tensor{f32(sh(1, 2, 3), 1, 2, 3, 4, 5, 6)}, want: []*Tensor{f32(sh(1, 3, 2), 1, 4, 2, 5, 3, 6)}},
		{name: "Transpose default int64", op: "Transpose", ver: 13, in: []*Tensor{i64(sh(2, 3), 1, 2, 3, 4, 5, 6)},
			want: []*Tensor{i64(sh(3, 2), 1, 4, 2, 5, 3, 6)}},
		{name: "Transpose 4-D", op: "Transpose", ver: 13, attrs: []*onnxpb.AttributeProto{aInts("perm", 0, 2, 1, 3)},
			in:   []*Tensor{f32(sh(1, 2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8)},
			want: []*Tensor{f32(sh(1, 2, 2, 2), 1, 2, 5, 6, 3, 4, 7, 8)}},
		{name: "Concat axis -1", op: "Concat", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("axis", -1)},
			in: []*Tensor{f32(sh(2, 1), 1, 2), f32(sh(2, 2), 3, 4, 5, 6)}, want: []*Tensor{f32(sh(2, 3), 1, 3, 4, 2, 5, 6)}},
		{name: "Concat int64 with empty", op: "Concat", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("axis", 0)},
			in: []*Tensor{i64(sh(1), 1), i64(sh(0)), i64(sh(2), 2, 3)}, want: []*Tensor{i64(sh(3), 1, 2, 3)}},
		{name: "Split input sizes", op: "Split", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("axis", 1)},
			in:   []*Tensor{f32(sh(2, 3), 1, 2, 3, 4, 5, 6), i64(sh(2), 1, 2)},
			want: []*Tensor{f32(sh(2, 1), 1, 4), f32(sh(2, 2), 2, 3, 5, 6)}},
		{name: "Split attr sizes opset 11", op: "Split", ver: 11, attrs: []*onnxpb.AttributeProto{aInts("split", 2, 1)},
			in: []*Tensor{i64(sh(3), 7, 8, 9)}, want: []*Tensor{i64(sh(2), 7, 8), i64(sh(1), 9)}},
		{name: "Split equal", op: "Split", ver: 13, in: []*Tensor{f32(sh(4), 1, 2, 3, 4)},
			want: []*Tensor{f32(sh(2), 1, 2), f32(sh(2), 3, 4)}},
		{name: "Split num_outputs uneven", op: "Split", ver: 18, attrs: []*onnxpb.AttributeProto{aInt("num_outputs", 3)},
			in: []*Tensor{f32(sh(5), 1, 2, 3, 4, 5)}, want: []*Tensor{f32(sh(2), 1, 2), f32(sh(2), 3, 4), f32(sh(1), 5)}},
		{name: "Slice negative and clamped", op: "Slice", ver: 13,
			in:   []*Tensor{f32(sh(2, 4), 1, 2, 3, 4, 5, 6, 7, 8), i64(sh(2), -1, 1), i64(sh(2), math.MaxInt64, -1), i64(sh(2), 0, -1)},
			want: []*Tensor{f32(sh(1, 2), 6, 7)}},
		{name: "Slice negative step", op: "Slice", ver: 13,
			in:   []*Tensor{i64(sh(5), 0, 1, 2, 3, 4), i64(sh(1), -1), i64(sh(1), math.MinInt64), i64(sh(1), 0), i64(sh(1), -2)},
			want: []*Tensor{i64(sh(3), 4, 2, 0)}},
		{name: "Slice opset 9 attributes", op: "Slice", ver: 9,
			attrs: []*onnxpb.AttributeProto{aInts("starts", 1), aInts("ends", 1000), aInts("axes", 1)},
			in:    []*Tensor{f32(sh(2, 3), 1, 2, 3, 4, 5, 6)}, want: []*Tensor{f32(sh(2, 2), 2, 3, 5, 6)}},
		{name: "Slice empty", op: "Slice", ver: 13, in: []*Tensor{f32(sh(3), 1, 2, 3), i64(sh(1), 2), i64(sh(1), 1)},
			want: []*Tensor{f32(sh(0))}},
		{name: "Squeeze opset 11 attr", op: "Squeeze", ver: 11, attrs: []*onnxpb.AttributeProto{aInts("axes", -3)},
			in: []*Tensor{f32(sh(1, 2, 1), 1, 2)}, want: []*Tensor{f32(sh(2, 1), 1, 2)}},
		{name: "Squeeze opset 13 input", op: "Squeeze", ver: 13, in: []*Tensor{f32(sh(1, 2, 1), 1, 2), i64(sh(1), 2)},
			want: []*Tensor{f32(sh(1, 2), 1, 2)}},
		{name: "Squeeze all", op: "Squeeze", ver: 13, in: []*Tensor{i64(sh(1, 2, 1), 1, 2)}, want: []*Tensor{i64(sh(2), 1, 2)}},
		{name: "Unsqueeze opset 11 attr", op: "Unsqueeze", ver: 11, attrs: []*onnxpb.AttributeProto{aInts("axes", 0, -1)},
			in: []*Tensor{f32(sh(2), 1, 2)}, want: []*Tensor{f32(sh(1, 2, 1), 1, 2)}},
		{name: "Unsqueeze opset 13 input scalar", op: "Unsqueeze", ver: 13, in: []*Tensor{i64(nil, 7), i64(sh(1), 0)},
			want: []*Tensor{i64(sh(1), 7)}},
		{name: "Shape", op: "Shape", ver: 13, in: []*Tensor{zeros(2, 3, 4)}, want: []*Tensor{i64(sh(3), 2, 3, 4)}},
		{name: "Shape opset 15 start end", op: "Shape", ver: 15, attrs: []*onnxpb.AttributeProto{aInt("start", 1), aInt("end", -1)},
			in: []*Tensor{zeros(2, 3, 4)}, want: []*Tensor{i64(sh(1), 3)}},
		{name: "Size", op: "Size", ver: 13, in: []*Tensor{zeros(2, 3)}, want: []*Tensor{i64(nil, 6)}},
		{name: "Gather axis 0 negative index", op: "Gather", ver: 13, in: []*Tensor{f32(sh(3, 2), 1, 2, 3, 4, 5, 6), i64(sh(2), -1, 0)},
			want: []*Tensor{f32(sh(2, 2), 5, 6, 1, 2)}},
		{name: "Gather axis 1 2-D indices int64 data", op: "Gather", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("axis", 1)},
			in: []*Tensor{i64(sh(2, 3), 1, 2, 3, 4, 5, 6), i64(sh(1, 2), 2, 0)}, want: []*Tensor{i64(sh(2, 1, 2), 3, 1, 6, 4)}},
		{name: "Gather scalar index", op: "Gather", ver: 13, in: []*Tensor{i64(sh(3), 4, 5, 6), i64(nil, 1)}, want: []*Tensor{i64(nil, 5)}},
		{name: "Expand", op: "Expand", ver: 13, in: []*Tensor{f32(sh(2, 1), 1, 2), i64(sh(3), 2, 1, 3)},
			want: []*Tensor{f32(sh(2, 2, 3), 1, 1, 1, 2, 2, 2, 1, 1, 1, 2, 2, 2)}},
		{name: "Expand bool smaller shape", op: "Expand", ver: 13, in: []*Tensor{bl(sh(1, 2), true, false), i64(sh(1), 1)},
			want: []*Tensor{bl(sh(1, 2), true, false)}},
		{name: "Tile", op: "Tile", ver: 13, in: []*Tensor{i64(sh(1, 2), 1, 2), i64(sh(2), 2, 2)},
			want: []*Tensor{i64(sh(2, 4), 1, 2, 1, 2, 1, 2, 1, 2)}},
		{name: "Identity", op: "Identity", ver: 16, in: []*Tensor{bl(sh(1), true)}, want: []*Tensor{bl(sh(1), true)}},
		{name: "Range int", op: "Range", ver: 11, in: []*Tensor{i64(nil, 10), i64(nil, 3), i64(nil, -3)}, want: []*Tensor{i64(sh(3), 10, 7, 4)}},
		{name: "Range float", op: "Range", ver: 11, in: []*Tensor{f32(nil, 0), f32(nil, 1), f32(nil, 0.25)}, want: []*Tensor{f32(sh(4), 0, 0.25, 0.5, 0.75)}},
		{name: "Range empty", op: "Range", ver: 11, in: []*Tensor{i64(nil, 3), i64(nil, 3), i64(nil, 1)}, want: []*Tensor{i64(sh(0))}},
		{name: "ConstantOfShape default", op: "ConstantOfShape", ver: 9, in: []*Tensor{i64(sh(2), 1, 2)}, want: []*Tensor{f32(sh(1, 2), 0, 0)}},
		{name: "ConstantOfShape int64 value", op: "ConstantOfShape", ver: 9, attrs: []*onnxpb.AttributeProto{aTensor("value", i64(sh(1), -7))},
			in: []*Tensor{i64(sh(1), 2)}, want: []*Tensor{i64(sh(2), -7, -7)}},
		{name: "Constant tensor", op: "Constant", ver: 13, attrs: []*onnxpb.AttributeProto{aTensor("value", f32(sh(2), 1.5, -2))},
			want: []*Tensor{f32(sh(2), 1.5, -2)}},
		{name: "Constant bool tensor", op: "Constant", ver: 13, attrs: []*onnxpb.AttributeProto{aTensor("value", bl(nil, true))},
			want: []*Tensor{bl(nil, true)}},
		{name: "Constant value_ints", op: "Constant", ver: 13, attrs: []*onnxpb.AttributeProto{aInts("value_ints", 3, 4)},
			want: []*Tensor{i64(sh(2), 3, 4)}},
		{name: "Constant value_float", op: "Constant", ver: 13, attrs: []*onnxpb.AttributeProto{aFloat("value_float", 0.5)},
			want: []*Tensor{f32(nil, 0.5)}},
		{name: "Trilu upper", op: "Trilu", ver: 14, in: []*Tensor{f32(sh(3, 3), 1, 2, 3, 4, 5, 6, 7, 8, 9)},
			want: []*Tensor{f32(sh(3, 3), 1, 2, 3, 0, 5, 6, 0, 0, 9)}},
		{name: "Trilu lower k=-1 batched", op: "Trilu", ver: 14, attrs: []*onnxpb.AttributeProto{aInt("upper", 0)},
			in:   []*Tensor{i64(sh(2, 2, 2), 1, 2, 3, 4, 5, 6, 7, 8), i64(nil, -1)},
			want: []*Tensor{i64(sh(2, 2, 2), 0, 0, 3, 0, 0, 0, 7, 0)}},
		{name: "ScatterND rows", op: "ScatterND", ver: 13,
			in:   []*Tensor{f32(sh(3, 2), 1, 2, 3, 4, 5, 6), i64(sh(2, 1), 2, -3), f32(sh(2, 2), 9, 8, 7, 6)},
			want: []*Tensor{f32(sh(3, 2), 7, 6, 3, 4, 9, 8)}},
		{name: "ScatterND elements add", op: "ScatterND", ver: 16, attrs: []*onnxpb.AttributeProto{aStr("reduction", "add")},
			in:   []*Tensor{i64(sh(2, 2), 1, 2, 3, 4), i64(sh(2, 2), 0, 1, 0, 1), i64(sh(2), 10, 5)},
			want: []*Tensor{i64(sh(2, 2), 1, 17, 3, 4)}},
		{name: "Pad constant", op: "Pad", ver: 13,
			in:   []*Tensor{f32(sh(1, 2), 1, 2), i64(sh(4), 0, 1, 1, 0), f32(nil, -1)},
			want: []*Tensor{f32(sh(2, 3), -1, 1, 2, -1, -1, -1)}},
		{name: "Pad edge, attributes before opset 11", op: "Pad", ver: 7, attrs: []*onnxpb.AttributeProto{aStr("mode", "edge"), aInts("pads", 1, 0, 0, 1)},
			in:   []*Tensor{i64(sh(1, 2), 1, 2)},
			want: []*Tensor{i64(sh(2, 3), 1, 2, 2, 1, 2, 2)}},
		{name: "Pad negative crops", op: "Pad", ver: 18,
			in:   []*Tensor{f32(sh(3), 1, 2, 3), i64(sh(2), -1, 0), nil, i64(sh(1), 0)},
			want: []*Tensor{f32(sh(2), 2, 3)}},
		{name: "Trilu upper k=1 wide", op: "Trilu", ver: 14, in: []*Tensor{f32(sh(2, 3), 1, 2, 3, 4, 5, 6), i64(nil, 1)},
			want: []*Tensor{f32(sh(2, 3), 0, 2, 3, 0, 0, 6)}},
	}
}

func TestOps(t *testing.T) {
	for _, tc := range opCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := runOp(t, tc.op, tc.ver, tc.attrs, tc.in, tc.consts, len(tc.want))
			if err != nil {
				t.Fatal(err)
			}
			for i, w := range tc.want {
				if err := sameTensor(got[i], w, tc.tol); err != nil {
					t.Errorf("%s output %d: %v", tc.op, i, err)
				}
			}
		})
	}
}

// TestOpsCoverDeclared checks that every operator Ops lists has an
// implementation and at least one case in TestOps.
func TestOpsCoverDeclared(t *testing.T) {
	tested := map[string]bool{}
	for _, tc := range opCases() {
		tested[tc.op] = true
	}
	// Operators tested elsewhere or sharing a kernel with a tested one.
	for _, op := range []string{"Dropout", "CastLike", "Mean", "Or", "Xor", "Greater", "LessOrEqual",
		"Abs", "Log", "Sin", "Cos", "Floor", "Ceil", "Round", "Softplus", "Sign", "IsNaN", "IsInf",
		"ReduceMin", "ReduceProd", "ReduceSumSquare"} {
		tested[op] = true
	}
	for _, op := range Ops() {
		if implFor(op).fn == nil {
			t.Errorf("%s is listed but not implemented", op)
		}
		if !tested[op] {
			t.Errorf("%s has no test case", op)
		}
	}
}

func TestMoreUnary(t *testing.T) {
	x := f32(sh(5), -1.5, -0.5, 0.5, 2.5, float32(math.Inf(1)))
	for _, tc := range []struct {
		op string
		f  func(float64) float64
	}{
		{"Abs", math.Abs}, {"Log", math.Log}, {"Sin", math.Sin}, {"Cos", math.Cos}, {"Floor", math.Floor},
		{"Ceil", math.Ceil}, {"Round", math.RoundToEven}, {"Softplus", func(v float64) float64 { return math.Log1p(math.Exp(v)) }},
	} {
		got, err := runOp(t, tc.op, 13, nil, []*Tensor{x}, nil, 1)
		if err != nil {
			t.Fatal(err)
		}
		want := make([]float32, len(x.F32))
		for i, v := range x.F32 {
			want[i] = float32(tc.f(float64(v)))
		}
		if err := sameTensor(got[0], f32(x.Shape, want...), 1e-6); err != nil {
			t.Errorf("%s: %v", tc.op, err)
		}
	}
	got, err := runOp(t, "IsInf", 10, []*onnxpb.AttributeProto{aInt("detect_negative", 0)}, []*Tensor{f32(sh(3), float32(math.Inf(-1)), 1, float32(math.Inf(1)))}, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTensor(got[0], bl(sh(3), false, false, true), 0); err != nil {
		t.Error(err)
	}
	got, err = runOp(t, "Dropout", 13, nil, []*Tensor{f32(sh(2), 1, 2)}, nil, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTensor(got[0], f32(sh(2), 1, 2), 0); err != nil {
		t.Error(err)
	}
	if err := sameTensor(got[1], bl(sh(2), true, true), 0); err != nil {
		t.Error(err)
	}
}

// TestOpErrors checks that invalid operands are errors wrapping ErrInvalid.
func TestOpErrors(t *testing.T) {
	for _, tc := range []opCase{
		{name: "broadcast mismatch", op: "Add", ver: 13, in: []*Tensor{f32(sh(2), 1, 2), f32(sh(3), 1, 2, 3)}},
		{name: "mixed kinds", op: "Add", ver: 13, in: []*Tensor{f32(sh(1), 1), i64(sh(1), 1)}},
		{name: "gather out of range", op: "Gather", ver: 13, in: []*Tensor{f32(sh(2), 1, 2), i64(sh(1), 2)}},
		{name: "reshape size", op: "Reshape", ver: 13, in: []*Tensor{f32(sh(3), 1, 2, 3), i64(sh(1), 2)}},
		{name: "reshape two -1", op: "Reshape", ver: 13, in: []*Tensor{f32(sh(4), 1, 2, 3, 4), i64(sh(2), -1, -1)}},
		{name: "matmul inner", op: "MatMul", ver: 13, in: []*Tensor{f32(sh(1, 2), 1, 2), f32(sh(3, 1), 1, 2, 3)}},
		{name: "axis out of range", op: "Concat", ver: 13, attrs: []*onnxpb.AttributeProto{aInt("axis", 2)}, in: []*Tensor{f32(sh(2), 1, 2)}},
		{name: "squeeze non-1", op: "Squeeze", ver: 13, in: []*Tensor{f32(sh(2), 1, 2), i64(sh(1), 0)}},
		{name: "int division by zero", op: "Div", ver: 13, in: []*Tensor{i64(sh(1), 1), i64(sh(1), 0)}},
		{name: "range delta 0", op: "Range", ver: 11, in: []*Tensor{i64(nil, 0), i64(nil, 1), i64(nil, 0)}},
		{name: "huge ConstantOfShape", op: "ConstantOfShape", ver: 9, in: []*Tensor{i64(sh(2), 1<<40, 1<<40)}},
		{name: "huge Expand", op: "Expand", ver: 13, in: []*Tensor{f32(sh(1), 1), i64(sh(1), 1<<40)}},
		{name: "huge Tile", op: "Tile", ver: 13, in: []*Tensor{f32(sh(1), 1), i64(sh(1), 1<<62)}},
		{name: "huge Range", op: "Range", ver: 11, in: []*Tensor{i64(nil, 0), i64(nil, math.MaxInt64), i64(nil, 1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := runOp(t, tc.op, tc.ver, tc.attrs, tc.in, nil, 1)
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v, want ErrInvalid", err)
			}
		})
	}
}

// TestDropoutTrainingRefused: Dropout in training mode (random masks) is
// refused as unsupported, naming training_mode; training_mode false runs
// as the identity.
func TestDropoutTrainingRefused(t *testing.T) {
	x := f32(sh(2), 1, 2)
	ratio := f32(sh(), 0.5)
	_, err := runOp(t, "Dropout", 13, nil, []*Tensor{x, ratio, bl(sh(), true)}, nil, 1)
	if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "training_mode") {
		t.Errorf("training_mode true: error %v, want ErrUnsupported naming training_mode", err)
	}
	got, err := runOp(t, "Dropout", 13, nil, []*Tensor{x, ratio, bl(sh(), false)}, nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameTensor(got[0], x, 0); err != nil {
		t.Error(err)
	}
}

// TestReduceMaxMinBool: ReduceMax/ReduceMin of BOOL are valid ONNX since
// opset 20 and reported unsupported, not invalid; ReduceSum of BOOL stays
// invalid.
func TestReduceMaxMinBool(t *testing.T) {
	b := bl(sh(3), true, false, true)
	for _, op := range []string{"ReduceMax", "ReduceMin"} {
		_, err := runOp(t, op, 20, nil, []*Tensor{b}, nil, 1)
		if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrInvalid) {
			t.Errorf("%s of BOOL: error %v, want ErrUnsupported", op, err)
		}
	}
	if _, err := runOp(t, "ReduceSum", 20, nil, []*Tensor{b}, nil, 1); !errors.Is(err, ErrInvalid) {
		t.Errorf("ReduceSum of BOOL: error %v, want ErrInvalid", err)
	}
}
