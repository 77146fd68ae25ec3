package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"sync/atomic"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/tensor"
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
	// kernel, blas.SparseAsm) and multiplies it with the sparse kernel of
	// package blas, the others packed dense; "off" packs every weight dense; "on" keeps
	// every projection in CSR (for tests). Results agree to float32
	// rounding (about 1e-6 relative) whichever is chosen.
	Sparse string
	// Stream chooses where the block projection weights live: "off" keeps
	// them all decoded and packed in memory; "on" reads each block's
	// projections from the checkpoint when the block runs (into buffers
	// reused from block to block), so that only the embeddings, the LM
	// head, norms and biases stay resident; "" or "auto" streams a model
	// built by [Load] whose weights, as float32, exceed twice its largest
	// tensor plus [StreamSlack], and keeps any other model resident.
	// Results are bit-identical either way (see the package
	// documentation, "Memory").
	Stream string
	// ONNX chooses how package eval runs an ONNX model: "" or "auto"
	// builds this package's Model from a recognised llama/gpt2 export
	// (package onnx/native) and uses the general ONNX executor otherwise;
	// "general" always uses the executor. Models built here ignore it.
	ONNX string
}

// StreamSlack is the allowance for small tensors and buffers in the
// Options.Stream "auto" rule: a model built by [Load] streams its block
// projections when its weights, as float32, take more than twice its
// largest tensor plus StreamSlack; below that, keeping everything resident
// costs no more than the bound streaming keeps.
const StreamSlack = 64 << 20

// SparseThreshold is the sparsity from which Options.Sparse "auto" runs a
// projection through the CSR kernel, set from measurements (BENCHMARKS.md)
// with a margin: on the GPT-2-small shapes at ctx 512 the AVX-512 CSR
// kernel ties the dense GEMM at about 30–40% zeros (blas.BenchmarkSpMMT,
// 1 and 2 threads; BenchmarkSparseCrossover, whole forward passes) and
// wins by 1.1–1.35× at 50%; the AVX2 kernel ties its GEMM below 30%.
const SparseThreshold = blas.SparseThreshold

type arch int

const (
	archLlama arch = iota // llama, mistral, qwen2
	archGPT2
)

// Model is a causal language model ready for float32 forward passes. Its
// weights are decoded to float32 and the matrices stored as panels for the
// chosen micro-kernel — all of them, or, when streaming (Options.Stream),
// all but the block projections, which are read from the checkpoint for
// every pass. A Model is immutable once built and safe for concurrent use.
type Model struct {
	cfg     checkpoint.Config
	arch    arch
	threads int
	kern    *kernel
	sparse  string                // Options.Sparse: "auto", "off" or "on"
	act     func(float32) float32 // gpt2 exact GELU; nil for gelu_new (kern.vec.gelu)

	embed   []float32 // [vocab, dim] token embedding; nil when its rows come from head or stream
	wpe     []float32 // [maxPos, dim] gpt2 learned position embedding
	layers  []layer
	normW   []float32 // [dim] final norm weight (model.norm / ln_f)
	normB   []float32 // [dim] ln_f bias (gpt2)
	head    weight    // [vocab, dim] LM head, or the embedding when tied
	invFreq []float64 // [headDim/2] RoPE inverse frequencies theta^(-2i/headDim)

	// stream, when set, reads the block projections (and, with embedName,
	// the token embedding's rows) from the checkpoint on every pass.
	stream *streamer
	// calib caches Options.Sparse "auto"'s measurements (calib.go).
	calib *blas.SparseChoice
}

