package model

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/lmsparse/lmsparse/loader"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// ErrInput reports invalid arguments to [Forward] or [Score]: token ids out
// of range, a window longer than the model's positions, a bad stride, a
// base model with another vocabulary, an unknown kernel name.
var ErrInput = errors.New("invalid input")

// Options configures a [Model].
type Options struct {
	// Threads is the number of goroutines a forward pass uses; below 1
	// means runtime.GOMAXPROCS(0). Results do not depend on it.
	Threads int
	// Kernel names the matrix-multiply micro-kernel, one of [Kernels]; ""
	// or "auto" picks the fastest the CPU supports, "go" forces the
	// portable pure-Go kernel.
	Kernel string
	// Sparse chooses how projection weights (and the LM head) are
	// multiplied: "" or "auto" keeps a weight whose fraction of exact zeros
	// is at least [SparseThreshold] in CSR (on CPUs with the assembly CSR
	// kernel, blas.SparseAsm) and multiplies it with blas.SpMMTPacked,
	// the others packed dense; "off" packs every weight dense; "on" keeps
	// every projection in CSR (for tests). Results agree to float32
	// rounding (about 1e-6 relative) whichever is chosen.
	Sparse string
}

// SparseThreshold is the sparsity from which Options.Sparse "auto" runs a
// projection through the CSR kernel: the measured crossover of
// blas.BenchmarkSpMMT on the GPT-2-small projection shapes (M = 512, 1 and
// 2 threads, AVX-512), where CSR ties dense at about 70–75% zeros and wins
// from 80% on (see BENCHMARKS.md).
const SparseThreshold = 0.75

type arch int

const (
	archLlama arch = iota // llama, mistral, qwen2
	archGPT2
)

// Model is a causal language model ready for float32 forward passes. Its
// weights are decoded to float32 and the matrices stored as panels for the
// chosen micro-kernel. A Model is immutable once built and safe for
// concurrent use.
type Model struct {
	cfg     loader.Config
	arch    arch
	threads int
	kern    *kernel
	sparse  string                // Options.Sparse: "auto", "off" or "on"
	act     func(float32) float32 // gpt2 exact GELU; nil for gelu_new (kern.vec.gelu)

	embed   []float32 // [vocab, dim] token embedding; nil when tied (rows come from head)
	wpe     []float32 // [maxPos, dim] gpt2 learned position embedding
	layers  []layer
	normW   []float32 // [dim] final norm weight (model.norm / ln_f)
	normB   []float32 // [dim] ln_f bias (gpt2)
	head    weight    // [vocab, dim] LM head, or the embedding when tied
	invFreq []float64 // [headDim/2] RoPE inverse frequencies theta^(-2i/headDim)
}

// layer holds one transformer block. Projections are stored as B operands
// of gemm: [out, in] as in a Hugging Face Linear (gpt2's Conv1D [in, out]
// weights are transposed when packed).
type layer struct {
	norm1W []float32 // [dim] input_layernorm / ln_1
	norm1B []float32 // [dim] ln_1 bias (gpt2), else nil
	qkv    weight    // [(nHeads+2·nKVHeads)·headDim, dim] q|k|v fused
	qkvB   []float32 // [(nHeads+2·nKVHeads)·headDim] or nil
	o      weight    // [dim, nHeads·headDim] o_proj / attn.c_proj
	oB     []float32 // [dim] or nil
	norm2W []float32 // [dim] post_attention_layernorm / ln_2
	norm2B []float32 // [dim] ln_2 bias (gpt2), else nil
	up     weight    // llama: [2·inter, dim] gate|up fused; gpt2: [inter, dim] c_fc
	upB    []float32 // [2·inter] / [inter] or nil
	down   weight    // [dim, inter] down_proj / mlp.c_proj
	downB  []float32 // [dim] or nil
}

// Config returns a copy of the model's configuration.
func (m *Model) Config() loader.Config {
	c := m.cfg
	c.Architectures = slices.Clone(c.Architectures)
	return c
}

// VocabSize returns the number of logits per position.
func (m *Model) VocabSize() int { return m.cfg.VocabSize }

// MaxPositions returns the longest window the model accepts.
func (m *Model) MaxPositions() int { return m.cfg.MaxPositions }

// Threads returns the number of goroutines a forward pass uses.
func (m *Model) Threads() int { return m.threads }

// Kernel returns the name of the matrix-multiply kernel in use.
func (m *Model) Kernel() string { return m.kern.Name() }

// source yields float32 tensors by name, checking their shapes.
type source interface {
	has(name string) bool
	// get returns the tensor, which must exist and have shape want.
	get(name string, want ...int) ([]float32, error)
}

type loaderSource struct{ m *loader.Model }

