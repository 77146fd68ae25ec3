package native

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"strings"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/onnx/onnxpb"
	"github.com/lmsparse/lmsparse/model"
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
	"github.com/lmsparse/lmsparse/tensor"
)

// ErrNotRecognized reports a graph that is not a recognisable llama or
// GPT-2 export (see the package documentation): the caller runs it on the
// general executor instead.
var ErrNotRecognized = errors.New("not a recognised llama/gpt2 ONNX export")

// Spec is what [Recognize] read from a graph: the configuration of the
// equivalent Hugging Face model, and where each of its tensors is.
type Spec struct {
	// Config is the model's configuration; NumHeads/NumKVHeads/HeadDim
	// are those of the first candidate (see Candidates).
	Config checkpoint.Config
	// Candidates are the (heads, head dim) pairs still to try, best first.
	Candidates [][2]int
	tensors    map[string]ref
}

// ref locates a Hugging Face tensor: an initializer, read as it is or
// transposed (a 2-D [rows, cols] initializer standing for [cols, rows]).
type ref struct {
	init      string
	transpose bool
	shape     []int // the Hugging Face shape
}

type graph struct {
	m        *onnx.Model
	producer map[string]*onnxpb.NodeProto
	inits    map[string]onnx.Initializer
	alias    map[string]string // Identity outputs → initializer
}

func newGraph(m *onnx.Model) *graph {
	g := &graph{m: m, producer: map[string]*onnxpb.NodeProto{}, inits: map[string]onnx.Initializer{}, alias: map[string]string{}}
	for _, in := range m.Initializers() {
		g.inits[in.Name] = in
	}
	for _, n := range m.Graph().GetNode() {
		for _, o := range n.GetOutput() {
			g.producer[o] = n
		}
	}
	for _, n := range m.Graph().GetNode() {
		if n.GetOpType() == "Identity" && len(n.GetInput()) == 1 && len(n.GetOutput()) == 1 {
			if init, ok := g.resolve(n.GetInput()[0]); ok {
				g.alias[n.GetOutput()[0]] = init
			}
		}
	}
	return g
}

// resolve follows Identity nodes from a value name to an initializer.
func (g *graph) resolve(name string) (string, bool) {
	for range 64 {
		if _, ok := g.inits[name]; ok {
			return name, true
		}
		if a, ok := g.alias[name]; ok {
			return a, true
		}
		n := g.producer[name]
		if n == nil || n.GetOpType() != "Identity" || len(n.GetInput()) != 1 {
			return "", false
		}
		name = n.GetInput()[0]
	}
	return "", false
}

func dims(s tensor.Shape) []int {
	out := make([]int, len(s))
	for i, d := range s {
		out[i] = int(d)
	}
	return out
}

func notRecognized(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNotRecognized, fmt.Sprintf(format, args...))
}

