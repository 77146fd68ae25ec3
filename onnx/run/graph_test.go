package run

import (
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
)

// graphBuilder builds small multi-node ONNX graphs for tests.
type graphBuilder struct {
	g *onnxpb.GraphProto
	n int
}

func newGraph() *graphBuilder {
	return &graphBuilder{g: &onnxpb.GraphProto{Name: proto.String("g")}}
}

// input declares a graph input of dtype dt.
func (b *graphBuilder) input(name string, dt tensor.DType) string {
	b.g.Input = append(b.g.Input, valueInfo(name, dt))
	return name
}

// init adds an initializer and returns its name.
func (b *graphBuilder) init(t *Tensor) string {
	b.n++
	name := fmt.Sprintf("c%d", b.n)
	b.g.Initializer = append(b.g.Initializer, tensorProto(name, t))
	return name
}

// scalar adds a float scalar initializer.
func (b *graphBuilder) scalar(v float32) string { return b.init(f32(nil, v)) }

// op adds a node with one output and returns the output's name.
func (b *graphBuilder) op(op string, in []string, attrs ...*onnxpb.AttributeProto) string {
	b.n++
	out := fmt.Sprintf("v%d", b.n)
	b.g.Node = append(b.g.Node, &onnxpb.NodeProto{OpType: proto.String(op), Name: proto.String(fmt.Sprintf("%s_%d", op, b.n)),
		Input: in, Output: []string{out}, Attribute: attrs})
	return out
}

// output declares graph outputs.
func (b *graphBuilder) output(names ...string) {
	for _, n := range names {
		b.g.Output = append(b.g.Output, &onnxpb.ValueInfoProto{Name: proto.String(n)})
	}
}

func (b *graphBuilder) model(opset int64) *onnxpb.ModelProto {
	return &onnxpb.ModelProto{IrVersion: proto.Int64(8), Graph: b.g,
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(opset)}}}
}
