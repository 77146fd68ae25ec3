package eval_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/model"
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// writeONNX writes a model whose graph takes input_ids and makes "logits"
// of the declared shape [1, seq, vocab] with ConstantOfShape of shape
// (an initializer); without outputs when noOutputs.
func writeONNX(t *testing.T, shape []int64, vocab int64, noOutputs bool) string {
	t.Helper()
	dim := func(v int64) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	sym := func(s string) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: s}}
	}
	vi := func(name string, elem int32, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(elem), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
	}
	g := &onnxpb.GraphProto{
		Name:        proto.String("bomb"),
		Input:       []*onnxpb.ValueInfoProto{vi("input_ids", 7, dim(1), sym("seq"))},
		Initializer: []*onnxpb.TensorProto{{Name: proto.String("shape"), DataType: proto.Int32(7), Dims: []int64{int64(len(shape))}, Int64Data: shape}},
		Node:        []*onnxpb.NodeProto{{OpType: proto.String("ConstantOfShape"), Input: []string{"shape"}, Output: []string{"logits"}}},
	}
	if !noOutputs {
		g.Output = []*onnxpb.ValueInfoProto{vi("logits", 1, dim(1), sym("seq"), dim(vocab))}
	}
	m := &onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}}, Graph: g}
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := gen.WriteByteTokenizer(dir); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "model.onnx")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestONNXExecutorBudget: a few hundred bytes of graph asking for 2^31
// elements (ConstantOfShape) are refused by the executor's budget, tied to
// the model's size, before allocating (exit 2); an ONNX model with no
// outputs is refused saying so.
func TestONNXExecutorBudget(t *testing.T) {
	p := writeONNX(t, []int64{1, 1 << 16, 1 << 15}, 256, false)
	text := eval.NewText("t", []byte("hello hello hello hello"))
	tok, err := eval.LoadTokenizer(p, "")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = eval.Compare(context.Background(), p, "", text, tok, eval.Options{Ctx: 8}, model.Options{})
	if err == nil || !(errors.Is(err, onnxrun.ErrInvalid) || errors.Is(err, onnxrun.ErrInput)) || !strings.Contains(err.Error(), "elements") {
		t.Errorf("ConstantOfShape of 2^31 elements: %v, want an error of the executor's element budget", err)
	}
	t.Logf("ConstantOfShape of 2^31 elements: %v", err)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	p = writeONNX(t, []int64{1, 4, 256}, 256, true)
	_, err = eval.Compare(context.Background(), p, "", text, tok, eval.Options{Ctx: 8}, model.Options{})
	t.Logf("no outputs: %v", err)
	if !errors.Is(err, onnx.ErrFormat) || !strings.Contains(err.Error(), "no outputs") {
		t.Errorf("ONNX model with no outputs: %v, want ErrFormat saying so", err)
	}
}
