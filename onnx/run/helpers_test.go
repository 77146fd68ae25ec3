package run

import (
	"fmt"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
)

func f32(shape []int, v ...float32) *Tensor { return &Tensor{DType: tensor.F32, Shape: shape, F32: v} }
func i64(shape []int, v ...int64) *Tensor   { return &Tensor{DType: tensor.I64, Shape: shape, I64: v} }
func bl(shape []int, v ...bool) *Tensor     { return &Tensor{DType: tensor.BOOL, Shape: shape, Bool: v} }
func sh(d ...int) []int                     { return d }

// zeros returns a float32 tensor of zeros.
func zeros(shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return f32(shape, make([]float32, n)...)
}

func aInt(name string, v int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: proto.Int32(2), I: proto.Int64(v)}
}
func aInts(name string, v ...int64) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: proto.Int32(7), Ints: v}
}
func aFloat(name string, v float32) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: proto.Int32(1), F: proto.Float32(v)}
}
func aStr(name, v string) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: proto.Int32(3), S: []byte(v)}
}
func aTensor(name string, t *Tensor) *onnxpb.AttributeProto {
	return &onnxpb.AttributeProto{Name: proto.String(name), Type: proto.Int32(4), T: tensorProto("", t)}
}

// tensorProto encodes t as a TensorProto in typed fields.
func tensorProto(name string, t *Tensor) *onnxpb.TensorProto {
	dt, _ := onnx.DataType(t.DType)
	p := &onnxpb.TensorProto{DataType: proto.Int32(dt)}
	if name != "" {
		p.Name = proto.String(name)
	}
	for _, d := range t.Shape {
		p.Dims = append(p.Dims, int64(d))
	}
	switch t.kind() {
	case kindFloat:
		p.FloatData = t.F32
	case kindInt:
		p.Int64Data = t.I64
	case kindBool:
		for _, b := range t.Bool {
			v := int32(0)
			if b {
				v = 1
			}
			p.Int32Data = append(p.Int32Data, v)
		}
	}
	return p
}

func valueInfo(name string, dt tensor.DType) *onnxpb.ValueInfoProto {
	t, _ := onnx.DataType(dt)
	return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{
		Value: &onnxpb.TypeProto_TensorType{TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(t)}}}}
}

// opModel builds a one-node model: inputs x0, x1, … (nil ones omitted;
// those marked in consts become initializers), outputs y0 … y(nout-1).
func opModel(op string, ver int64, attrs []*onnxpb.AttributeProto, in []*Tensor, consts []bool, nout int) *onnxpb.ModelProto {
	g := &onnxpb.GraphProto{Name: proto.String("g")}
	n := &onnxpb.NodeProto{OpType: proto.String(op), Attribute: attrs}
	for i, t := range in {
		name := fmt.Sprintf("x%d", i)
		if t == nil {
			n.Input = append(n.Input, "")
			continue
		}
		n.Input = append(n.Input, name)
		if i < len(consts) && consts[i] {
			g.Initializer = append(g.Initializer, tensorProto(name, t))
		} else {
			g.Input = append(g.Input, valueInfo(name, t.DType))
		}
	}
	for i := 0; i < nout; i++ {
		name := fmt.Sprintf("y%d", i)
		n.Output = append(n.Output, name)
		g.Output = append(g.Output, &onnxpb.ValueInfoProto{Name: proto.String(name)})
	}
	g.Node = []*onnxpb.NodeProto{n}
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(ver)}}}
}

// loadProto encodes and loads a model through formats/onnx.
func loadProto(t testing.TB, mp *onnxpb.ModelProto, o Options) (*Session, error) {
	t.Helper()
	b, err := proto.Marshal(mp)
	if err != nil {
		t.Fatal(err)
	}
	m, err := onnx.Decode(b, "")
	if err != nil {
		t.Fatal(err)
	}
	return Load(m, o)
}

// runOp runs a one-node model and returns its outputs.
func runOp(t *testing.T, op string, ver int64, attrs []*onnxpb.AttributeProto, in []*Tensor, consts []bool, nout int) ([]*Tensor, error) {
	t.Helper()
	s, err := loadProto(t, opModel(op, ver, attrs, in, consts, nout), Options{Threads: 2})
	if err != nil {
		return nil, err
	}
	feeds := map[string]*Tensor{}
	for i, x := range in {
		if x != nil && !(i < len(consts) && consts[i]) {
			feeds[fmt.Sprintf("x%d", i)] = x
		}
	}
	res, err := s.Run(feeds)
	if err != nil {
		return nil, err
	}
	out := make([]*Tensor, nout)
	for i := range out {
		out[i] = res[fmt.Sprintf("y%d", i)]
	}
	return out, nil
}

// sameTensor compares dtype, shape and elements (floats within tol,
// relative to max(1, |want|)).
func sameTensor(got, want *Tensor, tol float64) error {
	if got == nil {
		return fmt.Errorf("no output")
	}
	if got.DType != want.DType {
		return fmt.Errorf("dtype %s, want %s", got.DType, want.DType)
	}
	if !shapeEq(got.Shape, want.Shape) && !(len(got.Shape) == 0 && len(want.Shape) == 0) {
		return fmt.Errorf("shape %v, want %v", got.Shape, want.Shape)
	}
	if got.Len() != want.Len() {
		return fmt.Errorf("%d elements, want %d", got.Len(), want.Len())
	}
	switch want.kind() {
	case kindFloat:
		for i, w := range want.F32 {
			g := got.F32[i]
			if math.IsNaN(float64(w)) && math.IsNaN(float64(g)) {
				continue
			}
			if math.Abs(float64(g)-float64(w)) > tol*math.Max(1, math.Abs(float64(w))) {
				return fmt.Errorf("element %d = %v, want %v (got %v)", i, g, w, got.F32)
			}
		}
	case kindInt:
		for i, w := range want.I64 {
			if got.I64[i] != w {
				return fmt.Errorf("element %d = %d, want %d (got %v)", i, got.I64[i], w, got.I64)
			}
		}
	case kindBool:
		for i, w := range want.Bool {
			if got.Bool[i] != w {
				return fmt.Errorf("element %d = %v, want %v (got %v)", i, got.Bool[i], w, got.Bool)
			}
		}
	}
	return nil
}
