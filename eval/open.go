package eval

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/onnx/native"
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// Open opens a model for scoring. A safetensors checkpoint (a directory or
// a .safetensors file, with its config.json) goes through package model
// with opts; tensors stored as CSR, bitmask or sparse-autoencoder parts are
// expanded on the fly. An ONNX model (a .onnx file, or a directory holding
// exactly one, as checkpoint.ONNXPath says) runs on package onnx/run's executor,
// which holds every weight in memory and uses opts.Threads only.
//
// The result implements io.Closer: closing it releases what a streaming
// model holds open (a no-op for the others).
func Open(path string, opts model.Options) (model.LM, error) {
	if file, ok := checkpoint.ONNXPath(path); ok {
		return openONNX(file, opts)
	}
	lm, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	if lm.Config == nil {
		return nil, fmt.Errorf("%s: %w: eval needs config.json to know the architecture", path, checkpoint.ErrFormat)
	}
	// A pruned checkpoint stored as CSR or bitmask is evaluated directly.
	if _, err := lm.ExpandSparse(); err != nil {
		return nil, err
	}
	return model.Load(lm, opts)
}

// openONNX loads an ONNX model: a recognised llama/gpt2 export as a
// model.Model (package onnx/native), anything else (or with opts.ONNX
// "general") into the general executor.
func openONNX(file string, opts model.Options) (model.LM, error) {
	om, err := onnx.Open(file)
	if err != nil {
		return nil, err
	}
	switch opts.ONNX {
	case "", "auto":
		nopts := opts
		nopts.Stream = "off"
		m, err := native.Load(om, nopts)
		if err == nil {
			return nativeLM{m}, nil
		}
		if !errors.Is(err, native.ErrNotRecognized) {
			return nil, err
		}
		runtime.GC() // what the attempt decoded, before the executor decodes again
	case "general":
	default:
		return nil, fmt.Errorf("%w: ONNX execution %q (want auto or general)", model.ErrInput, opts.ONNX)
	}
	threads := blas.Threads(opts.Threads)
	s, err := onnxrun.Load(om, onnxrun.Options{Threads: threads, MaxElements: onnxMaxElements(om)})
	if err != nil {
		return nil, err // names the file
	}
	switch {
	case len(s.Outputs()) == 0:
		return nil, fmt.Errorf("%s: %w: the graph has no outputs; eval needs logits [batch, sequence, vocabulary]", file, onnx.ErrFormat)
	case s.VocabSize() > maxONNXVocab:
		return nil, fmt.Errorf("%s: %w: the logits output declares a vocabulary of %d (at most %d)", file, onnx.ErrFormat, s.VocabSize(), maxONNXVocab)
	case s.VocabSize() <= 0:
		return nil, fmt.Errorf("%s: %w: the logits output does not declare the vocabulary size (its last dimension); eval needs logits [batch, sequence, vocabulary]", file, onnx.ErrUnsupported)
	}
	return &onnxLM{s: s, threads: threads, maxElems: onnxMaxElements(om)}, nil
}

// nativeLM is a recognised ONNX export run by package model.
type nativeLM struct{ *model.Model }

// Kernel names the path and the matrix kernel.
func (n nativeLM) Kernel() string { return "onnx native, " + n.Model.Kernel() }

// Unwrap lets model.Score run the Model itself (reusing its buffers from
// window to window).
func (n nativeLM) Unwrap() *model.Model { return n.Model }

// onnxLM adapts an ONNX session to model.LM: each window's logits are
// computed at once and handed out in rows.
type onnxLM struct {
	s        *onnxrun.Session
	threads  int
	buf      []float32
	bufs     [][]float32 // Windows': one per window of a batch
	maxElems int64       // the executor's element budget, which the logits buffer keeps too
	// batching is 0 until Windows has checked that a batch gives the
	// windows' own logits (1: it does, -1: it does not, or cannot run).
	batching int
}

// maxONNXVocab bounds the vocabulary an ONNX model's logits may declare,
// as config.json's vocab_size is bounded.
const maxONNXVocab = 1 << 24

func (a *onnxLM) VocabSize() int { return a.s.VocabSize() }
func (a *onnxLM) Threads() int   { return a.threads }
func (a *onnxLM) Kernel() string { return "onnx executor" }

// Close releases nothing: the session holds only memory.
func (a *onnxLM) Close() error { return nil }

// MaxPositions is the export's context when the graph tells it (a position
// table's length); otherwise no limit is known and Options.Ctx decides.
func (a *onnxLM) MaxPositions() int {
	if p := a.s.MaxPositions(); p > 0 {
		return p
	}
	return 1 << 20
}

