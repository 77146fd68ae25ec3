package native

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"os"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/model"
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
)

func openStories(t *testing.T) *onnx.Model {
	t.Helper()
	m, err := onnx.Open(sharedtest.Path(t, "models/stories260k-onnx/model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func referenceIDs(t *testing.T) []int {
	t.Helper()
	b, err := os.ReadFile(sharedtest.Path(t, "reference/tokens/stories260k.tinystories_sample.json"))
	if err != nil {
		t.Fatal(err)
	}
	var ids []int
	if err := json.Unmarshal(b, &ids); err != nil {
		t.Fatal(err)
	}
	return ids
}

// perplexity scores ids with non-overlapping windows of ctx tokens (the
// reference protocol with stride = ctx), the plain way: Forward per
// window, log-softmax in float64.
func perplexity(t *testing.T, m *model.Model, ids []int, ctx int) (float64, int) {
	t.Helper()
	V := m.VocabSize()
	logits := make([]float32, ctx*V)
	var nll float64
	scored := 0
	for begin := 0; begin < len(ids); begin += ctx {
		end := min(begin+ctx, len(ids))
		if err := m.Forward(ids[begin:end], logits[:(end-begin)*V]); err != nil {
			t.Fatal(err)
		}
		for j := begin + 1; j < end; j++ {
			row := logits[(j-1-begin)*V : (j-begin)*V]
			mx := math.Inf(-1)
			for _, v := range row {
				mx = math.Max(mx, float64(v))
			}
			var sum float64
			for _, v := range row {
				sum += math.Exp(float64(v) - mx)
			}
			nll += mx + math.Log(sum) - float64(row[ids[j]])
			scored++
		}
	}
	return math.Exp(nll / float64(scored)), scored
}

// TestStoriesRecognised: the stories260k export is recognised as the
// llama it is, and the native model reproduces the reference perplexities.
func TestStoriesRecognised(t *testing.T) {
	m := openStories(t)
	s, err := Recognize(m)
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	if c.ModelType != "llama" || c.HiddenSize != 64 || c.NumLayers != 5 || c.NumHeads != 8 || c.NumKVHeads != 4 ||
		c.HeadDim != 8 || c.IntermediateSize != 172 || c.VocabSize != 512 || c.MaxPositions != 512 ||
		c.NormEps != 1e-5 || c.RopeTheta != 10000 || !c.TieWordEmbeddings || c.Activation != "silu" {
		t.Fatalf("config %+v", c)
	}
	md, err := Load(m, model.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ids := referenceIDs(t)
	for _, ref := range []struct {
		ctx, scored int
		ppl         float64
	}{{512, 1875, 6.124239}, {128, 1864, 6.043675}} {
		ppl, scored := perplexity(t, md, ids, ref.ctx)
		t.Logf("ctx %d: perplexity %.8f over %d tokens", ref.ctx, ppl, scored)
		if scored != ref.scored || math.Abs(ppl/ref.ppl-1) > 1e-5 {
			t.Errorf("ctx %d: perplexity %.6f over %d tokens, want %.6f over %d", ref.ctx, ppl, scored, ref.ppl, ref.scored)
		}
	}
	// The native and general paths agree on a whole window.
	sess, err := onnxrun.Load(m, onnxrun.Options{})
	if err != nil {
		t.Fatal(err)
	}
	win := ids[:300]
	a, b := make([]float32, len(win)*512), make([]float32, len(win)*512)
	if err := sess.Logits(win, a); err != nil {
		t.Fatal(err)
	}
	if err := md.Forward(win, b); err != nil {
		t.Fatal(err)
	}
	worst := 0.0
	for i := range a {
		worst = max(worst, math.Abs(float64(a[i])-float64(b[i]))/max(1, math.Abs(float64(a[i]))))
	}
	t.Logf("native vs general executor, 300 tokens: worst relative difference %.3g", worst)
	if worst > 1e-4 { // float32 sums in another order; 1.6e-5 measured
		t.Errorf("native and general logits differ by %.3g (relative)", worst)
	}
}

// edit returns a copy of m with f applied to its protobuf.
func edit(t *testing.T, m *onnx.Model, f func(g *onnxpb.GraphProto)) *onnx.Model {
	t.Helper()
	pb := proto.Clone(m.Proto()).(*onnxpb.ModelProto)
	f(pb.GetGraph())
	data, err := proto.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := onnx.Decode(data, "")
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func constNode(g *onnxpb.GraphProto, output string) *onnxpb.TensorProto {
	for _, n := range g.GetNode() {
		if n.GetOpType() == "Constant" && n.GetOutput()[0] == output {
			return n.GetAttribute()[0].GetT()
		}
	}
	return nil
}

// TestNearMisses: graphs that differ from a recognisable export in one
// respect are refused (by a rule, or by the probe), never run wrongly.
func TestNearMisses(t *testing.T) {
	m := openStories(t)
	cases := []struct {
		name, why string
		f         func(g *onnxpb.GraphProto)
		probe     bool // refused by the probe rather than a rule
	}{
		{"one epsilon differs", "epsilons differ", func(g *onnxpb.GraphProto) {
			c := constNode(g, "/input_layernorm/Constant_2_output_0")
			c.RawData = binary.LittleEndian.AppendUint32(nil, math.Float32bits(1e-6))
		}, false},
		{"an extra input", "graph inputs", func(g *onnxpb.GraphProto) {
			g.Input = append(g.Input, proto.Clone(g.Input[0]).(*onnxpb.ValueInfoProto))
			g.Input[1].Name = proto.String("attention_mask")
		}, false},
		{"no rotary table", "rotary", func(g *onnxpb.GraphProto) {
			for _, in := range g.GetInitializer() {
				if in.GetName() == "rope_sin" {
					in.Name = proto.String("rope_s")
				}
			}
			for _, n := range g.GetNode() {
				for i, x := range n.GetInput() {
					if x == "rope_sin" {
						n.Input[i] = "rope_s"
					}
				}
			}
		}, false},
		{"a block weight renamed", "missing", func(g *onnxpb.GraphProto) {
			for _, in := range g.GetInitializer() {
				if in.GetName() == "model.layers.3.mlp.up_proj.weight" {
					in.Name = proto.String("up3")
				}
			}
			for _, n := range g.GetNode() {
				for i, x := range n.GetInput() {
					if x == "model.layers.3.mlp.up_proj.weight" {
						n.Input[i] = "up3"
					}
				}
			}
		}, false},
		{"attention not causal", "probe", func(g *onnxpb.GraphProto) {
			for _, in := range g.GetInitializer() {
				if in.GetName() == "causal_mask" {
					clear(in.RawData)
				}
			}
		}, true},
		{"an extra consumer of an intermediate", "probe", func(g *onnxpb.GraphProto) {
			// An extra consumer of an intermediate: the residual stream
			// gets the first layer's attention input added once more.
			for _, n := range g.GetNode() {
				if n.GetName() == "/norm/Mul_1" {
					n.Input[0] = "/input_layernorm/Mul_output_0"
				}
			}
		}, true},
	}
	for _, tc := range cases {
		mm := edit(t, m, tc.f)
		_, rerr := Recognize(mm)
		_, lerr := Load(mm, model.Options{})
		if !errors.Is(lerr, ErrNotRecognized) || !strings.Contains(lerr.Error(), tc.why) {
			t.Errorf("%s: Load error %v, want ErrNotRecognized (%s)", tc.name, lerr, tc.why)
		}
		if tc.probe != (rerr == nil) {
			t.Errorf("%s: Recognize error %v; refused by the probe: %v", tc.name, rerr, tc.probe)
		}
	}
}
