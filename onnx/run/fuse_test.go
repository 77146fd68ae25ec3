package run

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/tensor"
)

// randF32 returns a seeded float32 tensor of normal values times scale.
func randF32(rng *rand.Rand, scale float64, shape ...int) *Tensor {
	n := 1
	for _, d := range shape {
		n *= d
	}
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(rng.NormFloat64() * scale)
	}
	return f32(shape, v...)
}

// checkFusion loads mp with and without fusion, runs both on feeds, and
// checks that every output agrees to 1e-6 (relative to max(1, |value|))
// and that the fused session applied want fusions of kind (the unfused
// none). It returns the fused session's plan.
func checkFusion(t *testing.T, mp *onnxpb.ModelProto, feeds map[string]*Tensor, kind string, want int) Plan {
	t.Helper()
	var logged []string
	fs, err := loadProto(t, mp, Options{Threads: 2, Debug: func(m string) { logged = append(logged, m) }})
	if err != nil {
		t.Fatal(err)
	}
	us, err := loadProto(t, mp, Options{Threads: 2, NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	p := fs.Plan()
	if got := p.Count(kind); got != want {
		t.Errorf("%d %s fusions, want %d (plan %+v)", got, kind, want, p)
	}
	if n := len(us.Plan().Fusions); n != 0 {
		t.Errorf("NoFusion session applied %d fusions", n)
	}
	if strings.Join(logged, "\n") != strings.Join(p.Skipped, "\n") {
		t.Errorf("debug log %q, plan skipped %q", logged, p.Skipped)
	}
	for run := range 2 { // the second run reuses the arena's buffers
		got, err := fs.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := us.Run(feeds)
		if err != nil {
			t.Fatal(err)
		}
		for name, r := range ref {
			if err := sameTensor(got[name], r, 1e-6); err != nil {
				t.Errorf("run %d: output %s: fused vs unfused: %v", run, name, err)
			}
		}
	}
	return p
}

func rng(t *testing.T, a, b uint64) *rand.Rand {
	t.Logf("rng: PCG(%d, %d)", a, b)
	return rand.New(rand.NewPCG(a, b))
}

// --- MatMul + Add ----------------------------------------------------------

func matMulAddGraph(r *rand.Rand, k int, bias *Tensor, biasInput, extraReader bool) *onnxpb.ModelProto {
	b := newGraph()
	x := b.input("x", tensor.F32)
	w := b.init(randF32(r, 1/math.Sqrt(float64(k)), k, 4))
	mm := b.op("MatMul", []string{x, w})
	var bn string
	if biasInput {
		bn = b.input("bias", tensor.F32)
	} else {
		bn = b.init(bias)
	}
	y := b.op("Add", []string{bn, mm})
	b.output(y)
	if extraReader {
		b.output(mm)
	}
	return b.model(17)
}

func TestFuseMatMulAdd(t *testing.T) {
	r := rng(t, 1, 2)
	for _, k := range []int{5, 400} { // 400: past the GEMM's block depth
		mp := matMulAddGraph(r, k, randF32(r, 1, 4), false, false)
		p := checkFusion(t, mp, map[string]*Tensor{"x": randF32(r, 1, 2, 3, k)}, FuseMatMulAdd, 1)
		if p.Nodes != 1 {
			t.Errorf("k %d: %d nodes run, want 1", k, p.Nodes)
		}
		// A 1-D operand and a [1, 4] bias: the fused node falls back to
		// the MatMul and Add (the bias raises the rank).
		mp = matMulAddGraph(r, k, randF32(r, 1, 1, 4), false, false)
		checkFusion(t, mp, map[string]*Tensor{"x": randF32(r, 1, k)}, FuseMatMulAdd, 1)
	}
}

func TestFuseMatMulAddNearMiss(t *testing.T) {
	r := rng(t, 3, 4)
	x := map[string]*Tensor{"x": randF32(r, 1, 2, 3, 5)}
	// A [3, 4] bias broadcasts over the rows, not as one row.
	checkFusion(t, matMulAddGraph(r, 5, randF32(r, 1, 3, 4), false, false), x, FuseMatMulAdd, 0)
	// The product is also a graph output.
	checkFusion(t, matMulAddGraph(r, 5, randF32(r, 1, 4), false, true), x, FuseMatMulAdd, 0)
	// The addend is computed (a residual), not a constant.
	x["bias"] = randF32(r, 1, 2, 3, 4)
	checkFusion(t, matMulAddGraph(r, 5, nil, true, false), x, FuseMatMulAdd, 0)
}

// --- RMSNorm and LayerNorm --------------------------------------------------

type normSpec struct {
	layer     bool    // LayerNorm (x − mean) rather than RMSNorm
	form      string  // "div" (x / root), "one" (x · (1 / root)), "recip" (x · Reciprocal(root))
	axis      int64   // of the mean of squares
	meanAxis  int64   // LayerNorm's mean
	keepdims  int64   // of the mean of squares
	eps       float32 // as a scalar constant
	epsVector bool    // ε as a [8] constant instead
	gamma     *Tensor // nil: none
	beta      *Tensor // nil: none
	extraOut  string  // "root": the root is also a graph output; "centered": x − mean is
	opset     int64
}

func normGraph(s normSpec) *onnxpb.ModelProto {
	b := newGraph()
	x := b.input("x", tensor.F32)
	reduce := func(in string, axis, keep int64) string {
		if s.opset >= 18 {
			return b.op("ReduceMean", []string{in, b.init(i64(sh(1), axis))}, aInt("keepdims", keep))
		}
		return b.op("ReduceMean", []string{in}, aInts("axes", axis), aInt("keepdims", keep))
	}
	base := x
	var centered string
	if s.layer {
		mean := reduce(x, s.meanAxis, 1)
		centered = b.op("Sub", []string{x, mean})
		base = centered
	}
	sq := b.op("Pow", []string{base, b.scalar(2)})
	ms := reduce(sq, s.axis, s.keepdims)
	eps := b.scalar(s.eps)
	if s.epsVector {
		v := make([]float32, 8)
		for i := range v {
			v[i] = s.eps
		}
		eps = b.init(f32(sh(8), v...))
	}
	root := b.op("Sqrt", []string{b.op("Add", []string{ms, eps})})
	var y string
	switch s.form {
	case "div":
		y = b.op("Div", []string{base, root})
	case "one":
		y = b.op("Mul", []string{b.op("Div", []string{b.scalar(1), root}), base})
	case "recip":
		y = b.op("Mul", []string{base, b.op("Reciprocal", []string{root})})
	}
	if s.gamma != nil {
		y = b.op("Mul", []string{y, b.init(s.gamma)})
	}
	if s.beta != nil {
		y = b.op("Add", []string{b.init(s.beta), y})
	}
	b.output(y)
	switch s.extraOut {
	case "root":
		b.output(root)
	case "centered":
		b.output(centered)
	}
	return b.model(s.opset)
}

func TestFuseNorms(t *testing.T) {
	r := rng(t, 5, 6)
	x := map[string]*Tensor{"x": randF32(r, 2, 2, 3, 8)}
	g, bt := randF32(r, 1, 8), randF32(r, 1, 8)
	for _, s := range []normSpec{
		{form: "one", gamma: g, eps: 1e-5},                          // the Llama export's form
		{form: "div", gamma: f32(sh(1, 1, 8), g.F32...), eps: 1e-6}, // another ε, γ of rank 3
		{form: "recip", eps: 1e-5, opset: 18},
		{form: "div", eps: 0.5},                                     // an ε far from the usual: read, not assumed
		{layer: true, form: "div", gamma: g, beta: bt, eps: 1e-5},   // torch's opset < 17 layer_norm
		{layer: true, form: "div", gamma: g, eps: 1e-12, opset: 18}, // no β, axes as an input
		{layer: true, form: "recip", eps: 1e-5},
	} {
		s.axis, s.meanAxis, s.keepdims = -1, -1, 1
		if s.opset == 0 {
			s.opset = 17
		}
		kind := FuseRMSNorm
		if s.layer {
			kind = FuseLayerNorm
		}
		p := checkFusion(t, normGraph(s), x, kind, 1)
		if p.Nodes != 1 {
			t.Errorf("%+v: %d nodes left, want 1 (%+v)", s, p.Nodes, p)
		}
	}
	// γ that is not a row ([2, 1, 8] scales per batch): the norm is fused,
	// the Mul by γ stays a node of its own.
	s := normSpec{form: "one", gamma: randF32(r, 1, 2, 1, 8), eps: 1e-5, axis: -1, meanAxis: -1, keepdims: 1, opset: 17}
	if p := checkFusion(t, normGraph(s), x, FuseRMSNorm, 1); p.Nodes != 2 {
		t.Errorf("γ [2 1 8]: %d nodes left, want 2", p.Nodes)
	}
}

func TestFuseNormsNearMiss(t *testing.T) {
	r := rng(t, 7, 8)
	x := map[string]*Tensor{"x": randF32(r, 2, 2, 3, 8)}
	g := randF32(r, 1, 8)
	base := normSpec{form: "one", gamma: g, eps: 1e-5, axis: -1, meanAxis: -1, keepdims: 1, opset: 17}
	for name, mod := range map[string]func(*normSpec){
		"mean of squares over axis 1":   func(s *normSpec) { s.axis = 1 },
		"axis 2 (the last, but not -1)": func(s *normSpec) { s.axis = 2 },
		"keepdims 0":                    func(s *normSpec) { s.keepdims = 0 },
		"ε a vector":                    func(s *normSpec) { s.epsVector = true },
		"root also an output":           func(s *normSpec) { s.extraOut = "root" },
		"LayerNorm mean over axis -2":   func(s *normSpec) { s.layer, s.form, s.meanAxis = true, "div", -2 },
		"LayerNorm x − mean an output":  func(s *normSpec) { s.layer, s.form, s.extraOut = true, "div", "centered" },
	} {
		s := base
		mod(&s)
		kind := FuseRMSNorm
		if s.layer {
			kind = FuseLayerNorm
		}
		mp := normGraph(s)
		t.Run(name, func(t *testing.T) {
			if s.keepdims == 0 {
				// [2 3] against [2 3 8] does not broadcast: both paths fail alike.
				fs, _ := loadProto(t, mp, Options{})
				if fs.Plan().Count(kind) != 0 {
					t.Errorf("keepdims 0 fused")
				}
				return
			}
			p := checkFusion(t, mp, x, kind, 0)
			if len(p.Skipped) == 0 {
				t.Errorf("no reason logged")
			}
			t.Log(p.Skipped)
		})
	}
}

// --- GELU and SiLU ----------------------------------------------------------

// geluGraph builds torch's erf GELU (tail "a": (x·(1+erf))·0.5; "b":
// (x·0.5)·(1+erf)), with the constants given.
func geluGraph(tail string, sqrt2, one, half float32, mulInv bool) *onnxpb.ModelProto {
	b := newGraph()
	x := b.input("x", tensor.F32)
	var t string
	if mulInv {
		t = b.op("Mul", []string{b.scalar(sqrt2), x})
	} else {
		t = b.op("Div", []string{x, b.scalar(sqrt2)})
	}
	u := b.op("Add", []string{b.op("Erf", []string{t}), b.scalar(one)})
	var y string
	if tail == "a" {
		y = b.op("Mul", []string{b.op("Mul", []string{x, u}), b.scalar(half)})
	} else {
		y = b.op("Mul", []string{b.op("Mul", []string{x, b.scalar(half)}), u})
	}
	b.output(y)
	return b.model(17)
}

// geluTanhGraph builds Hugging Face's gelu_new.
func geluTanhGraph(c1, c2 float32, cube float32, extra bool) *onnxpb.ModelProto {
	b := newGraph()
	x := b.input("x", tensor.F32)
	h := b.op("Mul", []string{x, b.scalar(0.5)})
	p := b.op("Pow", []string{x, b.scalar(cube)})
	q := b.op("Mul", []string{b.scalar(c2), p})
	s := b.op("Mul", []string{b.scalar(c1), b.op("Add", []string{x, q})})
	th := b.op("Tanh", []string{s})
	y := b.op("Mul", []string{h, b.op("Add", []string{th, b.scalar(1)})})
	b.output(y)
	if extra {
		b.output(th)
	}
	return b.model(17)
}

func TestFuseGeluSiLU(t *testing.T) {
	r := rng(t, 9, 10)
	x := map[string]*Tensor{"x": randF32(r, 3, 4, 5000)} // large enough for both threads
	for _, tail := range []string{"a", "b"} {
		if p := checkFusion(t, geluGraph(tail, float32(math.Sqrt2), 1, 0.5, false), x, FuseGelu, 1); p.Nodes != 1 {
			t.Errorf("tail %s: %d nodes", tail, p.Nodes)
		}
	}
	checkFusion(t, geluGraph("a", float32(1/math.Sqrt2), 1, 0.5, true), x, FuseGelu, 1)
	if p := checkFusion(t, geluTanhGraph(float32(math.Sqrt(2/math.Pi)), 0.044715, 3, false), x, FuseGeluTanh, 1); p.Nodes != 1 {
		t.Errorf("gelu tanh: %d nodes", p.Nodes)
	}
	b := newGraph()
	xs := b.input("x", tensor.F32)
	b.output(b.op("Mul", []string{b.op("Sigmoid", []string{xs}), xs}))
	checkFusion(t, b.model(17), x, FuseSiLU, 1)
	// A float16 operand: the fused kernels fall back to the nodes, which
	// round to float16 after each.
	h := randF32(r, 3, 2, 50)
	h.DType = tensor.F16
	roundFloat(h)
	b = newGraph()
	xs = b.input("x", tensor.F16)
	b.output(b.op("Mul", []string{xs, b.op("Sigmoid", []string{xs})}))
	checkFusion(t, b.model(17), map[string]*Tensor{"x": h}, FuseSiLU, 1)
	checkFusion(t, geluGraph("b", float32(math.Sqrt2), 1, 0.5, false), map[string]*Tensor{"x": h}, FuseGelu, 1)
}

func TestFuseGeluSiLUNearMiss(t *testing.T) {
	r := rng(t, 11, 12)
	x := map[string]*Tensor{"x": randF32(r, 3, 4, 50)}
	for name, mp := range map[string]*onnxpb.ModelProto{
		"halved by 0.6":        geluGraph("a", float32(math.Sqrt2), 1, 0.6, false),
		"x / 1.5 under Erf":    geluGraph("b", 1.5, 1, 0.5, false),
		"1 + erf is 2 + erf":   geluGraph("a", float32(math.Sqrt2), 2, 0.5, false),
		"tanh: 0.04 · x³":      geluTanhGraph(float32(math.Sqrt(2/math.Pi)), 0.04, 3, false),
		"tanh: x² not x³":      geluTanhGraph(float32(math.Sqrt(2/math.Pi)), 0.044715, 2, false),
		"tanh: √(2/π) rounded": geluTanhGraph(0.8, 0.044715, 3, false),
		"tanh: Tanh an output": geluTanhGraph(float32(math.Sqrt(2/math.Pi)), 0.044715, 3, true),
	} {
		t.Run(name, func(t *testing.T) {
			p := checkFusion(t, mp, x, FuseGelu, 0)
			if p.Count(FuseGeluTanh) != 0 {
				t.Errorf("gelu tanh fused")
			}
			t.Log(p.Skipped)
		})
	}
	// SiLU: the sigmoid multiplies another value; the sigmoid is also an
	// output.
	b := newGraph()
	xs, ys := b.input("x", tensor.F32), b.input("y", tensor.F32)
	b.output(b.op("Mul", []string{b.op("Sigmoid", []string{xs}), ys}))
	checkFusion(t, b.model(17), map[string]*Tensor{"x": x["x"], "y": randF32(r, 1, 4, 50)}, FuseSiLU, 0)
	b = newGraph()
	xs = b.input("x", tensor.F32)
	sg := b.op("Sigmoid", []string{xs})
	b.output(b.op("Mul", []string{sg, xs}), sg)
	checkFusion(t, b.model(17), x, FuseSiLU, 0)
}

// --- scale + mask + Softmax -------------------------------------------------

func softmaxGraph(op string, c float32, mask *Tensor, axis int64, extra bool) *onnxpb.ModelProto {
	b := newGraph()
	x := b.input("x", tensor.F32)
	s := b.op(op, []string{x, b.scalar(c)})
	in := s
	if mask != nil {
		in = b.op("Add", []string{s, b.init(mask)})
	}
	b.output(b.op("Softmax", []string{in}, aInt("axis", axis)))
	if extra {
		b.output(s)
	}
	return b.model(17)
}

func causal(n int) *Tensor {
	m := zeros(1, 1, n, n)
	for i := 0; i < n; i++ {
		for j := i + 1; j < n; j++ {
			m.F32[i*n+j] = float32(math.Inf(-1))
		}
	}
	return m
}

func TestFuseScaleSoftmax(t *testing.T) {
	r := rng(t, 13, 14)
	x := map[string]*Tensor{"x": randF32(r, 3, 2, 4, 64, 64)}
	for _, mp := range []*onnxpb.ModelProto{
		softmaxGraph("Div", float32(math.Sqrt(8)), causal(64), -1, false),
		softmaxGraph("Mul", 0.125, nil, -1, false),
		softmaxGraph("Div", 2, randF32(r, 1, 64), -1, false), // a mask row for every query
		softmaxGraph("Div", 2, randF32(r, 1, 4, 1, 1), -1, false),
	} {
		if p := checkFusion(t, mp, x, FuseSoftmax, 1); p.Nodes != 1 {
			t.Errorf("%d nodes left", p.Nodes)
		}
	}
}

// TestFuseScaleSoftmaxSelfMask: the scores are their own mask (x/c + x),
// and x dies at the fused node: it must not be written over while read.
func TestFuseScaleSoftmaxSelfMask(t *testing.T) {
	r := rng(t, 23, 24)
	b := newGraph()
	x := b.input("x", tensor.F32)
	e := b.op("Exp", []string{x}) // computed, so that it lives in the arena
	s := b.op("Div", []string{e, b.scalar(3)})
	b.output(b.op("Softmax", []string{b.op("Add", []string{s, e})}, aInt("axis", -1)))
	checkFusion(t, b.model(17), map[string]*Tensor{"x": randF32(r, 1, 3, 40)}, FuseSoftmax, 1)
}

func TestFuseScaleSoftmaxNearMiss(t *testing.T) {
	r := rng(t, 15, 16)
	x := map[string]*Tensor{"x": randF32(r, 3, 2, 4, 16, 16)}
	for name, mp := range map[string]*onnxpb.ModelProto{
		"axis 1":                  softmaxGraph("Div", 4, causal(16), 1, false),
		"scaled scores an output": softmaxGraph("Div", 4, causal(16), -1, true),
		"scaled by Sub":           softmaxGraph("Sub", 4, causal(16), -1, false),
	} {
		t.Run(name, func(t *testing.T) { checkFusion(t, mp, x, FuseSoftmax, 0) })
	}
}

// TestGPT2ExportFusions: torch.onnx.export's opset-14 graph of a tiny
// GPT-2 (testdata/onnx-gpt2) gets every fusion its layers offer — the
// decomposed LayerNorms, the biased Conv1D projections, gelu_new and the
// scaled, masked attention softmax — and computes the unfused logits.
func TestGPT2ExportFusions(t *testing.T) {
	m, err := onnx.Open("../../testdata/onnx-gpt2/model.onnx")
	if err != nil {
		t.Fatal(err)
	}
	fs, err := Load(m, Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	us, err := Load(m, Options{Threads: 2, NoFusion: true})
	if err != nil {
		t.Fatal(err)
	}
	p := fs.Plan()
	t.Logf("%d nodes fused into %d (%d fusions); skipped: %q", us.Plan().Nodes, p.Nodes, len(p.Fusions), p.Skipped)
	// One c_attn product per layer feeds a Split: no products share an
	// input, so no QKV group.
	for kind, want := range map[string]int{FuseLayerNorm: 5, FuseMatMulAdd: 8, FuseGeluTanh: 2, FuseSoftmax: 2, FuseQKV: 0} {
		if got := p.Count(kind); got != want {
			t.Errorf("%d %s fusions, want %d", got, kind, want)
		}
	}
	ids := make([]int, 32)
	for i := range ids {
		ids[i] = (i*17 + 3) % 40
	}
	a, b := make([]float32, 32*40), make([]float32, 32*40)
	if err := fs.Logits(ids, a); err != nil {
		t.Fatal(err)
	}
	if err := us.Logits(ids, b); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if d := math.Abs(float64(a[i] - b[i])); d > 1e-6*max(1, math.Abs(float64(b[i]))) {
			t.Fatalf("logit %d: fused %v, unfused %v", i, a[i], b[i])
		}
	}
}

// --- attention ----------------------------------------------------------------

// attentionGraph builds MatMul(Softmax(MatMul(q, Transpose(k)) / c + mask), v).
func attentionGraph(mask *Tensor, extra string) *onnxpb.ModelProto {
	b := newGraph()
	q, k, v := b.input("q", tensor.F32), b.input("k", tensor.F32), b.input("v", tensor.F32)
	kt := b.op("Transpose", []string{k}, aInts("perm", 0, 1, 3, 2))
	s := b.op("MatMul", []string{q, kt})
	in := b.op("Div", []string{s, b.scalar(float32(math.Sqrt(8)))})
	if mask != nil {
		in = b.op("Add", []string{in, b.init(mask)})
	}
	p := b.op("Softmax", []string{in}, aInt("axis", -1))
	b.output(b.op("MatMul", []string{p, v}))
	switch extra {
	case "scores":
		b.output(s)
	case "probs":
		b.output(p)
	}
	return b.model(17)
}

func attentionFeeds(r *rand.Rand, t, s int) map[string]*Tensor {
	return attentionFeedsV(r, t, s, 8)
}

// attentionFeedsV has values of width dv.
func attentionFeedsV(r *rand.Rand, t, s, dv int) map[string]*Tensor {
	return map[string]*Tensor{"q": randF32(r, 1, 1, 2, t, 8), "k": randF32(r, 1, 1, 2, s, 8), "v": randF32(r, 1, 1, 2, s, dv)}
}

func TestFuseAttention(t *testing.T) {
	r := rng(t, 17, 18)
	for _, n := range []int{1, 5, 64, 130, 500} {
		checkFusion(t, attentionGraph(causal(n), ""), attentionFeeds(r, n, n), FuseAttention, 1)
	}
	checkFusion(t, attentionGraph(nil, ""), attentionFeeds(r, 70, 70), FuseAttention, 1)
	// Values as wide as a tile or wider: the product by V is not transposed.
	for _, dv := range []int{32, 70} {
		checkFusion(t, attentionGraph(causal(90), ""), attentionFeedsV(r, 90, 90, dv), FuseAttention, 1)
	}
	// A padding mask (−∞ on the last columns of every row) and a mask of
	// large finite values.
	pad := zeros(1, 1, 1, 40)
	for j := 30; j < 40; j++ {
		pad.F32[j] = float32(math.Inf(-1))
	}
	checkFusion(t, attentionGraph(pad, ""), attentionFeeds(r, 20, 40), FuseAttention, 1)
	big := causal(33)
	for i, v := range big.F32 {
		if math.IsInf(float64(v), -1) {
			big.F32[i] = -1e30
		}
	}
	checkFusion(t, attentionGraph(big, ""), attentionFeeds(r, 33, 33), FuseAttention, 1)
	// Operands that are not finite: the fused node runs the nodes.
	f := attentionFeeds(r, 9, 9)
	f["v"].F32[3] = float32(math.Inf(1))
	checkFusion(t, attentionGraph(causal(9), ""), f, FuseAttention, 1)
}

func TestFuseAttentionNearMiss(t *testing.T) {
	r := rng(t, 19, 20)
	for _, extra := range []string{"scores", "probs"} {
		p := checkFusion(t, attentionGraph(causal(16), extra), attentionFeeds(r, 16, 16), FuseAttention, 0)
		t.Logf("%s also an output: %q", extra, p.Skipped)
	}
}

// --- products sharing an input (QKV) -----------------------------------------

// qkvMember describes one product of x in qkvGraph.
type qkvMember struct {
	n        int  // output columns
	k        int  // weight depth (x's last dimension, but for a near miss)
	bias     bool // followed by Add of a constant [n] bias
	computed bool // the weight is a graph input ("w<i>"), not a constant
	own      bool // reads its own Identity(x), not x (no shared input)
	output   bool // the product is also a graph output
}

// qkvGraph builds products of x by each member's weight, each read by a
// Relu.
func qkvGraph(r *rand.Rand, ms ...qkvMember) *onnxpb.ModelProto {
	b := newGraph()
	x := b.input("x", tensor.F32)
	for i, m := range ms {
		var w string
		if m.computed {
			w = b.input(fmt.Sprintf("w%d", i), tensor.F32)
		} else {
			w = b.init(randF32(r, 1/math.Sqrt(float64(m.k)), m.k, m.n))
		}
		in := x
		if m.own {
			in = b.op("Identity", []string{x})
		}
		y := b.op("MatMul", []string{in, w})
		if m.bias {
			y = b.op("Add", []string{y, b.init(randF32(r, 1, m.n))})
		}
		if m.output {
			b.output(y)
		}
		b.output(b.op("Relu", []string{y}))
	}
	return b.model(17)
}

// sameBits runs a and b on feeds and checks that their outputs, in
// graph order, are equal to the bit.
func sameBits(t *testing.T, a, b *Session, feeds map[string]*Tensor) {
	t.Helper()
	ra, err := a.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Run(feeds)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Outputs()) != len(b.Outputs()) {
		t.Fatalf("outputs %q and %q", a.Outputs(), b.Outputs())
	}
	for j, name := range b.Outputs() {
		got, want := ra[a.Outputs()[j]], rb[name]
		if got == nil || !shapeEq(got.Shape, want.Shape) {
			t.Fatalf("output %s: %v, want shape %v", name, got, want.Shape)
		}
		for i, w := range want.F32 {
			if math.Float32bits(got.F32[i]) != math.Float32bits(w) {
				t.Fatalf("output %s element %d: %v, want %v to the bit", name, i, got.F32[i], w)
			}
		}
	}
}

func TestFuseQKV(t *testing.T) {
	r := rng(t, 21, 22)
	load := func(mp *onnxpb.ModelProto, o Options) *Session {
		t.Helper()
		s, err := loadProto(t, mp, o)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	// Plain products, K below and past the GEMM's block depth; rows and
	// columns past one tile block (192 rows, 512 columns on AVX-512) and
	// not multiples of a tile: bit-identical to the unfused products.
	for _, c := range []struct{ rows, k, n int }{{6, 5, 8}, {6, 400, 8}, {250, 70, 600}} {
		ms := []qkvMember{{n: c.n, k: c.k}, {n: 4, k: c.k}, {n: 37, k: c.k}}
		mp := qkvGraph(r, ms...)
		feeds := map[string]*Tensor{"x": randF32(r, 1, 2, c.rows/2, c.k)}
		p := checkFusion(t, mp, feeds, FuseQKV, 1)
		if p.Nodes != 4 || len(p.Skipped) != 0 {
			t.Errorf("%+v: plan %+v, want 4 nodes (the group and 3 Relus), nothing skipped", c, p)
		}
		sameBits(t, load(mp, Options{Threads: 2}), load(mp, Options{Threads: 2, NoFusion: true}), feeds)
	}
	// Biased products (MatMul+Add members), mixed with a plain one and a
	// product that is also a graph output: bit-identical to the same
	// MatMul+Adds reading their own copies of x (no group), and within
	// 1e-6 of the unfused graph (the bias joins the first block's sum).
	for _, k := range []int{5, 400} {
		ms := []qkvMember{{n: 16, k: k, bias: true}, {n: 8, k: k}, {n: 8, k: k, bias: true, output: true}}
		mp := qkvGraph(r, ms...)
		feeds := map[string]*Tensor{"x": randF32(r, 1, 3, 7, k)}
		p := checkFusion(t, mp, feeds, FuseQKV, 1)
		if p.Count(FuseMatMulAdd) != 2 {
			t.Errorf("k %d: %d MatMul+Add, want 2 (in the group)", k, p.Count(FuseMatMulAdd))
		}
		for i := range ms {
			ms[i].own = true
		}
		apart := load(qkvGraph(rng(t, 23, uint64(k)), ms...), Options{Threads: 2})
		if n := apart.Plan().Count(FuseQKV); n != 0 {
			t.Fatalf("k %d: %d QKV fusions of products of separate inputs", k, n)
		}
		sameBits(t, load(qkvGraph(rng(t, 23, uint64(k)), ms...), Options{Threads: 2}), apart, feeds)
		for i := range ms {
			ms[i].own = false
		}
		sameBits(t, load(qkvGraph(rng(t, 23, uint64(k)), ms...), Options{Threads: 2}), apart, feeds)
	}
	// A 1-D operand with a [1, n] bias: the group falls back to its nodes
	// (the bias raises the rank).
	b := newGraph()
	x := b.input("x", tensor.F32)
	y1 := b.op("Add", []string{b.op("MatMul", []string{x, b.init(randF32(r, 1, 5, 4))}), b.init(randF32(r, 1, 1, 4))})
	y2 := b.op("MatMul", []string{x, b.init(randF32(r, 1, 5, 3))})
	b.output(y1, y2)
	checkFusion(t, b.model(17), map[string]*Tensor{"x": randF32(r, 1, 5)}, FuseQKV, 1)
}

func TestFuseQKVNearMiss(t *testing.T) {
	r := rng(t, 25, 26)
	x := randF32(r, 1, 2, 3, 8)
	feeds := map[string]*Tensor{"x": x, "w1": randF32(r, 1, 8, 4)}
	// A computed weight: the other two products are grouped, the third
	// is logged.
	p := checkFusion(t, qkvGraph(r, qkvMember{n: 4, k: 8}, qkvMember{n: 4, k: 8, computed: true}, qkvMember{n: 6, k: 8}), feeds, FuseQKV, 1)
	if p.Nodes != 5 || len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0], "not a constant") {
		t.Errorf("plan %+v: want 5 nodes and the computed weight logged", p)
	}
	// With only one constant weight left: no group, logged.
	p = checkFusion(t, qkvGraph(r, qkvMember{n: 4, k: 8}, qkvMember{n: 4, k: 8, computed: true}), feeds, FuseQKV, 0)
	if len(p.Skipped) != 1 {
		t.Errorf("skipped %q, want the computed weight", p.Skipped)
	}
	// Products of different inputs: nothing to group, nothing logged.
	p = checkFusion(t, qkvGraph(r, qkvMember{n: 4, k: 8, own: true}, qkvMember{n: 4, k: 8, own: true}), map[string]*Tensor{"x": x}, FuseQKV, 0)
	if len(p.Skipped) != 0 {
		t.Errorf("skipped %q, want nothing", p.Skipped)
	}
	// Weights of different depths (a graph that cannot run): not grouped,
	// logged, and both sessions refuse it.
	s, err := loadProto(t, qkvGraph(r, qkvMember{n: 4, k: 8}, qkvMember{n: 4, k: 7}), Options{Threads: 2})
	if err != nil {
		t.Fatal(err)
	}
	p = s.Plan()
	t.Logf("different depths: %q", p.Skipped)
	if p.Count(FuseQKV) != 0 || len(p.Skipped) != 1 || !strings.Contains(p.Skipped[0], "depths K 8 and 7") {
		t.Errorf("plan %+v: want no group and the depths logged", p)
	}
	if _, err := s.Run(map[string]*Tensor{"x": x}); !errors.Is(err, ErrInvalid) {
		t.Errorf("run: %v, want ErrInvalid", err)
	}
}