// layer holds one transformer block. Projections are stored as B operands
// of gemm: [out, in] as in a Hugging Face Linear (gpt2's Conv1D [in, out]
// weights are transposed when packed). A streaming model leaves w empty
// and reads the projections that spec describes for every pass.
type layer struct {
	norm1W []float32 // [dim] input_layernorm / ln_1
	norm1B []float32 // [dim] ln_1 bias (gpt2), else nil
	qkvB   []float32 // [(nHeads+2·nKVHeads)·headDim] or nil
	oB     []float32 // [dim] or nil
	norm2W []float32 // [dim] post_attention_layernorm / ln_2
	norm2B []float32 // [dim] ln_2 bias (gpt2), else nil
	upB    []float32 // [2·inter] / [inter] or nil
	downB  []float32 // [dim] or nil
	w      projs     // the projections (resident models)
	spec   [4]projSpec
}

// projs are the four projections of a block, in the order of
// layer.spec: q|k|v fused [(nHeads+2·nKVHeads)·headDim, dim]; o_proj /
// attn.c_proj [dim, nHeads·headDim]; llama's gate|up fused [2·inter, dim]
// or gpt2's c_fc [inter, dim]; down_proj / mlp.c_proj [dim, inter].
type projs [4]weight

const (
	pQKV = iota
	pO
	pUp
	pDown
)

// projSpec says how a projection is assembled from checkpoint tensors:
// the parts, of partRows·k values each, are read one after another into a
// staging buffer, where element (i, j) of the [rows, k] operand (output i,
// input j) is at stage[i*si+j*sj].
type projSpec struct {
	parts    []string
	partRows []int
	rows, k  int
	si, sj   int
	// kind caches, for a streaming model, the layout Options.Sparse chose
	// on the first pass (the checkpoint does not change): 0 not yet
	// known, kindDense or kindCSR.
	kind atomic.Int32
}

const (
	kindDense = 1
	kindCSR   = 2
)

// Config returns a copy of the model's configuration.
func (m *Model) Config() checkpoint.Config {
	c := m.cfg
	c.Architectures = slices.Clone(c.Architectures)
	return c
}

// VocabSize returns the number of logits per position.
func (m *Model) VocabSize() int { return m.cfg.VocabSize }

// MaxPositions returns the longest window the model accepts.
//
// A model with a sliding attention window (mistral's sliding_window)
// accepts windows no longer than it: within them every token sees all the
// earlier ones, so full attention is exact.
func (m *Model) MaxPositions() int {
	if w := m.cfg.SlidingWindow; w > 0 && w < m.cfg.MaxPositions {
		return w
	}
	return m.cfg.MaxPositions
}

// Threads returns the number of goroutines a forward pass uses.
func (m *Model) Threads() int { return m.threads }

// Kernel returns the name of the matrix-multiply kernel in use.
func (m *Model) Kernel() string { return m.kern.Name() }

// source yields float32 tensors by name, checking their shapes.
type source interface {
	has(name string) bool
	// check verifies that the tensor exists, has shape want and a
	// floating-point dtype.
	check(name string, want ...int) error
	// read decodes elements [off, off+len(dst)) of a checked tensor, in
	// row-major order, into dst; raw is scratch for undecoded bytes.
	read(name string, off int, dst []float32, raw *[]byte) error
	// partial reports whether reading part of the tensor costs only that
	// part (not so for a tensor rebuilt from sparse parts).
	partial(name string) bool
}

// get checks a tensor and returns it decoded into a new slice.
func get(src source, name string, want ...int) ([]float32, error) {
	if err := src.check(name, want...); err != nil {
		return nil, err
	}
	n := 1
	for _, d := range want {
		n *= d
	}
	v := make([]float32, n)
	var raw []byte
	if err := src.read(name, 0, v, &raw); err != nil {
		return nil, err
	}
	return v, nil
}

type loaderSource struct{ m *checkpoint.Model }

func (s loaderSource) has(name string) bool { _, ok := s.m.Tensor(name); return ok }