func (a *onnxLM) Window(ctx context.Context, ids []int, from int) (func(r0, rows int, out []float32), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v := a.s.VocabSize()
	if int64(len(ids)-from)*int64(v) > a.maxElems { // both are bounded: no overflow
		return nil, fmt.Errorf("%w: %d positions of logits over a vocabulary of %d are more than the %d elements the model's size allows", onnxrun.ErrInput, len(ids)-from, v, a.maxElems)
	}
	n := (len(ids) - from) * v
	if cap(a.buf) < n {
		a.buf = make([]float32, n)
	}
	a.buf = a.buf[:n]
	if err := a.s.LogitsFrom(ids, from, a.buf); err != nil {
		return nil, err
	}
	return func(r0, rows int, out []float32) { copy(out[:rows*v], a.buf[r0*v:(r0+rows)*v]) }, nil
}

// maxONNXBatch caps the windows the general executor runs as one batch:
// past 4–8 small windows, larger products gain nothing more (stories260k
// at 256 tokens: 1.16× at 2, 1.27× at 4).
const maxONNXBatch = 8

// Batch returns how many windows of n tokens the session runs together:
// as many as keep their logits, twice over (the executor's values beside
// the copies), within model.BatchMemory, at most maxONNXBatch; 1 when the
// graph fixes its batch dimension or a batch was seen to mix windows.
func (a *onnxLM) Batch(n int) int {
	if a.batching < 0 || a.s.MaxBatch() == 1 || n <= 0 {
		return 1
	}
	per := 2 * 4 * int64(n) * int64(a.s.VocabSize())
	return int(max(1, min(maxONNXBatch, model.BatchMemory/max(per, 1))))
}

// Windows runs the windows of one length together, in order, as one
// batch each (model.BatchLM). The first time, it checks on the first two
// windows' first 16 tokens that a batch gives each window its own logits
// bit for bit — a graph can fold the batch into the sequence (a Reshape to
// a constant shape) — and runs every window alone if not.
func (a *onnxLM) Windows(ctx context.Context, wins [][]int, froms []int) ([]func(r0, rows int, out []float32), error) {
	if len(wins) != len(froms) {
		return nil, fmt.Errorf("%w: %d windows and %d first rows", onnxrun.ErrInput, len(wins), len(froms))
	}
	if a.batching == 0 && len(wins) > 1 {
		a.batching = a.checkBatch(wins[0], wins[1])
	}
	v := a.s.VocabSize()
	for len(a.bufs) < len(wins) {
		a.bufs = append(a.bufs, nil)
	}
	fns := make([]func(r0, rows int, out []float32), len(wins))
	for i0 := 0; i0 < len(wins); {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		i1 := i0 + 1
		for a.batching > 0 && i1 < len(wins) && len(wins[i1]) == len(wins[i0]) {
			i1++
		}
		outs := make([][]float32, i1-i0)
		for i := i0; i < i1; i++ {
			if int64(len(wins[i])-froms[i])*int64(v) > a.maxElems { // both are bounded: no overflow
				return nil, fmt.Errorf("%w: %d positions of logits over a vocabulary of %d are more than the %d elements the model's size allows", onnxrun.ErrInput, len(wins[i])-froms[i], v, a.maxElems)
			}
			n := (len(wins[i]) - froms[i]) * v
			if cap(a.bufs[i]) < n {
				a.bufs[i] = make([]float32, n)
			}
			buf := a.bufs[i][:n]
			outs[i-i0] = buf
			fns[i] = func(r0, rows int, out []float32) { copy(out[:rows*v], buf[r0*v:(r0+rows)*v]) }
		}
		if err := a.s.LogitsBatch(wins[i0:i1], froms[i0:i1], outs); err != nil {
			return nil, err
		}
		i0 = i1
	}
	return fns, nil
}

// checkBatch runs the first 16 tokens of w0 and w1 as a batch and alone:
// 1 when the batch gives the same bits, -1 otherwise (or on an error,
// which the windows run alone then report if it is theirs).
func (a *onnxLM) checkBatch(w0, w1 []int) int {
	k := min(16, len(w0), len(w1))
	v := a.s.VocabSize()
	if k == 0 || int64(k)*int64(v) > a.maxElems {
		return -1
	}
	wins := [][]int{w0[:k], w1[:k]}
	batched := [][]float32{make([]float32, k*v), make([]float32, k*v)}
	if a.s.LogitsBatch(wins, []int{0, 0}, batched) != nil {
		return -1
	}
	alone := make([]float32, k*v)
	for i, w := range wins {
		if a.s.LogitsFrom(w, 0, alone) != nil {
			return -1
		}
		for j, x := range alone {
			if math.Float32bits(x) != math.Float32bits(batched[i][j]) {
				return -1
			}
		}
	}
	return 1
}

// onnxMaxElements bounds every tensor the executor computes for the model
// m by the model's real size: as many elements as it has bytes, at least
// 2^26 (logits of 1,024 positions over a 64K vocabulary) and at most the
// executor's default, 2^31. A few bytes of graph (ConstantOfShape,
// Expand) can then not ask for gigabytes.
func onnxMaxElements(m *onnx.Model) int64 {
	return min(max(m.StoredBytes(), 1<<26), onnxrun.DefaultMaxElements)
}