// Recognize reads a llama or GPT-2 export's configuration and tensor
// locations from m by the rules of the package documentation; the error
// wraps [ErrNotRecognized] and says which rule failed.
func Recognize(m *onnx.Model) (*Spec, error) {
	g := newGraph(m)
	gr := m.Graph()
	var inputs []*onnxpb.ValueInfoProto
	for _, vi := range gr.GetInput() {
		if _, isInit := g.inits[vi.GetName()]; !isInit {
			inputs = append(inputs, vi)
		}
	}
	if len(inputs) != 1 {
		return nil, notRecognized("%d graph inputs, want only the token ids", len(inputs))
	}
	tt := inputs[0].GetType().GetTensorType()
	if tt == nil || len(tt.GetShape().GetDim()) != 2 || !isIntType(onnx.DType(tt.GetElemType())) {
		return nil, notRecognized("input %q is not an integer tensor of rank 2", inputs[0].GetName())
	}
	var out string
	for _, o := range gr.GetOutput() {
		if o.GetName() == "logits" {
			out = o.GetName()
		}
	}
	if out == "" && len(gr.GetOutput()) > 0 {
		out = gr.GetOutput()[0].GetName()
	}
	if len(gr.GetOutput()) != 1 {
		return nil, notRecognized("%d graph outputs, want only the logits", len(gr.GetOutput()))
	}
	head, err := g.headRef(out)
	if err != nil {
		return nil, err
	}
	s := &Spec{tensors: map[string]ref{}}
	switch {
	case g.has("model.embed_tokens.weight") || g.has("embed_tokens.weight"):
		err = g.llama(s, head)
	case g.has("transformer.wte.weight") || g.has("wte.weight"):
		err = g.gpt2(s, head)
	default:
		err = notRecognized("no llama (embed_tokens.weight) or gpt2 (wte.weight) token embedding")
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

func isIntType(d tensor.DType) bool {
	switch d {
	case tensor.I64, tensor.I32, tensor.I16, tensor.I8, tensor.U8, tensor.U16, tensor.U32, tensor.U64:
		return true
	}
	return false
}

func (g *graph) has(name string) bool { _, ok := g.resolve(name); return ok }

// headRef finds the LM head: the MatMul computing out, whose B operand is
// a 2-D initializer, transposed or not.
func (g *graph) headRef(out string) (ref, error) {
	n := g.producer[out]
	if n == nil || n.GetOpType() != "MatMul" || len(n.GetInput()) != 2 {
		return ref{}, notRecognized("output %q is not computed by a MatMul", out)
	}
	b := n.GetInput()[1]
	if init, ok := g.resolve(b); ok {
		in := g.inits[init]
		if len(in.Shape) != 2 || !in.DType.IsFloat() {
			return ref{}, notRecognized("the LM head %q is not a 2-D float tensor", init)
		}
		return ref{init: init, transpose: true, shape: []int{int(in.Shape[1]), int(in.Shape[0])}}, nil
	}
	t := g.producer[b]
	if t != nil && t.GetOpType() == "Transpose" && len(t.GetInput()) == 1 {
		perm := attrInts(t, "perm")
		if init, ok := g.resolve(t.GetInput()[0]); ok && len(perm) == 2 && perm[0] == 1 && perm[1] == 0 {
			in := g.inits[init]
			if len(in.Shape) != 2 || !in.DType.IsFloat() {
				return ref{}, notRecognized("the LM head %q is not a 2-D float tensor", init)
			}
			return ref{init: init, shape: dims(in.Shape)}, nil
		}
	}
	return ref{}, notRecognized("the logits MatMul does not read a weight initializer")
}

func attrInts(n *onnxpb.NodeProto, name string) []int64 {
	for _, a := range n.GetAttribute() {
		if a.GetName() == name {
			return a.GetInts()
		}
	}
	return nil
}

// lookup maps a Hugging Face name to the initializer standing for it,
// trying the prefixed and unprefixed names, and checks its shape.
func (g *graph) lookup(s *Spec, prefix, name string, shape ...int) error {
	for _, n := range []string{prefix + name, name} {
		init, ok := g.resolve(n)
		if !ok {
			continue
		}
		in := g.inits[init]
		if !in.DType.IsFloat() || !equalDims(dims(in.Shape), shape) {
			return notRecognized("tensor %q: %s %v, want a float tensor of shape %v", n, in.DType, []int64(in.Shape), shape)
		}
		s.tensors[prefix+name] = ref{init: init, shape: shape}
		return nil
	}
	return notRecognized("tensor %q is missing", prefix+name)
}

func equalDims(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// countLayers counts layers 0, 1, … whose marker tensor exists.
func (g *graph) countLayers(marker func(i int) string) int {
	n := 0
	for g.has(marker(n)) {
		n++
	}
	return n
}

func (g *graph) shapeOf(name string) []int {
	init, ok := g.resolve(name)
	if !ok {
		return nil
	}
	return dims(g.inits[init].Shape)
}

func (g *graph) llama(s *Spec, head ref) error {
	p := "model."
	if !g.has(p + "embed_tokens.weight") {
		p = ""
	}
	e := g.shapeOf(p + "embed_tokens.weight")
	if len(e) != 2 {
		return notRecognized("embed_tokens.weight is not 2-D")
	}
	V, D := e[0], e[1]
	L := g.countLayers(func(i int) string { return fmt.Sprintf("%slayers.%d.self_attn.q_proj.weight", p, i) })
	if L == 0 {
		return notRecognized("no layers.0.self_attn.q_proj.weight")
	}
	q, k, up := g.shapeOf(p+"layers.0.self_attn.q_proj.weight"), g.shapeOf(p+"layers.0.self_attn.k_proj.weight"), g.shapeOf(p+"layers.0.mlp.up_proj.weight")
	if len(q) != 2 || len(k) != 2 || len(up) != 2 {
		return notRecognized("layer 0's projections are missing or not 2-D")
	}
	qDim, kvDim, I := q[0], k[0], up[0]
	c := &s.Config
	*c = checkpoint.Config{ModelType: "llama", Architectures: []string{"LlamaForCausalLM"}, HiddenSize: D, NumLayers: L,
		IntermediateSize: I, VocabSize: V, Activation: "silu"}
	for i := range L {
		lp := fmt.Sprintf("layers.%d.", i)
		for _, t := range []struct {
			name  string
			shape []int
		}{
			{"input_layernorm.weight", []int{D}}, {"post_attention_layernorm.weight", []int{D}},
			{"self_attn.q_proj.weight", []int{qDim, D}}, {"self_attn.k_proj.weight", []int{kvDim, D}},
			{"self_attn.v_proj.weight", []int{kvDim, D}}, {"self_attn.o_proj.weight", []int{D, qDim}},
			{"mlp.gate_proj.weight", []int{I, D}}, {"mlp.up_proj.weight", []int{I, D}}, {"mlp.down_proj.weight", []int{D, I}},
		} {
			if err := g.lookup(s, p, lp+t.name, t.shape...); err != nil {
				return err
			}
		}
	}
	if err := g.lookup(s, p, "embed_tokens.weight", V, D); err != nil {
		return err
	}
	if err := g.lookup(s, p, "norm.weight", D); err != nil {
		return err
	}
	if err := g.setHead(s, head, p+"embed_tokens.weight", V, D); err != nil {
		return err
	}
	if n := g.count("Sigmoid"); n < L {
		return notRecognized("%d Sigmoid nodes for %d layers (SiLU)", n, L)
	}
	var err error
	if c.NormEps, err = g.eps(); err != nil {
		return err
	}
	cands := g.heads(qDim)
	for _, hc := range cands {
		if kvDim%hc[1] == 0 && hc[1]%2 == 0 {
			s.Candidates = append(s.Candidates, hc)
		}
	}
	if len(s.Candidates) == 0 {
		return notRecognized("no head count fits the reshapes of q_proj's %d outputs", qDim)
	}
	theta, maxPos, err := g.rope(s.Candidates[0][1])
	if err != nil {
		return err
	}
	c.RopeTheta, c.MaxPositions = theta, maxPos
	s.use(0)
	return nil
}

// use sets the configuration's heads from candidate i.
func (s *Spec) use(i int) {
	c := &s.Config
	c.NumHeads, c.HeadDim = s.Candidates[i][0], s.Candidates[i][1]
	c.NumKVHeads = c.NumHeads
	if c.ModelType != "gpt2" {
		c.NumKVHeads = s.tensors[kName(s)].shape[0] / c.HeadDim
	}
}

func kName(s *Spec) string {
	for _, p := range []string{"model.", ""} {
		if _, ok := s.tensors[p+"layers.0.self_attn.k_proj.weight"]; ok {
			return p + "layers.0.self_attn.k_proj.weight"
		}
	}
	return ""
}

// setHead records the LM head: tied when it is the token embedding.
func (g *graph) setHead(s *Spec, head ref, embed string, V, D int) error {
	if !equalDims(head.shape, []int{V, D}) {
		return notRecognized("the LM head has shape %v, want [%d %d]", head.shape, V, D)
	}
	if e := s.tensors[embed]; e.init == head.init && !head.transpose {
		s.Config.TieWordEmbeddings = true
		return nil
	}
	s.tensors["lm_head.weight"] = head
	return nil
}

func (g *graph) count(op string) int {
	n := 0
	for _, nd := range g.m.Graph().GetNode() {
		if nd.GetOpType() == op {
			n++
		}
	}
	return n
}

// constValue returns the data of a constant value: an initializer or a
// Constant node's value.
func (g *graph) constValue(name string) (tensor.DType, []byte, bool) {
	if init, ok := g.resolve(name); ok {
		in := g.inits[init]
		if in.Bytes > 64 {
			return "", nil, false
		}
		b, err := g.m.InitializerBytes(init)
		if err != nil {
			return "", nil, false
		}
		return in.DType, b, true
	}
	n := g.producer[name]
	if n == nil || n.GetOpType() != "Constant" {
		return "", nil, false
	}
	for _, a := range n.GetAttribute() {
		if a.GetName() == "value" && a.GetT() != nil {
			dt, _, b, err := g.m.TensorData(a.GetT())
			if err != nil {
				return "", nil, false
			}
			return dt, b, true
		}
	}
	return "", nil, false
}

func scalarFloat(dt tensor.DType, b []byte) (float64, bool) {
	switch {
	case dt == tensor.F32 && len(b) == 4:
		// The shortest decimal that rounds to the float32 (1e-05, not
		// 9.99999974e-06): the value a config.json would hold.
		f := math.Float32frombits(binary.LittleEndian.Uint32(b))
		v, err := strconv.ParseFloat(strconv.FormatFloat(float64(f), 'g', -1, 32), 64)
		return v, err == nil
	case dt == tensor.F64 && len(b) == 8:
		return math.Float64frombits(binary.LittleEndian.Uint64(b)), true
	}
	return 0, false
}

// eps finds the normalization epsilon: the constant added to every
// ReduceMean's output feeding a Sqrt path, or LayerNormalization's
// attribute; they must all agree.
func (g *graph) eps() (float64, error) {
	var found []float64
	consumers := map[string][]*onnxpb.NodeProto{}
	for _, n := range g.m.Graph().GetNode() {
		for _, x := range n.GetInput() {
			consumers[x] = append(consumers[x], n)
		}
	}
	for _, n := range g.m.Graph().GetNode() {
		switch n.GetOpType() {
		case "LayerNormalization":
			e := 1e-5
			for _, a := range n.GetAttribute() {
				if a.GetName() == "epsilon" {
					e = float64(a.GetF())
				}
			}
			found = append(found, e)
		case "ReduceMean":
			for _, c := range consumers[n.GetOutput()[0]] {
				if c.GetOpType() != "Add" || len(c.GetInput()) != 2 {
					continue
				}
				other := c.GetInput()[0]
				if other == n.GetOutput()[0] {
					other = c.GetInput()[1]
				}
				if dt, b, ok := g.constValue(other); ok {
					if v, ok := scalarFloat(dt, b); ok {
						found = append(found, v)
					}
				}
			}
		}
	}
	if len(found) == 0 {
		return 0, notRecognized("no normalization epsilon (a constant added to a ReduceMean, or LayerNormalization)")
	}
	for _, v := range found[1:] {
		if v != found[0] {
			return 0, notRecognized("normalization epsilons differ (%g and %g)", found[0], v)
		}
	}
	return found[0], nil
}

// heads returns (heads, head dim) candidates for width columns: pairs
// of which one factor is an integer constant of the graph; first those
// whose head dim's square root (or its reciprocal) is a float constant,
// then those whose two factors are both constants.
func (g *graph) heads(width int) [][2]int {
	ints := map[int64]bool{}
	floats := map[float64]bool{}
	for _, n := range g.m.Graph().GetNode() {
		if n.GetOpType() != "Constant" {
			continue
		}
		dt, b, ok := g.constValue(n.GetOutput()[0])
		if !ok {
			continue
		}
		switch {
		case dt == tensor.I64 && len(b) == 8:
			ints[int64(binary.LittleEndian.Uint64(b))] = true
		case dt == tensor.I32 && len(b) == 4:
			ints[int64(int32(binary.LittleEndian.Uint32(b)))] = true
		default:
			if v, ok := scalarFloat(dt, b); ok {
				floats[float64(float32(v))] = true
			}
		}
	}
	var first, both, rest [][2]int
	for h := 1; h <= width; h++ {
		if width%h != 0 || (!ints[int64(h)] && !ints[int64(width/h)]) {
			continue
		}
		hd := width / h
		r := math.Sqrt(float64(hd))
		switch {
		case floats[float64(float32(r))] || floats[float64(float32(1/r))]:
			first = append(first, [2]int{h, hd})
		case ints[int64(h)] && ints[int64(hd)]:
			both = append(both, [2]int{h, hd})
		default:
			rest = append(rest, [2]int{h, hd})
		}
	}
	first = append(first, both...)
	out := append(first, rest...)
	if len(out) > 3 {
		out = out[:3]
	}
	return out
}

// rope reads rope_theta from the cosine and sine tables and checks them.
func (g *graph) rope(hd int) (theta float64, maxPos int, err error) {
	var cosName, sinName string
	for name, in := range g.inits {
		l := strings.ToLower(name)
		if len(in.Shape) != 2 || (in.Shape[1] != int64(hd) && in.Shape[1] != int64(hd/2)) || in.DType != tensor.F32 {
			continue
		}
		if strings.Contains(l, "cos") {
			cosName = name
		} else if strings.Contains(l, "sin") {
			sinName = name
		}
	}
	if cosName == "" || sinName == "" || !equalDims(dims(g.inits[cosName].Shape), dims(g.inits[sinName].Shape)) {
		return 0, 0, notRecognized("no rotary cos/sin tables of width %d or %d", hd, hd/2)
	}
	cb, err := g.m.InitializerBytes(cosName)
	if err != nil {
		return 0, 0, err
	}
	sb, err := g.m.InitializerBytes(sinName)
	if err != nil {
		return 0, 0, err
	}
	P, w := int(g.inits[cosName].Shape[0]), int(g.inits[cosName].Shape[1])
	at := func(b []byte, p, i int) float64 {
		return float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*(p*w+i):])))
	}
	if P < 2 || hd < 4 {
		return 0, 0, notRecognized("rotary tables of %d positions for head dim %d", P, hd)
	}
	f1 := math.Atan2(at(sb, 1, 1), at(cb, 1, 1))
	theta = math.Pow(f1, -float64(hd)/2)
	if r := math.Round(theta); math.Abs(theta-r) < 1e-3*theta {
		theta = r
	}
	for p := range P {
		for i := range w {
			j := i % (hd / 2)
			a := float64(p) * math.Pow(theta, -float64(2*j)/float64(hd))
			if math.Abs(at(cb, p, i)-math.Cos(a)) > 1e-5*max(1, float64(p)/16) || math.Abs(at(sb, p, i)-math.Sin(a)) > 1e-5*max(1, float64(p)/16) {
				return 0, 0, notRecognized("rotary table %q differs from rope_theta %g at position %d, column %d", cosName, theta, p, i)
			}
		}
	}
	return theta, P, nil
}