func (s loaderSource) check(name string, want ...int) error {
	t, ok := s.m.Tensor(name)
	if !ok {
		return fmt.Errorf("%s: %w: tensor %q is missing", s.m.Path, checkpoint.ErrFormat, name)
	}
	if !shapeIs(t.Shape, want) {
		return fmt.Errorf("%s: %w: tensor %q has shape %v, want %v", s.m.Path, checkpoint.ErrFormat, name, []int64(t.Shape), want)
	}
	if !t.DType.IsFloat() {
		return fmt.Errorf("%s: %w: tensor %q has dtype %s, want a floating-point type", s.m.Path, checkpoint.ErrUnsupported, name, t.DType)
	}
	return nil
}

func (s loaderSource) read(name string, off int, dst []float32, raw *[]byte) error {
	t, ok := s.m.Tensor(name)
	if !ok {
		return fmt.Errorf("%s: %w: tensor %q is missing", s.m.Path, checkpoint.ErrFormat, name)
	}
	es := t.DType.Size()
	if t.DType == tensor.F32 && tensor.LittleEndianHost() {
		return s.m.ReadAt(name, tensor.F32Bytes(dst), int64(off)*4) // names file and tensor
	}
	n := len(dst) * es
	if cap(*raw) < n {
		*raw = make([]byte, n)
	}
	b := (*raw)[:n]
	if err := s.m.ReadAt(name, b, int64(off)*int64(es)); err != nil {
		return err
	}
	if err := tensor.DecodeF32(dst, b, t.DType); err != nil {
		return fmt.Errorf("%s: tensor %q: %w", t.File, name, err)
	}
	return nil
}

func (s loaderSource) partial(name string) bool {
	t, ok := s.m.Tensor(name)
	return ok && t.Offset >= 0 // expanded sparse tensors have offset -1
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

func (s mapSource) check(name string, want ...int) error {
	v, ok := s[name]
	if !ok {
		return fmt.Errorf("%w: tensor %q is missing", checkpoint.ErrFormat, name)
	}
	n := 1
	for _, d := range want {
		n *= d
	}
	if len(v) != n {
		return fmt.Errorf("%w: tensor %q has %d values, want shape %v (%d values)", checkpoint.ErrFormat, name, len(v), want, n)
	}
	return nil
}

func (s mapSource) read(name string, off int, dst []float32, _ *[]byte) error {
	v, ok := s[name]
	if !ok || off < 0 || off+len(dst) > len(v) {
		return fmt.Errorf("%w: tensor %q: values [%d, %d) are missing", checkpoint.ErrFormat, name, off, off+len(dst))
	}
	copy(dst, v[off:])
	return nil
}

func (s mapSource) partial(string) bool { return true }

// Load builds a model from an opened checkpoint. A resident model (see
// Options.Stream) decodes every weight to float32 and does not need lm
// afterwards. A streaming one reads its block projections on every pass
// through a handle of its own (lm.Reopen), so lm may be closed all the
// same; [Model.Close] releases that handle.
func Load(lm *checkpoint.Model, opt Options) (*Model, error) {
	if lm.Config == nil {
		return nil, fmt.Errorf("%s: %w: no config.json, which a forward pass needs", lm.Path, checkpoint.ErrFormat)
	}
	stream, err := streamMode(opt.Stream)
	if err != nil {
		return nil, err
	}
	if stream == "auto" {
		stream = "off"
		if autoStreams(weightBytes(lm)) {
			stream = "on"
		}
	}
	if stream == "off" {
		return build(lm.Config, loaderSource{lm}, opt, nil)
	}
	own, err := lm.Reopen()
	if err != nil {
		return nil, err
	}
	st := newStreamer(loaderSource{own}, own)
	m, err := build(lm.Config, st.src, opt, st)
	if err != nil {
		own.Close()
		return nil, err
	}
	return m, nil
}

// autoStreams is the Options.Stream "auto" rule for a checkpoint whose
// weights take total bytes as float32, the largest tensor largest.
func autoStreams(total, largest int64) bool { return total > 2*largest+StreamSlack }

// weightBytes returns the bytes of lm's floating-point tensors as float32:
// all of them, and the largest.
func weightBytes(lm *checkpoint.Model) (total, largest int64) {
	for _, name := range lm.Names() {
		t, ok := lm.Tensor(name)
		if !ok || !t.DType.IsFloat() {
			continue
		}
		n, err := t.Shape.Elems()
		if err != nil {
			continue
		}
		total += 4 * n
		largest = max(largest, 4*n)
	}
	return total, largest
}

// streamMode normalizes Options.Stream.
func streamMode(s string) (string, error) {
	switch s {
	case "":
		return "auto", nil
	case "auto", "off", "on":
		return s, nil
	}
	return "", fmt.Errorf("%w: streaming mode %q (want auto, off or on)", ErrInput, s)
}

// New builds a model from in-memory float32 weights keyed by Hugging Face
// tensor name (row-major, shapes as in the checkpoint). Weights are copied,
// so the caller may modify or drop the map afterwards. The model is
// resident unless Options.Stream is "on", which streams the projections
// from a private copy of the weights (for tests: it saves no memory).
func New(cfg *checkpoint.Config, weights map[string][]float32, opt Options) (*Model, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil config", ErrInput)
	}
	stream, err := streamMode(opt.Stream)
	if err != nil {
		return nil, err
	}
	if stream != "on" {
		return build(cfg, mapSource(weights), opt, nil)
	}
	own := make(mapSource, len(weights))
	for k, v := range weights {
		own[k] = slices.Clone(v)
	}
	st := newStreamer(own, nil)
	return build(cfg, own, opt, st)
}

