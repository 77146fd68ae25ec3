package eval

import (
	"context"
	"errors"
	"fmt"
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
	maxElems int64 // the executor's element budget, which the logits buffer keeps too
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

// onnxMaxElements bounds every tensor the executor computes for the model
// m by the model's real size: as many elements as it has bytes, at least
// 2^26 (logits of 1,024 positions over a 64K vocabulary) and at most the
// executor's default, 2^31. A few bytes of graph (ConstantOfShape,
// Expand) can then not ask for gigabytes.
func onnxMaxElements(m *onnx.Model) int64 {
	return min(max(m.StoredBytes(), 1<<26), onnxrun.DefaultMaxElements)
}