func (g *graph) gpt2(s *Spec, head ref) error {
	p := "transformer."
	if !g.has(p + "wte.weight") {
		p = ""
	}
	e, pe := g.shapeOf(p+"wte.weight"), g.shapeOf(p+"wpe.weight")
	if len(e) != 2 || len(pe) != 2 || pe[1] != e[1] {
		return notRecognized("wte/wpe missing or of different widths")
	}
	V, D, P := e[0], e[1], pe[0]
	L := g.countLayers(func(i int) string { return fmt.Sprintf("%sh.%d.attn.c_attn.weight", p, i) })
	fc := g.shapeOf(p + "h.0.mlp.c_fc.weight")
	if L == 0 || len(fc) != 2 {
		return notRecognized("no h.0.attn.c_attn.weight / h.0.mlp.c_fc.weight")
	}
	I := fc[1]
	c := &s.Config
	*c = checkpoint.Config{ModelType: "gpt2", Architectures: []string{"GPT2LMHeadModel"}, HiddenSize: D, NumLayers: L,
		IntermediateSize: I, VocabSize: V, MaxPositions: P}
	for i := range L {
		lp := fmt.Sprintf("h.%d.", i)
		for _, t := range []struct {
			name  string
			shape []int
		}{
			{"ln_1.weight", []int{D}}, {"ln_1.bias", []int{D}}, {"ln_2.weight", []int{D}}, {"ln_2.bias", []int{D}},
			{"attn.c_attn.weight", []int{D, 3 * D}}, {"attn.c_attn.bias", []int{3 * D}},
			{"attn.c_proj.weight", []int{D, D}}, {"attn.c_proj.bias", []int{D}},
			{"mlp.c_fc.weight", []int{D, I}}, {"mlp.c_fc.bias", []int{I}},
			{"mlp.c_proj.weight", []int{I, D}}, {"mlp.c_proj.bias", []int{D}},
		} {
			if err := g.lookup(s, p, lp+t.name, t.shape...); err != nil {
				return err
			}
		}
	}
	for _, t := range []struct {
		name  string
		shape []int
	}{{"wte.weight", []int{V, D}}, {"wpe.weight", []int{P, D}}, {"ln_f.weight", []int{D}}, {"ln_f.bias", []int{D}}} {
		if err := g.lookup(s, p, t.name, t.shape...); err != nil {
			return err
		}
	}
	if err := g.setHead(s, head, p+"wte.weight", V, D); err != nil {
		return err
	}
	switch {
	case g.count("Tanh") >= L:
		c.Activation = "gelu_new"
	case g.count("Erf") >= L:
		c.Activation = "gelu"
	case g.count("Gelu") >= L:
		return notRecognized("Gelu operator (its approximate attribute is not read here)")
	default:
		return notRecognized("no Tanh or Erf per layer (GELU)")
	}
	var err error
	if c.NormEps, err = g.eps(); err != nil {
		return err
	}
	if s.Candidates = g.heads(D); len(s.Candidates) == 0 {
		return notRecognized("no head count fits the reshapes of %d columns", D)
	}
	s.use(0)
	return nil
}