func checkConfig(c *checkpoint.Config) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: model_type %s: %s", checkpoint.ErrUnsupported, c.ModelType, fmt.Sprintf(format, args...))
	}
	if c.HiddenSize <= 0 || c.NumLayers <= 0 || c.NumHeads <= 0 || c.NumKVHeads <= 0 || c.HeadDim <= 0 ||
		c.IntermediateSize <= 0 || c.VocabSize <= 0 || c.MaxPositions <= 0 {
		return fmt.Errorf("%w: config has a non-positive size: %+v", checkpoint.ErrFormat, *c)
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return fmt.Errorf("%w: %d attention heads are not a multiple of %d key/value heads", checkpoint.ErrFormat, c.NumHeads, c.NumKVHeads)
	}
	if !(c.NormEps >= 0) || math.IsInf(c.NormEps, 0) {
		return fmt.Errorf("%w: norm epsilon %g", checkpoint.ErrFormat, c.NormEps)
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
		if c.RopeScaling != "" {
			return bad("rope_scaling of type %q is not implemented (scores would be wrong)", c.RopeScaling)
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
		return fmt.Errorf("%w: model_type %q (supported: llama, mistral, qwen2, gpt2)", checkpoint.ErrUnsupported, c.ModelType)
	}
	return nil
}

