package run

import (
	"fmt"
	"math"
	"strings"

	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/tensor"
)

// findIO works out how Logits feeds the model and reads its logits, and
// what VocabSize and MaxPositions report.
func (s *Session) findIO(m *onnx.Model) {
	for i, io := range s.inputs {
		if io.name == "input_ids" {
			s.idsInput = i
		}
	}
	if s.idsInput < 0 && len(s.inputs) == 1 && kindOf(s.inputs[0].dtype) == kindInt {
		s.idsInput = 0
	}
	if o := s.logitsOutput(); o != nil && len(o.dims) >= 2 {
		if v := o.dims[len(o.dims)-1]; v > 0 {
			s.vocab = int(v)
		}
	}
	if s.idsInput >= 0 {
		if d := s.inputs[s.idsInput].dims; len(d) == 2 && d[1] > 0 {
			s.maxPos = int(d[1])
		}
	}
	if s.maxPos == 0 {
		for _, in := range m.Initializers() {
			if len(in.Shape) != 2 {
				continue
			}
			if isPositionTable(in.Name) {
				s.maxPos = int(in.Shape[0])
				return
			}
		}
	}
}

// isPositionTable reports whether an initializer name looks like a table
// with one row per position: learned position embeddings or precomputed
// rotary tables.
func isPositionTable(name string) bool {
	for _, suffix := range []string{
		"wpe.weight", "position_embeddings.weight", "embed_positions.weight",
		"rope_cos", "rope_sin", "cos_cached", "sin_cached", "cos_cache", "sin_cache",
	} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

func (s *Session) logitsOutput() *graphIO {
	for i := range s.outputs {
		if s.outputs[i].name == "logits" {
			return &s.outputs[i]
		}
	}
	if len(s.outputs) > 0 {
		return &s.outputs[0]
	}
	return nil
}

// VocabSize returns the vocabulary size: the last dimension of the logits
// output (the output named "logits", else the first) when the model
// declares it, else 0.
func (s *Session) VocabSize() int { return s.vocab }

// MaxPositions returns the longest window the model supports when it can
// be derived — a fixed sequence dimension of input_ids, or the rows of a
// position table (an initializer named like *wpe.weight,
// *position_embeddings.weight, *embed_positions.weight, rope_cos,
// cos_cached, ...) — and 0 otherwise: the caller then chooses the context.
func (s *Session) MaxPositions() int { return s.maxPos }

// Logits runs one window of token ids (batch 1, positions 0..len(ids)−1)
// and writes the logits, [len(ids), VocabSize] row-major, to out. The model
// is fed input_ids (or its only integer input) as [1, len(ids)] in the
// integer dtype it declares, and, when it has them, attention_mask (ones),
// position_ids (0, 1, …) and token_type_ids (zeros); any other graph input
// is an error. Logits come from the output named "logits", else the first
// output, and must have len(ids) rows.
func (s *Session) Logits(ids []int, out []float32) error {
	return s.LogitsFrom(ids, 0, out)
}

// LogitsFrom is [Session.Logits] writing only the rows of positions
// from..len(ids)−1, [len(ids)−from, vocab], to out: the shape a scorer
// that skips the unscored start of a window wants.
func (s *Session) LogitsFrom(ids []int, from int, out []float32) error {
	return s.LogitsBatch([][]int{ids}, []int{from}, [][]float32{out})
}

// MaxBatch returns the batch size the model's token-id input fixes (1 for
// most exports that fix it), or 0 when its batch dimension is symbolic or
// undeclared and [Session.LogitsBatch] may run any number of windows.
// A graph can still mix the windows of a batch (a Reshape to a constant
// shape that folds the batch into the sequence); callers that batch
// should check once that a batch gives the single windows' logits.
func (s *Session) MaxBatch() int {
	if s.idsInput >= 0 {
		if d := s.inputs[s.idsInput].dims; len(d) > 0 && d[0] > 0 {
			return int(min(d[0], math.MaxInt32))
		}
	}
	return 0
}

// LogitsBatch runs windows of token ids of one length n together, as one
// batch: the inputs are fed as [len(wins), n] (each row as
// [Session.Logits] feeds one window) and window i's logits from position
// froms[i] on, [n−froms[i], vocab], are written to outs[i]. Each row of a
// batch is computed as the window alone would be, so the logits are the
// same bits whatever the batch when the graph keeps its rows apart (see
// MaxBatch).
func (s *Session) LogitsBatch(wins [][]int, froms []int, outs [][]float32) error {
	if s.idsInput < 0 {
		return fmt.Errorf("%w: %s: no input_ids input", ErrInput, s.name)
	}
	b := len(wins)
	if b == 0 || len(froms) != b || len(outs) != b {
		return fmt.Errorf("%w: %s: %d windows, %d first rows and %d output buffers", ErrInput, s.name, b, len(froms), len(outs))
	}
	if mb := s.MaxBatch(); mb > 0 && b > mb {
		return fmt.Errorf("%w: %s: a batch of %d windows, the model's input takes %d", ErrInput, s.name, b, mb)
	}
	n := len(wins[0])
	if n == 0 {
		return fmt.Errorf("%w: %s: no token ids", ErrInput, s.name)
	}
	for i, w := range wins {
		if len(w) != n {
			return fmt.Errorf("%w: %s: window %d has %d token ids, window 0 has %d: a batch holds windows of one length", ErrInput, s.name, i, len(w), n)
		}
		if froms[i] < 0 || froms[i] >= n {
			return fmt.Errorf("%w: %s: first row %d outside the window of %d tokens", ErrInput, s.name, froms[i], n)
		}
	}
	if s.maxPos > 0 && n > s.maxPos {
		return fmt.Errorf("%w: %s: %d tokens, over the model's %d positions", ErrInput, s.name, n, s.maxPos)
	}
	if int64(b)*int64(n) > s.exec.maxElems {
		return fmt.Errorf("%w: %s: %d windows of %d tokens are more than the %d elements a tensor may have", ErrInput, s.name, b, n, s.exec.maxElems)
	}
	rows := b * n
	feeds := map[string]*Tensor{}
	for i, io := range s.inputs {
		dt := io.dtype
		if kindOf(dt) != kindInt {
			dt = tensor.I64
		}
		t := &Tensor{DType: dt, Shape: []int{b, n}, I64: make([]int64, rows)}
		switch {
		case i == s.idsInput:
			for w, ids := range wins {
				for j, id := range ids {
					if id < 0 || (s.vocab > 0 && id >= s.vocab) {
						return fmt.Errorf("%w: %s: token id %d at position %d is outside the vocabulary [0, %d)", ErrInput, s.name, id, j, s.vocab)
					}
					t.I64[w*n+j] = int64(id)
				}
			}
		case io.name == "attention_mask":
			if kindOf(io.dtype) == kindFloat {
				t = &Tensor{DType: io.dtype, Shape: []int{b, n}, F32: make([]float32, rows)}
				for j := range t.F32 {
					t.F32[j] = 1
				}
			} else {
				for j := range t.I64 {
					t.I64[j] = 1
				}
			}
		case io.name == "position_ids":
			for j := range t.I64 {
				t.I64[j] = int64(j % n)
			}
		case io.name == "token_type_ids":
		default:
			return fmt.Errorf("%w: %s: graph input %q cannot be fed by Logits (only input_ids, attention_mask, position_ids and token_type_ids)", ErrUnsupported, s.name, io.name)
		}
		feeds[io.name] = t
	}
	st, err := s.execute(feeds)
	if err != nil {
		return err
	}
	defer s.putState(st) // the logits stay in the arena: they are copied out
	lo := s.logitsOutput()
	t := st.vals[lo.slot]
	if t == nil || t.kind() != kindFloat || len(t.Shape) < 2 {
		return fmt.Errorf("%w: %s: output %q is not a float tensor of rank 2 or more", ErrInvalid, s.name, lo.name)
	}
	v := t.Shape[len(t.Shape)-1]
	if got := len(t.F32) / max(v, 1); got != rows || v == 0 {
		return fmt.Errorf("%w: %s: output %q has shape %v, want %d rows", ErrInvalid, s.name, lo.name, t.Shape, rows)
	}
	if s.vocab > 0 && v != s.vocab {
		return fmt.Errorf("%w: %s: output %q has %d columns, the model declares %d", ErrInvalid, s.name, lo.name, v, s.vocab)
	}
	for w, out := range outs {
		if len(out) < (n-froms[w])*v {
			return fmt.Errorf("%w: %s: output buffer of %d floats, %d×%d needed", ErrInput, s.name, len(out), n-froms[w], v)
		}
		copy(out, t.F32[(w*n+froms[w])*v:(w+1)*n*v])
	}
	return nil
}