// Tensors returns the spec's weights as model.Tensors, read from m.
func (s *Spec) Tensors(m *onnx.Model) model.Tensors { return source{s, m} }

type source struct {
	s *Spec
	m *onnx.Model
}

func (src source) Shape(name string) ([]int, bool) {
	r, ok := src.s.tensors[name]
	return r.shape, ok
}

func (src source) Read(name string, dst []float32) error {
	r, ok := src.s.tensors[name]
	if !ok {
		return fmt.Errorf("%w: tensor %q is missing", checkpoint.ErrFormat, name)
	}
	in, _ := src.m.Initializer(r.init)
	b, err := src.m.InitializerBytes(r.init)
	if err != nil {
		return err
	}
	src.m.Release(r.init)
	if !r.transpose {
		if err := tensor.DecodeF32(dst, b, in.DType); err != nil {
			return fmt.Errorf("%s: initializer %q: %w", src.m.Path(), r.init, err)
		}
		return nil
	}
	rows, cols := int(in.Shape[0]), int(in.Shape[1])
	tmp := make([]float32, rows*cols)
	if err := tensor.DecodeF32(tmp, b, in.DType); err != nil {
		return fmt.Errorf("%s: initializer %q: %w", src.m.Path(), r.init, err)
	}
	b = nil
	for i := range rows {
		for j := range cols {
			dst[j*rows+i] = tmp[i*cols+j]
		}
	}
	return nil
}