func (s loaderSource) has(name string) bool { _, ok := s.m.Tensor(name); return ok }

func (s loaderSource) get(name string, want ...int) ([]float32, error) {
	t, ok := s.m.Tensor(name)
	if !ok {
		return nil, fmt.Errorf("%s: %w: tensor %q is missing", s.m.Path, loader.ErrFormat, name)
	}
	if !shapeIs(t.Shape, want) {
		return nil, fmt.Errorf("%s: %w: tensor %q has shape %v, want %v", s.m.Path, loader.ErrFormat, name, []int64(t.Shape), want)
	}
	if !t.DType.IsFloat() {
		return nil, fmt.Errorf("%s: %w: tensor %q has dtype %s, want a floating-point type", s.m.Path, loader.ErrUnsupported, name, t.DType)
	}
	v, err := s.m.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return v, nil
}

func shapeIs(s []int64, want []int) bool {
	if len(s) != len(want) {
		return false
	}
	for i := range s {
		if s[i] != int64(want[i]) {
			return false
		}
	}
	return true
}

type mapSource map[string][]float32

func (s mapSource) has(name string) bool { _, ok := s[name]; return ok }

func (s mapSource) get(name string, want ...int) ([]float32, error) {
	v, ok := s[name]
	if !ok {
		return nil, fmt.Errorf("%w: tensor %q is missing", loader.ErrFormat, name)
	}
	n := 1
	for _, d := range want {
		n *= d
	}
	if len(v) != n {
		return nil, fmt.Errorf("%w: tensor %q has %d values, want shape %v (%d values)", loader.ErrFormat, name, len(v), want, n)
	}
	return v, nil
}

// Load builds a model from an opened checkpoint, decoding every weight to
// float32. The loader model may be closed afterwards.
func Load(lm *loader.Model, opt Options) (*Model, error) {
	if lm.Config == nil {
		return nil, fmt.Errorf("%s: %w: no config.json, which a forward pass needs", lm.Path, loader.ErrFormat)
	}
	return build(lm.Config, loaderSource{lm}, opt)
}

// New builds a model from in-memory float32 weights keyed by Hugging Face
// tensor name (row-major, shapes as in the checkpoint). Weights are copied,
// so the caller may modify or drop the map afterwards.
func New(cfg *loader.Config, weights map[string][]float32, opt Options) (*Model, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil config", ErrInput)
	}
	return build(cfg, mapSource(weights), opt)
}

func checkConfig(c *loader.Config) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: model_type %s: %s", loader.ErrUnsupported, c.ModelType, fmt.Sprintf(format, args...))
	}
	if c.HiddenSize <= 0 || c.NumLayers <= 0 || c.NumHeads <= 0 || c.NumKVHeads <= 0 || c.HeadDim <= 0 ||
		c.IntermediateSize <= 0 || c.VocabSize <= 0 || c.MaxPositions <= 0 {
		return fmt.Errorf("%w: config has a non-positive size: %+v", loader.ErrFormat, *c)
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("%w: %d attention heads are not a multiple of %d key/value heads", loader.ErrFormat, c.NumHeads, c.NumKVHeads)
	}
	if !(c.NormEps >= 0) || math.IsInf(c.NormEps, 0) {
		return fmt.Errorf("%w: norm epsilon %g", loader.ErrFormat, c.NormEps)
	}
	switch c.ModelType {
	case "llama", "mistral", "qwen2":
		if c.Activation != "silu" && c.Activation != "swish" {
			return bad("hidden_act %q (supported: silu)", c.Activation)
		}
		if c.HeadDim%2 != 0 {
			return bad("rotary embedding needs an even head dimension, got %d", c.HeadDim)
		}
		if !(c.RopeTheta > 0) {
			return bad("rope_theta %g must be positive", c.RopeTheta)
		}
	case "gpt2":
		switch c.Activation {
		case "gelu_new", "gelu_pytorch_tanh", "gelu":
		default:
			return bad("activation_function %q (supported: gelu_new, gelu_pytorch_tanh, gelu)", c.Activation)
		}
		if c.NumKVHeads != c.NumHeads || c.NumHeads*c.HeadDim != c.HiddenSize {
			return bad("%d heads of %d do not split hidden size %d", c.NumHeads, c.HeadDim, c.HiddenSize)
		}
	default:
		return fmt.Errorf("%w: model_type %q (supported: llama, mistral, qwen2, gpt2)", loader.ErrUnsupported, c.ModelType)
	}
	return nil
}