// build makes the model from src; with st set, the block projections
// stream from st instead of being loaded.
func build(cfg *checkpoint.Config, src source, opt Options, st *streamer) (*Model, error) {
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
	m := &Model{cfg: *cfg, threads: blas.Threads(opt.Threads), kern: kern, sparse: sparse, stream: st, calib: &blas.SparseChoice{Kernel: kern.Kernel}}
	m.cfg.Architectures = slices.Clone(cfg.Architectures)
	var embedName string
	if cfg.ModelType == "gpt2" {
		m.arch = archGPT2
		embedName, err = m.buildGPT2(src)
	} else {
		m.arch = archLlama
		embedName, err = m.buildLlama(src)
	}
	if err == nil {
		err = m.buildHead(src, embedName)
	}
	if err == nil && st == nil {
		err = m.loadLayers(src)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// weight is a projection as a gemm B operand: packed dense, or (sparse
// non-nil) without its zeros for the sparse kernel.
type weight struct {
	dense  *blas.Packed
	sparse *sparseWeight
}

// weightBuf is the storage of a weight, reused from pass to pass when
// streaming: the packed panels of a dense one, the CSR form a sparse one
// is made from.
type weightBuf struct {
	dense  blas.Packed
	sparse blas.CSR
}

// mayCSR reports whether a weight may be kept in CSR: always with
// Options.Sparse "on", with "auto" when the CSR kernel is the assembly one.
func (m *Model) mayCSR() bool {
	return m.sparse == "on" || (m.sparse == "auto" && blas.SparseAsm() && m.kern.Assembly())
}

// useCSR applies the Options.Sparse rule to a weight with zeros exact
// zeros among n values.
func (m *Model) useCSR(zeros, n int) bool {
	switch {
	case m.sparse == "on":
		return true
	case !m.mayCSR() || n == 0:
		return false
	}
	return float64(zeros)/float64(n) >= SparseThreshold
}

// countZeros returns the number of exact zeros (±0) in v.
func countZeros(v []float32) int {
	z := 0
	for _, x := range v {
		if x == 0 {
			z++
		}
	}
	return z
}

// proj stores the [spec.rows, spec.k] projection staged in w (element
// (i, j) at w[i*si+j*sj]) into b, dense or sparse as Options.Sparse and
// its sparsity decide, and returns it. With cache set, the decision is
// taken once and kept in spec.kind.
func (m *Model) proj(b *weightBuf, w []float32, spec *projSpec, threads int, cache bool) weight {
	rows, k := spec.rows, spec.k
	w = w[:rows*k]
	kind, nnz := int32(0), -1
	if cache {
		kind = spec.kind.Load()
	}
	if kind == 0 {
		zeros := 0
		if m.mayCSR() {
			zeros = countZeros(w)
		}
		kind, nnz = kindDense, len(w)-zeros
		if m.useCSR(zeros, len(w)) && m.csrPays(w, rows, k, spec.si, spec.sj, zeros) {
			kind = kindCSR
		}
		if cache {
			spec.kind.Store(kind)
		}
	}
	if kind == kindCSR {
		b.sparse.SetStrided(w, rows, k, spec.si, spec.sj, nnz)
		return weight{sparse: m.newSparseWeight(&b.sparse)}
	}
	nr := m.kern.NR()
	b.dense = blas.Packed{Data: growF32(b.dense.Data, (rows+nr-1)/nr*nr*k), Rows: rows, K: k, R: nr}
	m.pack(&b.dense, w, spec.si, spec.sj, threads)
	return weight{dense: &b.dense}
}

// pack fills p from the matrix whose element (i, j) is w[i*si+j*sj],
// exactly as the kernel's Pack does. A transposed source (si 1, as gpt2's
// Conv1D weights [in, out]) holds each panel's R values of a column j
// contiguously: they are copied R at a time, reading w in order, where
// Pack would gather them one by one.
func (m *Model) pack(p *blas.Packed, w []float32, si, sj, threads int) {
	if si != 1 || sj == 1 {
		m.kern.Pack(p, w, si, sj, threads)
		return
	}
	rows, k, r := p.Rows, p.K, p.R
	np := p.Panels()
	blas.ParallelRows(blas.Threads(threads), k, 64, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			col := w[j*sj : j*sj+rows]
			for pn := range np {
				d := p.Data[(pn*k+j)*r : (pn*k+j+1)*r]
				clear(d[copy(d, col[pn*r:min(pn*r+r, rows)]):])
			}
		}
	})
}