// probeIDs returns the fixed token ids of the verification window.
func probeIDs(vocab, maxPos int) []int {
	n := min(16, maxPos)
	ids := make([]int, n)
	for i := range ids {
		ids[i] = (i*7919 + 13) % vocab
	}
	if vocab > 1 {
		ids[0] = 1 // BOS in llama vocabularies
	}
	return ids
}

// Load recognises m, computes the probe window's logits with the general
// executor, builds the model for each head-count candidate and returns
// the first whose logits agree (see the package documentation). Errors
// wrap [ErrNotRecognized] when the graph is not (or not verifiably) a
// recognised export; other errors are failures to read or run it.
func Load(m *onnx.Model, opt model.Options) (*model.Model, error) {
	s, err := Recognize(m)
	if err != nil {
		return nil, err
	}
	ids := probeIDs(s.Config.VocabSize, s.Config.MaxPositions)
	V := s.Config.VocabSize
	want := make([]float32, len(ids)*V)
	sess, err := onnxrun.Load(m, onnxrun.Options{Threads: opt.Threads, Lazy: true})
	if err != nil {
		return nil, err
	}
	if err := sess.Logits(ids, want); err != nil {
		return nil, err
	}
	sess = nil
	runtime.GC()
	scale := 1.0
	for _, v := range want {
		scale = max(scale, math.Abs(float64(v)))
	}
	got := make([]float32, len(want))
	var last error
	for i := range s.Candidates {
		s.use(i)
		md, err := model.NewFromTensors(&s.Config, s.Tensors(m), opt)
		if err != nil {
			return nil, err
		}
		if err := md.Forward(ids, got); err != nil {
			return nil, err
		}
		worst := 0.0
		for j := range got {
			worst = max(worst, math.Abs(float64(got[j])-float64(want[j])))
		}
		if worst <= 1e-4*scale {
			return md, nil
		}
		last = notRecognized("%s with %d heads of %d: probe logits differ from the general executor's by %.3g (largest logit %.3g)",
			s.Config.ModelType, s.Config.NumHeads, s.Config.HeadDim, worst, scale)
	}
	return nil, last
}
