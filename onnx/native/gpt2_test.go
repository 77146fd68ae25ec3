package native

import (
	"errors"
	"math"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/model"
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
)

// TestGPT2Recognised: torch.onnx.export's graph of a tiny GPT-2
// (testdata/onnx-gpt2: deduplicated initializers behind Identity nodes, a
// transposed copy of the tied head, head dim computed from the shape) is
// recognised, and the native model gives the logits of the safetensors
// checkpoint it was exported from and of the general executor.
func TestGPT2Recognised(t *testing.T) {
	m, err := onnx.Open("../../testdata/onnx-gpt2/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Recognize(m)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	if c.ModelType != "gpt2" || c.HiddenSize != 16 || c.NumLayers != 2 || c.NumHeads != 2 || c.HeadDim != 8 ||
		c.IntermediateSize != 64 || c.VocabSize != 40 || c.MaxPositions != 32 || c.NormEps != 1e-5 || c.Activation != "gelu_new" {
		t.Fatalf("config %+v", c)
	}
	md, err := Load(m, model.Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	lm, err := checkpoint.Open("../../testdata/onnx-gpt2")
	if err != nil {
		t.Fatal(err)
	}
	ref, err := model.Load(lm, model.Options{Threads: 2})
	lm.Close()
	if err != nil {
		t.Fatal(err)
	}
	sess, err := onnxrun.Load(m, onnxrun.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int, 32)
	for i := range ids {
		ids[i] = (i*17 + 3) % 40
	}
	got, want, gen := make([]float32, 32*40), make([]float32, 32*40), make([]float32, 32*40)
	if err := md.Forward(ids, got); err != nil {
		t.Fatal(err)
	}
	if err := ref.Forward(ids, want); err != nil {
		t.Fatal(err)
	}
	if err := sess.Logits(ids, gen); err != nil {
		t.Fatal(err)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("logit %d: native %v, safetensors %v", i, got[i], want[i])
		}
		if math.Abs(float64(got[i]-gen[i])) > 1e-5*max(1, math.Abs(float64(gen[i]))) {
			t.Fatalf("logit %d: native %v, general executor %v", i, got[i], gen[i])
		}
	}
	// Near misses: the tanh of gelu_new replaced by a sigmoid (refused by
	// the GELU rule); the attention scale changed (refused by the probe).
	for _, tc := range []struct {
		name string
		f    func(g *onnxpb.GraphProto)
	}{
		{"no tanh", func(g *onnxpb.GraphProto) {
			for _, n := range g.GetNode() {
				if n.GetOpType() == "Tanh" {
					n.OpType = ptr("Sigmoid")
				}
			}
		}},
		{"attention scale", func(g *onnxpb.GraphProto) {
			for _, n := range g.GetNode() {
				if n.GetName() == "/h.1/Div_1" {
					n.OpType = ptr("Mul")
				}
			}
		}},
	} {
		if _, err := Load(edit(t, m, tc.f), model.Options{}); !errors.Is(err, ErrNotRecognized) {
			t.Errorf("%s: Load error %v, want ErrNotRecognized", tc.name, err)
		}
	}
}

func ptr(s string) *string { return &s }