func growF32(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// readProj reads the parts of spec into stage (grown when too small) and
// returns the filled prefix.
func readProj(src source, spec *projSpec, stage []float32, raw *[]byte) ([]float32, error) {
	stage = growF32(stage, spec.rows*spec.k)
	off := 0
	for i, name := range spec.parts {
		n := spec.partRows[i] * spec.k
		if err := src.read(name, 0, stage[off:off+n], raw); err != nil {
			return nil, err
		}
		off += n
	}
	return stage, nil
}

// loadLayers loads every block projection of a resident model.
func (m *Model) loadLayers(src source) error {
	var buf []float32
	var raw []byte
	for li := range m.layers {
		L := &m.layers[li]
		for p := range L.spec {
			var err error
			if buf, err = readProj(src, &L.spec[p], buf, &raw); err != nil {
				return err
			}
			L.w[p] = m.proj(new(weightBuf), buf, &L.spec[p], m.threads, false)
		}
	}
	return nil
}

// SparseProjections returns how many block projection weights run through
// the CSR kernel, and how many there are (the LM head is not counted; see
// [Model.SparseHead]). A streaming model reads every projection to tell;
// one it cannot read counts as dense.
func (m *Model) SparseProjections() (sparse, total int) {
	var bufs projBufs
	var st stager
	for li := range m.layers {
		w := m.layers[li].w
		if m.stream != nil {
			var err error
			if w, err = m.loadLayer(li, &bufs, &st, 1); err != nil {
				w = projs{}
			}
		}
		for _, p := range w {
			total++
			if p.sparse != nil {
				sparse++
			}
		}
	}
	return sparse, total
}

// SparseHead reports whether the LM head runs through the CSR kernel.
func (m *Model) SparseHead() bool { return m.head.sparse != nil }

// Streaming reports whether the block projections are read from the
// checkpoint on every pass (Options.Stream).
func (m *Model) Streaming() bool { return m.stream != nil }

// Close releases the checkpoint handle a streaming model reads through;
// the model must not be used afterwards. It does nothing for a resident
// model. A streaming model that is dropped without Close releases the
// handle when it is garbage collected.
func (m *Model) Close() error {
	if m.stream == nil {
		return nil
	}
	return m.stream.close()
}

// buildLlama checks the llama tensors, loads the small ones and records
// how each projection is assembled; it returns the token embedding's name.
func (m *Model) buildLlama(src source) (string, error) {
	c := &m.cfg
	D, H, KV, hd, I, V := c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize, c.VocabSize
	qDim, kvDim := H*hd, KV*hd
	p := "model."
	if !src.has(p+"embed_tokens.weight") && src.has("embed_tokens.weight") {
		p = ""
	}
	embed := p + "embed_tokens.weight"
	if err := src.check(embed, V, D); err != nil {
		return "", err
	}
	m.invFreq = make([]float64, hd/2)
	for i := range m.invFreq {
		m.invFreq[i] = math.Pow(c.RopeTheta, -float64(2*i)/float64(hd))
	}
	var e error
	load := func(name string, shape ...int) []float32 {
		if e != nil {
			return nil
		}
		var v []float32
		v, e = get(src, name, shape...)
		return v
	}
	opt := func(name string, shape ...int) []float32 {
		if e != nil || !src.has(name) {
			return nil
		}
		return load(name, shape...)
	}
	// spec checks the parts of a projection ([rows, k] each, stacked) and
	// describes it in s.
	spec := func(s *projSpec, k int, parts ...any) {
		s.k, s.si, s.sj = k, k, 1
		for i := 0; i < len(parts); i += 2 {
			name, rows := parts[i].(string), parts[i+1].(int)
			if e == nil {
				e = src.check(name, rows, k)
			}
			s.parts = append(s.parts, name)
			s.partRows = append(s.partRows, rows)
			s.rows += rows
		}
	}
	m.layers = make([]layer, c.NumLayers)
	for l := range m.layers {
		lp := fmt.Sprintf("%slayers.%d.", p, l)
		L := &m.layers[l]
		L.norm1W = load(lp+"input_layernorm.weight", D)
		spec(&L.spec[pQKV], D, lp+"self_attn.q_proj.weight", qDim, lp+"self_attn.k_proj.weight", kvDim, lp+"self_attn.v_proj.weight", kvDim)
		if e != nil {
			return "", e
		}
		if c.AttentionBias && !src.has(lp+"self_attn.q_proj.bias") {
			return "", fmt.Errorf("%w: config.json sets attention_bias but the checkpoint has no %s", checkpoint.ErrFormat, lp+"self_attn.q_proj.bias")
		}
		if c.ModelType == "qwen2" || src.has(lp+"self_attn.q_proj.bias") || src.has(lp+"self_attn.k_proj.bias") || src.has(lp+"self_attn.v_proj.bias") {
			bq := load(lp+"self_attn.q_proj.bias", qDim)
			bk := load(lp+"self_attn.k_proj.bias", kvDim)
			bv := load(lp+"self_attn.v_proj.bias", kvDim)
			L.qkvB = slices.Concat(bq, bk, bv)
		}
		spec(&L.spec[pO], qDim, lp+"self_attn.o_proj.weight", D)
		L.oB = opt(lp+"self_attn.o_proj.bias", D)
		L.norm2W = load(lp+"post_attention_layernorm.weight", D)
		spec(&L.spec[pUp], D, lp+"mlp.gate_proj.weight", I, lp+"mlp.up_proj.weight", I)
		if e != nil {
			return "", e
		}
		if src.has(lp+"mlp.gate_proj.bias") || src.has(lp+"mlp.up_proj.bias") {
			L.upB = slices.Concat(load(lp+"mlp.gate_proj.bias", I), load(lp+"mlp.up_proj.bias", I))
		}
		spec(&L.spec[pDown], I, lp+"mlp.down_proj.weight", D)
		L.downB = opt(lp+"mlp.down_proj.bias", D)
		if e != nil {
			return "", e
		}
	}
	m.normW = load(p+"norm.weight", D)
	return embed, e
}

// buildGPT2 checks the gpt2 tensors, loads the small ones and records how
// each projection is assembled; it returns the token embedding's name.
func (m *Model) buildGPT2(src source) (string, error) {
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
	load := func(name string, shape ...int) []float32 {
		if e != nil {
			return nil
		}
		var v []float32
		v, e = get(src, name, shape...)
		return v
	}
	// conv checks a Conv1D weight, stored [in, out], and describes it in
	// s as the [out, in] operand: element (out n, in k) is at w[k*out+n].
	conv := func(s *projSpec, name string, in, out int) {
		if e == nil {
			e = src.check(name, in, out)
		}
		s.parts, s.partRows, s.rows, s.k, s.si, s.sj = []string{name}, []int{out}, out, in, 1, out
	}
	wte := p + "wte.weight"
	if e = src.check(wte, V, D); e != nil {
		return "", e
	}
	m.wpe = load(p+"wpe.weight", P, D)
	m.layers = make([]layer, c.NumLayers)
	for l := range m.layers {
		lp := fmt.Sprintf("%sh.%d.", p, l)
		L := &m.layers[l]
		L.norm1W = load(lp+"ln_1.weight", D)
		L.norm1B = load(lp+"ln_1.bias", D)
		conv(&L.spec[pQKV], lp+"attn.c_attn.weight", D, 3*D)
		L.qkvB = load(lp+"attn.c_attn.bias", 3*D)
		conv(&L.spec[pO], lp+"attn.c_proj.weight", D, D)
		L.oB = load(lp+"attn.c_proj.bias", D)
		L.norm2W = load(lp+"ln_2.weight", D)
		L.norm2B = load(lp+"ln_2.bias", D)
		conv(&L.spec[pUp], lp+"mlp.c_fc.weight", D, I)
		L.upB = load(lp+"mlp.c_fc.bias", I)
		conv(&L.spec[pDown], lp+"mlp.c_proj.weight", I, D)
		L.downB = load(lp+"mlp.c_proj.bias", D)
		if e != nil {
			return "", e
		}
	}
	m.normW = load(p+"ln_f.weight", D)
	m.normB = load(p+"ln_f.bias", D)
	return wte, e
}

// headChunkBytes bounds the staging buffer the LM head is read through.
const headChunkBytes = 4 << 20

// buildHead loads the LM head — lm_head.weight, or the token embedding
// embed when tied — and sets where token embeddings are looked up: in the
// packed head when tied and dense; else in embed, read on demand by a
// streaming model whose checkpoint allows it, or kept decoded.
func (m *Model) buildHead(src source, embed string) error {
	c := &m.cfg
	V, D := c.VocabSize, c.HiddenSize
	name := embed
	if !c.TieWordEmbeddings {
		name = "lm_head.weight"
		if err := src.check(name, V, D); err != nil {
			return err
		}
	}
	var err error
	if m.head, err = m.loadMatrix(src, name, V, D); err != nil {
		return err
	}
	if c.TieWordEmbeddings && m.head.dense != nil {
		return nil // lookups read the packed rows
	}
	if m.stream != nil && src.partial(embed) {
		m.stream.embed = embed
		return nil
	}
	m.embed, err = get(src, embed, V, D)
	return err
}

// loadMatrix loads the row-major [rows, k] tensor name as a weight, dense
// or sparse as Options.Sparse and its sparsity decide, reading it a few
// MiB at a time when src allows, so that loading needs little more memory
// than the result.
func (m *Model) loadMatrix(src source, name string, rows, k int) (weight, error) {
	spec := &projSpec{parts: []string{name}, partRows: []int{rows}, rows: rows, k: k, si: k, sj: 1}
	if !src.partial(name) {
		w, err := get(src, name, rows, k)
		if err != nil {
			return weight{}, err
		}
		return m.proj(new(weightBuf), w, spec, m.threads, false), nil
	}
	nr := m.kern.NR()
	chunk := max(nr, headChunkBytes/4/max(k, 1)/nr*nr) // rows per read, a multiple of nr
	buf := make([]float32, min(chunk, rows)*k)
	var raw []byte
	// each reads the matrix chunk by chunk and calls fn with the first row
	// and the chunk's values.
	each := func(fn func(r0 int, w []float32)) error {
		for r0 := 0; r0 < rows; r0 += chunk {
			w := buf[:min(chunk, rows-r0)*k]
			if err := src.read(name, r0*k, w, &raw); err != nil {
				return err
			}
			fn(r0, w)
		}
		return nil
	}
	zeros := 0
	if m.mayCSR() {
		if err := each(func(_ int, w []float32) { zeros += countZeros(w) }); err != nil {
			return weight{}, err
		}
	}
	if m.useCSR(zeros, rows*k) {
		s := &blas.CSR{Rows: rows, Cols: k, RowPtr: make([]int64, rows+1), Col: make([]int32, 0, rows*k-zeros), Val: make([]float32, 0, rows*k-zeros)}
		err := each(func(r0 int, w []float32) {
			for i := 0; i < len(w)/k; i++ {
				for j, v := range w[i*k : (i+1)*k] {
					if v != 0 {
						s.Col = append(s.Col, int32(j))
						s.Val = append(s.Val, v)
					}
				}
				s.RowPtr[r0+i+1] = int64(len(s.Val))
			}
		})
		if err != nil {
			return weight{}, err
		}
		return weight{sparse: m.newSparseWeight(s)}, nil
	}
	p := blas.NewPacked(rows, k, nr)
	err := each(func(r0 int, w []float32) {
		n := len(w) / k
		// Panels of rows [r0, r0+n) are contiguous in p: pack them as a
		// matrix of their own.
		sub := &blas.Packed{Data: p.Data[r0*k : r0*k+(n+nr-1)/nr*nr*k], Rows: n, K: k, R: nr}
		m.kern.Pack(sub, w, k, 1, m.threads)
	})
	return weight{dense: p}, err
}

// WithThreads returns a model sharing m's weights whose forward passes use
// n goroutines (below 1: GOMAXPROCS).
func (m *Model) WithThreads(n int) *Model {
	c := *m
	c.threads = blas.Threads(n)
	return &c
}
