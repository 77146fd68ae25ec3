package train

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lmsparse/lmsparse/arch"
	"github.com/lmsparse/lmsparse/checkpoint"
)

// ErrInvalid reports options or inputs training cannot use: a bad step
// count, batch, context or learning rate, too little text, an unsupported
// model.
var ErrInvalid = errors.New("invalid training input")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Param is one trainable tensor: its checkpoint name and shape, its
// float32 values W and gradient G (views into the net's fused buffers).
type Param struct {
	Name  string
	Shape []int
	W, G  []float32
	// Target marks a prunable weight (a 2-D weight inside a block, as
	// arch.DefaultTarget says): the L1 penalty, masks and the final
	// magnitude pruning apply to targets only.
	Target bool
	// mask, when set, holds the elements that may be non-zero (bit set);
	// the others stay exactly zero.
	mask []uint64
	// Optimizer state (AdamW).
	m, v []float32
}

// Size returns the number of elements.
func (p *Param) Size() int { return len(p.W) }

// Zeros counts the elements of W that are exactly zero.
func (p *Param) Zeros() int {
	n := 0
	for _, v := range p.W {
		if v == 0 {
			n++
		}
	}
	return n
}

// linear is one projection: y = x·Wᵀ (+ b) with W [out, in], or for gpt2's
// Conv1D (conv) y = x·W with W stored [in, out]. Fused projections (q|k|v,
// gate|up) are one buffer whose parts are the checkpoint's tensors.
type linear struct {
	w, g    []float32
	b, gb   []float32 // nil without bias
	in, out int
	conv    bool
}

// layer is one transformer block's parameters.
type layer struct {
	n1w, n1b, n1gw, n1gb []float32 // input norm (b: gpt2)
	n2w, n2b, n2gw, n2gb []float32 // post-attention norm
	qkv, o, up, down     linear
}

// Net is a causal language model's parameters as float32 tensors that
// training updates in place, with the architecture needed to run its
// forward and backward passes. It supports the families package model
// runs: llama (mistral, qwen2) and gpt2.
type Net struct {
	cfg    checkpoint.Config
	gpt2   bool
	params []*Param
	byName map[string]*Param

	embed, gEmbed []float32 // [vocab, dim]
	wpe, gWpe     []float32 // gpt2 [positions, dim]
	head, gHead   []float32 // [vocab, dim]: the embedding when tied
	nfw, nfb      []float32 // final norm
	gnfw, gnfb    []float32
	layers        []layer
	invFreq       []float64
}

// Config returns the model's configuration.
func (n *Net) Config() checkpoint.Config { return n.cfg }

// Params returns the trainable tensors in checkpoint order.
func (n *Net) Params() []*Param { return n.params }

// Param returns the tensor named name, or nil.
func (n *Net) Param(name string) *Param { return n.byName[name] }

// Weights returns the current values by checkpoint name (views, not
// copies), as model.New takes them.
func (n *Net) Weights() map[string][]float32 {
	w := make(map[string][]float32, len(n.params))
	for _, p := range n.params {
		w[p.Name] = p.W
	}
	return w
}

// Source gives the values and shapes of a checkpoint's tensors.
type Source interface {
	// Shape returns the tensor's shape, false when absent.
	Shape(name string) ([]int, bool)
	// Read decodes the tensor into dst (its size).
	Read(name string, dst []float32) error
}

// CheckpointSource reads a checkpoint's tensors.
func CheckpointSource(m *checkpoint.Model) Source { return ckptSource{m} }

type ckptSource struct{ m *checkpoint.Model }

func (s ckptSource) Shape(name string) ([]int, bool) {
	t, ok := s.m.Tensor(name)
	if !ok {
		return nil, false
	}
	sh := make([]int, len(t.Shape))
	for i, d := range t.Shape {
		sh[i] = int(d)
	}
	return sh, true
}

func (s ckptSource) Read(name string, dst []float32) error {
	v, err := s.m.Float32(name)
	if err != nil {
		return err
	}
	if len(v) != len(dst) {
		return fmt.Errorf("tensor %q: %d values, want %d", name, len(v), len(dst))
	}
	copy(dst, v)
	return nil
}

// MapSource serves tensors from memory (tests, models built in code).
type MapSource struct {
	Values map[string][]float32
	Shapes map[string][]int
}

// Shape implements Source.
func (s MapSource) Shape(name string) ([]int, bool) {
	sh, ok := s.Shapes[name]
	return sh, ok
}

