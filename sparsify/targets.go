package sparsify

import (
	"fmt"
	"io"
	"strings"

	"github.com/lmsparse/lmsparse/arch"
	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/internal/match"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
)

// Target is one tensor a job prunes: its name, stored form, logical
// [out, in] shape, method and — once the job has planned or written it —
// what it became.
type Target struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
	File  string // the file holding it
	// Rows and Cols are the logical [out, in] matrix; Transposed is set
	// when it is stored [in, out] (GPT-2 Conv1D, ONNX MatMul weights).
	Rows, Cols int
	Transposed bool
	// Method is the job's method with this tensor's sparsity override.
	Method prune.Method
	// Encoding, Nonzeros and Stored are known once the target is planned
	// (sparse formats, global scope) or written: how it is stored, its
	// values that are not zero, and its elements with any bit set.
	Encoding sparse.Encoding
	Nonzeros int64
	Stored   int64
}

// target is one tensor to prune and, after planning, what happens to it.
type target struct {
	name         string
	info         checkpoint.Tensor
	rows, cols   int   // logical [out, in]
	sRows, sCols int64 // stored 2-D view
	transposed   bool
	method       prune.Method // the run's method, with this tensor's sparsity override
	plan         *prune.Plan
	stored       int64 // elements with any bit set after pruning
	nonzero      int64 // elements whose value is not zero after pruning
	enc          sparse.Encoding
	// A calibrated method's result: the pruned tensor's bytes are in
	// spill at spillOff; recon is its reconstruction error.
	spill    *spillFile
	spillOff int64
	recon    *float64
	sha256   [32]byte // of the spilled bytes
	// part, when set, holds a merged target's bytes (a part file's
	// tensor, read in place of the input's).
	part *io.SectionReader
}

func (t *target) public() Target {
	return Target{Name: t.name, DType: t.info.DType, Shape: t.info.Shape.Clone(), File: t.info.File, Rows: t.rows, Cols: t.cols,
		Transposed: t.transposed, Method: t.method, Encoding: t.enc, Nonzeros: t.nonzero, Stored: t.stored}
}

// checkGlobs verifies that every glob is well formed and matches one of
// names; what names a model in messages ("tensor", "initializer").
func checkGlobs(globs, names []string, what, path string) error {
	for _, g := range globs {
		if err := match.ValidGlob(g); err != nil {
			return invalidf("bad glob %q: %v", g, err)
		}
		if !match.AnyMatch(g, names) {
			return invalidf("glob %q matches no %s of %s; nearest names: %s", g, what, path, strings.Join(match.Nearest(g, names, 3), ", "))
		}
	}
	return nil
}

// selected applies include and exclude to a default choice.
func selected(name string, sel bool, include, exclude []string) bool {
	for _, g := range include {
		if match.Match(g, name) {
			sel = true
		}
	}
	for _, g := range exclude {
		if match.Match(g, name) {
			sel = false
		}
	}
	return sel
}

// selectTargets applies the architecture's default rule, include and
// exclude. Every glob must match at least one tensor.
func selectTargets(m *checkpoint.Model, include, exclude []string) ([]*target, error) {
	names := m.Names()
	if err := checkGlobs(append(append([]string(nil), include...), exclude...), names, "tensor", m.Path); err != nil {
		return nil, err
	}
	a := arch.Lookup("")
	if m.Config != nil {
		a = arch.Lookup(m.Config.ModelType)
	}
	var out []*target
	for _, name := range names {
		info, _ := m.Tensor(name)
		if !selected(name, a.DefaultTarget(name, info.Shape), include, exclude) {
			continue
		}
		if !info.DType.IsFloat() {
			return nil, fmt.Errorf("%s: tensor %q: %w: cannot prune dtype %s (floating-point tensors only)", info.File, name, tensor.ErrDType, info.DType)
		}
		n, err := info.Shape.Elems()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
		}
		if n == 0 {
			// Nothing to prune, whatever its dimensions: a tensor of no
			// elements (valid, e.g. [2^62, 0]) is written untouched, so no
			// work or memory ever follows from its dimensions.
			continue
		}
		t := &target{name: name, info: info}
		switch len(info.Shape) {
		case 0, 1:
			t.sRows, t.sCols = 1, n
		default:
			t.sRows = info.Shape[0]
			t.sCols = n / max(info.Shape[0], 1)
		}
		t.rows, t.cols = int(t.sRows), int(t.sCols)
		if len(info.Shape) == 2 && a.Transposed(name) {
			t.transposed = true
			t.rows, t.cols = t.cols, t.rows
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, &invalidError{msg: fmt.Sprintf("no tensor of %s to prune (the default targets are 2-D weights inside transformer blocks; include others by name)", m.Path),
			causes: []error{ErrNoTargets}}
	}
	return out, nil
}

