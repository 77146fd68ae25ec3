package eval

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// TestONNXBatch scores the tinystories sample with stories260k-onnx on
// the general executor, which runs the windows in batches (model.BatchLM),
// and again one window at a time: every number of the results must be the
// same, with and without a base model.
func TestONNXBatch(t *testing.T) {
	file := sharedtest.Path(t, "models/stories260k-onnx/model.onnx")
	text, err := os.ReadFile(sharedtest.Path(t, "text/tinystories/tinystories_sample.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := tokenizer.Load(filepath.Join(sharedtest.Path(t, "models/stories260k"), "tokenizer.json"))
	if err != nil {
		t.Fatal(err)
	}
	ids := tok.Encode(string(text))
	open := func() *onnxLM {
		lm, err := openONNX(file, model.Options{ONNX: "general", Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		return lm.(*onnxLM)
	}
	for _, withBase := range []bool{false, true} {
		var res [2]*model.Result
		for i, batch := range []int{0, 1} {
			lm := open()
			o := model.ScoreOptions{Ctx: 128, Stride: 96, Batch: batch, KeepNLL: true}
			if withBase {
				o.Base = open()
			}
			if res[i], err = model.Score(context.Background(), lm, ids, o); err != nil {
				t.Fatal(err)
			}
			if batch == 0 && (lm.Batch(128) != maxONNXBatch || lm.batching != 1) {
				t.Errorf("batch %d (checked %d), want %d (1)", lm.Batch(128), lm.batching, maxONNXBatch)
			}
		}
		if res[0].Windows < 2*maxONNXBatch || !reflect.DeepEqual(res[0], res[1]) {
			t.Errorf("base %v: %d windows; batched %+v, one at a time %+v", withBase, res[0].Windows, res[0].Sums[:2], res[1].Sums[:2])
		}
	}
}

// TestONNXBatchMixes loads a graph that folds the batch into the sequence
// (Reshape to [1, −1], then a cumulative sum): a batch would give the
// second window the first's sum. Windows must see that and run each
// window alone, with the logits Window gives.
func TestONNXBatchMixes(t *testing.T) {
	const vocab = 16
	sym := func(s string) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimParam{DimParam: s}}
	}
	dim := func(v int64) *onnxpb.TensorShapeProto_Dimension {
		return &onnxpb.TensorShapeProto_Dimension{Value: &onnxpb.TensorShapeProto_Dimension_DimValue{DimValue: v}}
	}
	vi := func(name string, elem int32, dims ...*onnxpb.TensorShapeProto_Dimension) *onnxpb.ValueInfoProto {
		return &onnxpb.ValueInfoProto{Name: proto.String(name), Type: &onnxpb.TypeProto{Value: &onnxpb.TypeProto_TensorType{
			TensorType: &onnxpb.TypeProto_Tensor{ElemType: proto.Int32(elem), Shape: &onnxpb.TensorShapeProto{Dim: dims}}}}}
	}
	i64 := func(name string, v ...int64) *onnxpb.TensorProto {
		return &onnxpb.TensorProto{Name: proto.String(name), DataType: proto.Int32(7), Dims: []int64{int64(len(v))}, Int64Data: v}
	}
	row := make([]float32, vocab)
	for i := range row {
		row[i] = float32(i+1) / vocab
	}
	node := func(op string, in []string, out string, attrs ...*onnxpb.AttributeProto) *onnxpb.NodeProto {
		return &onnxpb.NodeProto{OpType: proto.String(op), Input: in, Output: []string{out}, Attribute: attrs}
	}
	g := &onnxpb.GraphProto{
		Name:  proto.String("mixes"),
		Input: []*onnxpb.ValueInfoProto{vi("input_ids", 7, sym("batch"), sym("seq"))},
		Initializer: []*onnxpb.TensorProto{i64("flat", 1, -1), i64("axis", 1), i64("last", 2),
			{Name: proto.String("row"), DataType: proto.Int32(1), Dims: []int64{1, 1, vocab}, FloatData: row}},
		Node: []*onnxpb.NodeProto{
			node("Cast", []string{"input_ids"}, "f", &onnxpb.AttributeProto{Name: proto.String("to"), Type: proto.Int32(2), I: proto.Int64(1)}),
			node("Reshape", []string{"f", "flat"}, "r"),
			node("CumSum", []string{"r", "axis"}, "c"),
			node("Unsqueeze", []string{"c", "last"}, "u"),
			node("Mul", []string{"u", "row"}, "logits"),
		},
		Output: []*onnxpb.ValueInfoProto{vi("logits", 1, sym("batch"), sym("seq"), dim(vocab))},
	}
	b, err := proto.Marshal(&onnxpb.ModelProto{IrVersion: proto.Int64(8), OpsetImport: []*onnxpb.OperatorSetIdProto{{Domain: proto.String(""), Version: proto.Int64(17)}}, Graph: g})
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "mixes.onnx")
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	lm, err := openONNX(file, model.Options{ONNX: "general"})
	if err != nil {
		t.Fatal(err)
	}
	a := lm.(*onnxLM)
	wins := [][]int{{1, 2, 3, 4, 5, 6, 7, 8}, {9, 10, 11, 12, 13, 14, 15, 0}}
	if a.Batch(8) < 2 {
		t.Fatalf("Batch(8) = %d before the check", a.Batch(8))
	}
	fns, err := a.Windows(context.Background(), wins, []int{0, 2})
	if err != nil {
		t.Fatal(err)
	}
	if a.batching != -1 || a.Batch(8) != 1 {
		t.Errorf("a graph mixing the batch: checked %d, Batch %d; want -1, 1", a.batching, a.Batch(8))
	}
	got := make([]float32, 6*vocab)
	fns[1](0, 6, got)
	fn, err := a.Window(context.Background(), wins[1], 2)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, 6*vocab)
	fn(0, 6, want)
	if !reflect.DeepEqual(got, want) || want[0] != 30.0/vocab {
		t.Errorf("second window's logits %v, alone %v", got[:4], want[:4])
	}
}