// Read implements Source.
func (s MapSource) Read(name string, dst []float32) error {
	v := s.Values[name]
	if len(v) != len(dst) {
		return fmt.Errorf("tensor %q: %d values, want %d", name, len(v), len(dst))
	}
	copy(dst, v)
	return nil
}

// maxParams bounds the elements a Net holds (16 G floats), so size
// products below stay far inside int.
const maxParams = 1 << 34

// NewNet builds a trainable net from a model's configuration and tensors.
func NewNet(cfg *checkpoint.Config, src Source) (*Net, error) {
	c := *cfg
	switch c.ModelType {
	case "llama", "mistral", "qwen2", "gpt2":
	default:
		return nil, invalidf("model type %q: training supports llama, mistral, qwen2 and gpt2", c.ModelType)
	}
	if c.HiddenSize <= 0 || c.NumHeads <= 0 || c.NumKVHeads <= 0 || c.HeadDim <= 0 || c.NumHeads%c.NumKVHeads != 0 ||
		c.IntermediateSize <= 0 || c.VocabSize <= 0 || c.NumLayers <= 0 || c.MaxPositions <= 0 {
		return nil, invalidf("config: dimensions must be positive and heads a multiple of KV heads")
	}
	n := &Net{cfg: c, gpt2: c.ModelType == "gpt2", byName: map[string]*Param{}}
	var e error
	total := 0
	// alloc reads the named tensors (shapes checked) into one fused
	// buffer, parts one after another, and returns it and its gradient.
	alloc := func(target bool, names []string, shapes [][]int) (w, g []float32) {
		if e != nil {
			return nil, nil
		}
		size := 0
		for _, sh := range shapes {
			k := 1
			for _, d := range sh {
				k *= d
			}
			size += k
		}
		if total += size; total > maxParams {
			e = invalidf("more than %d parameters", maxParams)
			return nil, nil
		}
		w, g = make([]float32, size), make([]float32, size)
		off := 0
		for i, name := range names {
			sh, ok := src.Shape(name)
			if !ok {
				e = fmt.Errorf("%w: tensor %q is missing", ErrInvalid, name)
				return nil, nil
			}
			if !slices.Equal(sh, shapes[i]) {
				e = fmt.Errorf("%w: tensor %q has shape %v, want %v", ErrInvalid, name, sh, shapes[i])
				return nil, nil
			}
			k := 1
			for _, d := range sh {
				k *= d
			}
			if err := src.Read(name, w[off:off+k]); err != nil {
				e = err
				return nil, nil
			}
			p := &Param{Name: name, Shape: sh, W: w[off : off+k : off+k], G: g[off : off+k : off+k], Target: target}
			n.params = append(n.params, p)
			n.byName[name] = p
			off += k
		}
		return w, g
	}
	one := func(target bool, name string, shape ...int) (w, g []float32) {
		return alloc(target, []string{name}, [][]int{shape})
	}
	has := func(name string) bool { _, ok := src.Shape(name); return ok }
	D, H, KV, hd, I, V, P := c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize, c.VocabSize, c.MaxPositions
	a := arch.Lookup(c.ModelType)
	isTarget := func(name string, shape []int) bool {
		s := make([]int64, len(shape))
		for i, d := range shape {
			s[i] = int64(d)
		}
		return a.DefaultTarget(name, s)
	}
	proj := func(l *linear, names []string, outs []int, in int, biases []string) {
		shapes := make([][]int, len(names))
		for i := range names {
			shapes[i] = []int{outs[i], in}
		}
		l.w, l.g = alloc(isTarget(names[0], shapes[0]), names, shapes)
		l.in = in
		for _, o := range outs {
			l.out += o
		}
		if biases != nil && slices.ContainsFunc(biases, has) {
			bs := make([][]int, len(biases))
			for i := range biases {
				bs[i] = []int{outs[i]}
			}
			l.b, l.gb = alloc(false, biases, bs)
		}
	}
	conv := func(l *linear, name string, in, out int, bias string) {
		l.w, l.g = one(true, name, in, out)
		l.b, l.gb = one(false, bias, out)
		l.in, l.out, l.conv = in, out, true
	}
	n.layers = make([]layer, c.NumLayers)
	if n.gpt2 {
		p := "transformer."
		if !has(p+"wte.weight") && has("wte.weight") {
			p = ""
		}
		n.embed, n.gEmbed = one(false, p+"wte.weight", V, D)
		n.wpe, n.gWpe = one(false, p+"wpe.weight", P, D)
		for l := range n.layers {
			lp := fmt.Sprintf("%sh.%d.", p, l)
			L := &n.layers[l]
			L.n1w, L.n1gw = one(false, lp+"ln_1.weight", D)
			L.n1b, L.n1gb = one(false, lp+"ln_1.bias", D)
			conv(&L.qkv, lp+"attn.c_attn.weight", D, 3*D, lp+"attn.c_attn.bias")
			conv(&L.o, lp+"attn.c_proj.weight", D, D, lp+"attn.c_proj.bias")
			L.n2w, L.n2gw = one(false, lp+"ln_2.weight", D)
			L.n2b, L.n2gb = one(false, lp+"ln_2.bias", D)
			conv(&L.up, lp+"mlp.c_fc.weight", D, I, lp+"mlp.c_fc.bias")
			conv(&L.down, lp+"mlp.c_proj.weight", I, D, lp+"mlp.c_proj.bias")
		}
		n.nfw, n.gnfw = one(false, p+"ln_f.weight", D)
		n.nfb, n.gnfb = one(false, p+"ln_f.bias", D)
		if c.Activation != "" && c.Activation != "gelu_new" && c.Activation != "gelu" && c.Activation != "gelu_pytorch_tanh" {
			return nil, invalidf("activation %q: training supports gelu_new and gelu", c.Activation)
		}
	} else {
		p := "model."
		if !has(p+"embed_tokens.weight") && has("embed_tokens.weight") {
			p = ""
		}
		if c.RopeTheta <= 0 {
			return nil, invalidf("config: rope_theta must be positive")
		}
		if hd%2 != 0 {
			return nil, invalidf("config: head_dim %d is odd", hd)
		}
		n.embed, n.gEmbed = one(false, p+"embed_tokens.weight", V, D)
		qDim, kvDim := H*hd, KV*hd
		for l := range n.layers {
			lp := fmt.Sprintf("%slayers.%d.", p, l)
			L := &n.layers[l]
			L.n1w, L.n1gw = one(false, lp+"input_layernorm.weight", D)
			var qkvB []string
			if c.ModelType == "qwen2" || has(lp+"self_attn.q_proj.bias") {
				qkvB = []string{lp + "self_attn.q_proj.bias", lp + "self_attn.k_proj.bias", lp + "self_attn.v_proj.bias"}
			}
			proj(&L.qkv, []string{lp + "self_attn.q_proj.weight", lp + "self_attn.k_proj.weight", lp + "self_attn.v_proj.weight"},
				[]int{qDim, kvDim, kvDim}, D, qkvB)
			proj(&L.o, []string{lp + "self_attn.o_proj.weight"}, []int{D}, qDim, []string{lp + "self_attn.o_proj.bias"})
			L.n2w, L.n2gw = one(false, lp+"post_attention_layernorm.weight", D)
			var upB []string
			if has(lp+"mlp.gate_proj.bias") || has(lp+"mlp.up_proj.bias") {
				upB = []string{lp + "mlp.gate_proj.bias", lp + "mlp.up_proj.bias"}
			}
			proj(&L.up, []string{lp + "mlp.gate_proj.weight", lp + "mlp.up_proj.weight"}, []int{I, I}, D, upB)
			proj(&L.down, []string{lp + "mlp.down_proj.weight"}, []int{D}, I, []string{lp + "mlp.down_proj.bias"})
		}
		n.nfw, n.gnfw = one(false, p+"norm.weight", D)
		if c.Activation != "" && c.Activation != "silu" {
			return nil, invalidf("activation %q: training supports silu for the llama family", c.Activation)
		}
		n.invFreq = make([]float64, hd/2)
		for i := range n.invFreq {
			n.invFreq[i] = math.Pow(c.RopeTheta, -float64(2*i)/float64(hd))
		}
	}
	if c.TieWordEmbeddings {
		n.head, n.gHead = n.embed, n.gEmbed
	} else {
		n.head, n.gHead = one(false, "lm_head.weight", V, D)
	}
	if e != nil {
		return nil, e
	}
	return n, nil
}

// ZeroGrad clears every gradient.
func (n *Net) ZeroGrad() {
	for _, p := range n.params {
		clear(p.G)
	}
}