// onnxTargets picks the pruning targets of an ONNX model; include adds,
// and exclude removes, initializers by name. By default:
//
//   - when initializers keep the Hugging Face names they were exported
//     from (some name is a block weight, "….layers.N.….weight" or
//     "….h.N.….weight"), the targets a safetensors checkpoint of the same
//     model gets: the 2-D block weights, whatever operator reads them (GPT-2's
//     c_attn feeding a fused Attention node included), and not the LM head
//     or unnamed initializers (an untied head copy "onnx::MatMul_N");
//     the layout comes from the graph (MatMul/Gemm), else from the name
//     (GPT-2's Conv1D weights are [in, out]); a block weight whose layout
//     neither tells is left alone;
//   - otherwise the weight matrices of MatMul/Gemm that nothing else reads
//     (a tied embedding, read by Gather too, is left alone).
func onnxTargets(m *onnx.Model, file string, include, exclude []string) ([]*target, error) {
	var names []string
	hfNamed := false
	for _, in := range m.Initializers() {
		names = append(names, in.Name)
		hfNamed = hfNamed || len(in.Shape) == 2 && arch.IsBlockWeight(in.Name)
	}
	if err := checkGlobs(append(append([]string(nil), include...), exclude...), names, "initializer", file); err != nil {
		return nil, err
	}
	matrices := map[string]onnx.Target{}
	for _, t := range m.PruneTargets() {
		matrices[t.Name] = t
	}
	gpt2 := arch.Lookup("gpt2") // its Conv1D names are the only ones that tell a layout
	var out []*target
	for _, in := range m.Initializers() {
		mt, isMatrix := matrices[in.Name]
		def := isMatrix && len(mt.OtherUses) == 0
		if hfNamed {
			def = len(in.Shape) == 2 && arch.IsBlockWeight(in.Name) && (def || !isMatrix && gpt2.Transposed(in.Name))
		}
		if !selected(in.Name, def, include, exclude) {
			continue
		}
		if !in.DType.IsFloat() {
			return nil, fmt.Errorf("%s: tensor %q: %w: cannot prune dtype %s (floating-point tensors only)", file, in.Name, tensor.ErrDType, in.DType)
		}
		n, err := in.Shape.Elems()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", file, in.Name, err)
		}
		if n == 0 {
			continue // nothing to prune (see selectTargets)
		}
		t := &target{name: in.Name, info: checkpoint.Tensor{TensorInfo: safetensors.TensorInfo{Name: in.Name, DType: in.DType,
			Shape: in.Shape.Clone(), Size: in.Bytes}, File: file}}
		switch {
		case isMatrix:
			// Stored [out, in] (Transposed) is prune's plain layout; [in, out]
			// is prune's Transposed.
			t.sRows, t.sCols = in.Shape[0], in.Shape[1]
			t.rows, t.cols, t.transposed = int(mt.Out), int(mt.In), !mt.Transposed
		case len(in.Shape) == 2 && gpt2.Transposed(in.Name):
			// A GPT-2 Conv1D weight read by another operator (a fused
			// Attention): [in, out] by its name, as in a checkpoint.
			t.sRows, t.sCols = in.Shape[0], in.Shape[1]
			t.rows, t.cols, t.transposed = int(in.Shape[1]), int(in.Shape[0]), true
		case len(in.Shape) >= 2:
			t.sRows, t.sCols = in.Shape[0], n/max(in.Shape[0], 1)
			t.rows, t.cols = int(t.sRows), int(t.sCols)
		default:
			t.sRows, t.sCols, t.rows, t.cols = 1, n, 1, int(n)
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, &invalidError{msg: fmt.Sprintf("no initializer of %s to prune (the default targets are MatMul/Gemm weights; include others by name)", file),
			causes: []error{ErrNoTargets}}
	}
	return out, nil
}

// applyMethod gives every target the method, then the overrides' sparsity.
func applyMethod(targets []*target, method prune.Method, overrides []Override) error {
	if len(overrides) > 0 && (global(method) || method.IsNM()) {
		return invalidf("per-glob sparsity overrides need tensor or row scope (or structured), not %s", method)
	}
	for _, t := range targets {
		t.method = method
		if method.Structured != prune.StructNone && len(t.info.Shape) != 2 {
			return invalidf("tensor %q has shape %v: structured pruning needs 2-D tensors", t.name, t.info.Shape)
		}
	}
	for _, ov := range overrides {
		if err := match.ValidGlob(ov.Match); err != nil {
			return invalidf("bad override glob %q: %v", ov.Match, err)
		}
		mm := method
		mm.Sparsity = ov.Sparsity
		if err := mm.Validate(); err != nil {
			return invalidf("override %q: %s", ov.Match, prune.Reason(err))
		}
		matched := false
		for _, t := range targets {
			if match.Match(ov.Match, t.name) {
				t.method, matched = mm, true
			}
		}
		if !matched {
			names := make([]string, len(targets))
			for i, t := range targets {
				names[i] = t.name
			}
			return invalidf("override %q matches no pruning target; nearest targets: %s", ov.Match, strings.Join(match.Nearest(ov.Match, names, 3), ", "))
		}
	}
	return nil
}
