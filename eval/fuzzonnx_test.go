package eval

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/model"
)

// constGraph is a model whose logits [1, seq, vocab] come from
// ConstantOfShape of shape (an initializer).
func constGraph(shape []int64, vocab int64) []byte {
	dim := func(v int64) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	seq := &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: "seq"}}
	vi := func(name string, elem int32, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(elem), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
	}
	b, _ := proto.Marshal(&onnxpb.ModelProto{IrVersion: proto.Int64(8),
		OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}},
		Graph: &onnxpb.GraphProto{Name: proto.String("g"),
			Input:       []*onnxpb.ValueInfoProto{vi("input_ids", 7, dim(1), seq)},
			Initializer: []*onnxpb.TensorProto{{Name: proto.String("shape"), DataType: proto.Int32(7), Dims: []int64{int64(len(shape))}, Int64Data: shape}},
			Node:        []*onnxpb.NodeProto{{OpType: proto.String("ConstantOfShape"), Input: []string{"shape"}, Output: []string{"logits"}}},
			Output:      []*onnxpb.ValueInfoProto{vi("logits", 1, dim(1), seq, dim(vocab))}}})
	return b
}

// FuzzONNXEval decodes mutated ONNX models, loads them into the executor
// with eval's element budget and runs a window of 4 tokens: errors are
// fine, a panic or an allocation beyond the budget is not.
func FuzzONNXEval(f *testing.F) {
	f.Add(constGraph([]int64{1, 4, 8}, 8))
	f.Add(constGraph([]int64{1, 1 << 16, 1 << 15}, 32768))
	f.Add(constGraph([]int64{1, 4, 8}, 1<<40))
	dir := f.TempDir()
	p := filepath.Join(dir, "model.onnx")
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		lm, err := openONNX(p, model.Options{Threads: 1})
		if err != nil {
			return
		}
		ids := []int{0, 1, 2, 3}
		for i := range ids {
			ids[i] %= lm.VocabSize()
		}
		if rows, err := lm.Window(context.Background(), ids, 1); err == nil {
			out := make([]float32, 3*lm.VocabSize())
			rows(0, 3, out)
		}
	})
}