func build(cfg *loader.Config, src source, opt Options) (*Model, error) {
	if err := checkConfig(cfg); err != nil {
		return nil, err
	}
	kern, err := findKernel(opt.Kernel)
	if err != nil {
		return nil, err
	}
	sparse := opt.Sparse
	switch sparse {
	case "":
		sparse = "auto"
	case "auto", "off", "on":
	default:
		return nil, fmt.Errorf("%w: sparse execution mode %q (want auto, off or on)", ErrInput, opt.Sparse)
	}
	m := &Model{cfg: *cfg, threads: blas.Threads(opt.Threads), kern: kern, sparse: sparse}
	m.cfg.Architectures = slices.Clone(cfg.Architectures)
	if cfg.ModelType == "gpt2" {
		m.arch = archGPT2
		err = m.buildGPT2(src)
	} else {
		m.arch = archLlama
		err = m.buildLlama(src)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// packB packs a [rows, k] weight (element (i, j) at w[i*si+j*sj]) as a gemm
// B operand.
func (m *Model) packB(w []float32, rows, k, si, sj int) *blas.Packed {
	return m.kern.PackB(w, rows, k, si, sj, m.threads)
}

// weight is a projection as a gemm B operand: packed dense, or (sparse
// non-nil) in CSR for blas.SpMMTPacked.
type weight struct {
	dense  *blas.Packed
	sparse *blas.CSR
}

// proj stores a [rows, k] projection weight (element (i, j) at
// w[i*si+j*sj]) dense or sparse, as Options.Sparse and its measured
// sparsity decide.
func (m *Model) proj(w []float32, rows, k, si, sj int) weight {
	switch m.sparse {
	case "on":
		return weight{sparse: blas.NewCSR(w, rows, k, si, sj)}
	case "auto":
		if blas.SparseAsm() && m.kern.Assembly() && blas.Sparsity(w, rows, k, si, sj) >= SparseThreshold {
			return weight{sparse: blas.NewCSR(w, rows, k, si, sj)}
		}
	}
	return weight{dense: m.packB(w, rows, k, si, sj)}
}

// SparseProjections returns how many block projection weights run through
// the CSR kernel, and how many there are (the LM head is not counted; see
// [Model.SparseHead]).
func (m *Model) SparseProjections() (sparse, total int) {
	for i := range m.layers {
		L := &m.layers[i]
		for _, w := range []weight{L.qkv, L.o, L.up, L.down} {
			total++
			if w.sparse != nil {
				sparse++
			}
		}
	}
	return sparse, total
}

// SparseHead reports whether the LM head runs through the CSR kernel.
func (m *Model) SparseHead() bool { return m.head.sparse != nil }

func (m *Model) buildLlama(src source) error {
	c := &m.cfg
	D, H, KV, hd, I, V := c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize, c.VocabSize
	qDim, kvDim := H*hd, KV*hd
	p := "model."
	if !src.has(p+"embed_tokens.weight") && src.has("embed_tokens.weight") {
		p = ""
	}
	embed, err := src.get(p+"embed_tokens.weight", V, D)
	if err != nil {
		return err
	}
	m.invFreq = make([]float64, hd/2)
	for i := range m.invFreq {
		m.invFreq[i] = math.Pow(c.RopeTheta, -float64(2*i)/float64(hd))
	}
	var e error
	get := func(name string, shape ...int) []float32 {
		if e != nil {
			return nil
		}
		var v []float32
		v, e = src.get(name, shape...)
		return v
	}
	opt := func(name string, shape ...int) []float32 {
		if e != nil || !src.has(name) {
			return nil
		}
		return get(name, shape...)
	}
	m.layers = make([]layer, c.NumLayers)
	for l := range m.layers {
		lp := fmt.Sprintf("%slayers.%d.", p, l)
		L := &m.layers[l]
		L.norm1W = get(lp+"input_layernorm.weight", D)
		wq := get(lp+"self_attn.q_proj.weight", qDim, D)
		wk := get(lp+"self_attn.k_proj.weight", kvDim, D)
		wv := get(lp+"self_attn.v_proj.weight", kvDim, D)
		if e != nil {
			return e
		}
		L.qkv = m.proj(slices.Concat(wq, wk, wv), qDim+2*kvDim, D, D, 1)
		if c.ModelType == "qwen2" || src.has(lp+"self_attn.q_proj.bias") || src.has(lp+"self_attn.k_proj.bias") || src.has(lp+"self_attn.v_proj.bias") {
			bq := get(lp+"self_attn.q_proj.bias", qDim)
			bk := get(lp+"self_attn.k_proj.bias", kvDim)
			bv := get(lp+"self_attn.v_proj.bias", kvDim)
			L.qkvB = slices.Concat(bq, bk, bv)
		}
		if wo := get(lp+"self_attn.o_proj.weight", D, qDim); e == nil {
			L.o = m.proj(wo, D, qDim, qDim, 1)
		}
		L.oB = slices.Clone(opt(lp+"self_attn.o_proj.bias", D))
		L.norm2W = get(lp+"post_attention_layernorm.weight", D)
		wg := get(lp+"mlp.gate_proj.weight", I, D)
		wu := get(lp+"mlp.up_proj.weight", I, D)
		if e != nil {
			return e
		}
		L.up = m.proj(slices.Concat(wg, wu), 2*I, D, D, 1)
		if src.has(lp+"mlp.gate_proj.bias") || src.has(lp+"mlp.up_proj.bias") {
			L.upB = slices.Concat(get(lp+"mlp.gate_proj.bias", I), get(lp+"mlp.up_proj.bias", I))
		}
		if wd := get(lp+"mlp.down_proj.weight", D, I); e == nil {
			L.down = m.proj(wd, D, I, I, 1)
		}
		L.downB = slices.Clone(opt(lp+"mlp.down_proj.bias", D))
		L.norm1W, L.norm2W = slices.Clone(L.norm1W), slices.Clone(L.norm2W)
		if e != nil {
			return e
		}
	}
	m.normW = slices.Clone(get(p+"norm.weight", D))
	if e != nil {
		return e
	}
	if c.TieWordEmbeddings {
		m.head = m.proj(embed, V, D, D, 1)
		if m.head.sparse != nil {
			m.embed = slices.Clone(embed) // lookups need dense rows
		}
	} else {
		w, err := src.get("lm_head.weight", V, D)
		if err != nil {
			return err
		}
		m.head = m.proj(w, V, D, D, 1)
		m.embed = slices.Clone(embed)
	}
	return nil
}

func (m *Model) buildGPT2(src source) error {
	c := &m.cfg
	D, I, V, P := c.HiddenSize, c.IntermediateSize, c.VocabSize, c.MaxPositions
	if c.Activation == "gelu" {
		m.act = geluErf // else gelu_new through kern.vec.gelu
	}
	p := "transformer."
	if !src.has(p+"wte.weight") && src.has("wte.weight") {
		p = ""
	}
	var e error
	get := func(name string, shape ...int) []float32 {
		if e != nil {
			return nil
		}
		var v []float32
		v, e = src.get(name, shape...)
		return v
	}
	keep := func(name string, shape ...int) []float32 { return slices.Clone(get(name, shape...)) }
	wte := get(p+"wte.weight", V, D)
	m.wpe = keep(p+"wpe.weight", P, D)
	m.layers = make([]layer, c.NumLayers)
	for l := range m.layers {
		lp := fmt.Sprintf("%sh.%d.", p, l)
		L := &m.layers[l]
		L.norm1W = keep(lp+"ln_1.weight", D)
		L.norm1B = keep(lp+"ln_1.bias", D)
		// Conv1D weights are [in, out]: element (out n, in k) is at w[k*out+n].
		if w := get(lp+"attn.c_attn.weight", D, 3*D); e == nil {
			L.qkv = m.proj(w, 3*D, D, 1, 3*D)
		}
		L.qkvB = keep(lp+"attn.c_attn.bias", 3*D)
		if w := get(lp+"attn.c_proj.weight", D, D); e == nil {
			L.o = m.proj(w, D, D, 1, D)
		}
		L.oB = keep(lp+"attn.c_proj.bias", D)
		L.norm2W = keep(lp+"ln_2.weight", D)
		L.norm2B = keep(lp+"ln_2.bias", D)
		if w := get(lp+"mlp.c_fc.weight", D, I); e == nil {
			L.up = m.proj(w, I, D, 1, I)
		}
		L.upB = keep(lp+"mlp.c_fc.bias", I)
		if w := get(lp+"mlp.c_proj.weight", I, D); e == nil {
			L.down = m.proj(w, D, I, 1, D)
		}
		L.downB = keep(lp+"mlp.c_proj.bias", D)
		if e != nil {
			return e
		}
	}
	m.normW = keep(p+"ln_f.weight", D)
	m.normB = keep(p+"ln_f.bias", D)
	if e != nil {
		return e
	}
	if c.TieWordEmbeddings {
		m.head = m.proj(wte, V, D, D, 1)
		if m.head.sparse != nil {
			m.embed = slices.Clone(wte) // lookups need dense rows
		}
	} else {
		w, err := src.get("lm_head.weight", V, D)
		if err != nil {
			return err
		}
		m.head = m.proj(w, V, D, D, 1)
		m.embed = slices.Clone(wte)
	}
	return nil
}

// WithThreads returns a model sharing m's weights whose forward passes use
// n goroutines (below 1: GOMAXPROCS).
func (m *Model) WithThreads(n int) *Model {
	c := *m
	c.threads = blas.Threads(n)
	return &c
}
