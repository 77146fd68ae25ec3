package sparsify

import (
	"errors"
	"fmt"
	"runtime"
	"strings"

	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/prune"
)

// ErrInvalid reports options or a model that cannot be pruned as asked: a
// glob that matches nothing, an unknown format, structured pruning of a
// tensor that is not 2-D, nothing to prune. Its message says what is wrong
// in library terms; the lmsparse command maps it to exit code 2.
var ErrInvalid = errors.New("invalid pruning request")

// ErrNoTargets reports a model with nothing to prune under the options
// (it wraps ErrInvalid too).
var ErrNoTargets = errors.New("nothing to prune")

// invalidError is an ErrInvalid error that prints as its message alone.
type invalidError struct {
	msg    string
	causes []error
}

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Is(target error) bool {
	if target == ErrInvalid {
		return true
	}
	for _, c := range e.causes {
		if target == c {
			return true
		}
	}
	return false
}

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}

// Format is how pruned tensors are stored.
type Format string

const (
	// Dense writes pruned tensors in their dtype and layout: a drop-in
	// checkpoint.
	Dense Format = "dense"
	// CSR writes each pruned 2-D tensor as lmsparse CSR parts.
	CSR Format = "csr"
	// Bitmask writes compressed-tensors' sparse-bitmask layout.
	Bitmask Format = "bitmask"
	// Bitmask24 writes compressed-tensors' sparse-24-bitmask layout (2:4
	// pruning of tensors stored [out, in] only).
	Bitmask24 Format = "24bitmask"
	// Auto picks the smallest encoding per tensor.
	Auto Format = "auto"
	// ONNXSparse writes ONNX sparse_initializers (ONNX models only).
	ONNXSparse Format = "sparse"
)

// ParseFormat returns the Format named s.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Dense, CSR, Bitmask, Bitmask24, Auto, ONNXSparse:
		return f, nil
	}
	return "", invalidf("format %q: want dense, csr, bitmask, 24bitmask or auto (ONNX: dense, sparse or auto)", s)
}

// Override gives the targets matching a glob their own sparsity.
type Override struct {
	Match    string  `yaml:"match" json:"match"`
	Sparsity float64 `yaml:"sparsity" json:"sparsity"`
}

// Options control a pruning job. The zero value is not a job: Method must
// say what to prune (or CopyOnly be set).
type Options struct {
	// Method is the pruning method and its sparsity (package prune).
	Method prune.Method
	// CopyOnly prunes nothing: every tensor is copied (a later stage may
	// replace some, see Job.Replace).
	CopyOnly bool
	// Include adds, and Exclude removes, targets by glob over whole tensor
	// names (* matches any run of characters). Each glob must match a
	// tensor.
	Include, Exclude []string
	// Overrides give targets matching a glob their own sparsity (tensor or
	// row scope, or structured; the last match wins).
	Overrides []Override
	// Format is the storage of pruned tensors; "" means Dense.
	Format Format
	// MaxShardSize is the largest output shard in tensor bytes; 0 means
	// Hugging Face's 5 GB.
	MaxShardSize int64
	// ExternalData moves an ONNX model's tensors of 1 KiB or more to one
	// external .data file.
	ExternalData bool
	// Command and Flags are recorded in the manifest (lmsparse.json):
	// Command defaults to "prune", Flags to the options themselves.
	Command string
	Flags   map[string]any
	// Algorithm chooses the weights to prune; "" means Magnitude. Wanda
	// and SparseGPT run the model on calibration windows (Calib), so they
	// need a llama-family or gpt2 checkpoint with config.json and
	// tokenizer.json; Method gives their sparsity (its scope is not used:
	// Wanda compares within rows, SparseGPT within column blocks) or N:M.
	Algorithm Algorithm
	Calib     Calibration
	// Damp (0: 0.01) and BlockSize (0: 128) tune SparseGPT.
	Damp      float64
	BlockSize int
	// OWL, when set, varies the sparsity of blocks by their outliers.
	OWL *OWL
	// Pipeline is where a calibrated method's inputs to each block come
	// from: "" or Sequential (the blocks before, already pruned) or
	// Independent (the dense model); see the package documentation.
	Pipeline Pipeline
	// Range, when set, makes the job one worker of a calibration split
	// across machines: it prunes only the blocks of the range (with the
	// Independent pipeline, which Range implies) and writes a part with
	// [Job.ExecutePart] instead of a checkpoint; [PlanMerge] assembles the
	// parts.
	Range *BlockRange
	// Threads of the forward pass of calibrated methods; 0 means all CPUs.
	Threads int
	// Values, when set, holds new float32 values of tensors by name
	// (trained weights), each stored in its tensor's dtype in place of the
	// input's values. A target among them is written as given: Method's
	// selection is not applied to it and its zeros count as pruned.
	Values map[string][]float32
	// Progress receives the stages "sample", "owl", "calibrate" (one unit
	// per block), "plan" and "write" (one unit per tensor).
	Progress progress.Func
}

// global reports whether the method uses one threshold over all targets.
func global(m prune.Method) bool {
	return m.Scope == prune.ScopeGlobal && !m.IsNM() && m.Structured == prune.StructNone
}

// applyDefaults fills the zero fields.
func (o *Options) applyDefaults() {
	if o.Format == "" {
		o.Format = Dense
	}
	if o.Command == "" {
		o.Command = "prune"
	}
	if o.Algorithm == "" {
		o.Algorithm = Magnitude
	}
	if o.Algorithm != Magnitude {
		if o.Calib.Samples == 0 {
			o.Calib.Samples = DefaultCalibSamples
		}
		if o.Calib.Len == 0 {
			o.Calib.Len = DefaultCalibLen
		}
		if o.Threads <= 0 {
			o.Threads = runtime.NumCPU()
		}
	}
	if o.Algorithm != Magnitude && o.Pipeline == "" {
		o.Pipeline = Sequential
		if o.Range != nil {
			o.Pipeline = Independent
		}
	}
	if o.Range != nil {
		r := *o.Range // PlanCheckpoint fills it in
		o.Range = &r
	}
	if o.Algorithm == SparseGPT {
		if o.Damp == 0 {
			o.Damp = 0.01
		}
		if o.BlockSize == 0 {
			o.BlockSize = 128
		}
	}
}

// methodString names the method in the manifest: prune.Method's name for
// magnitude, else the algorithm and the sparsity or pattern.
func (o *Options) methodString() string {
	var s string
	switch {
	case o.Algorithm == Magnitude:
		s = o.Method.String()
	case o.Method.IsNM():
		return fmt.Sprintf("%s %d:%d", o.Algorithm, o.Method.N, o.Method.M)
	default:
		s = fmt.Sprintf("%s %g%%", o.Algorithm, 100*o.Method.Sparsity)
		if o.OWL != nil {
			s += " (OWL)"
		}
	}
	if len(o.Overrides) > 0 {
		parts := make([]string, len(o.Overrides))
		for i, ov := range o.Overrides {
			parts[i] = fmt.Sprintf("%s %g%%", ov.Match, 100*ov.Sparsity)
		}
		s += " (overrides: " + strings.Join(parts, ", ") + ")"
	}
	return s
}

// flags are the options as recorded in the manifest when Flags is nil.
func (o *Options) flags(onnx bool) map[string]any {
	if o.Flags != nil {
		return o.Flags
	}
	f := map[string]any{"format": string(o.Format), "max_shard_size": o.MaxShardSize}
	m := o.Method
	switch {
	case m.IsNM():
		f["pattern"] = fmt.Sprintf("%d:%d", m.N, m.M)
	default:
		f["sparsity"] = m.Sparsity
		if m.Structured != prune.StructNone {
			f["structured"] = string(m.Structured)
		} else {
			f["scope"] = string(m.Scope)
		}
	}
	if len(o.Include) > 0 {
		f["include"] = o.Include
	}
	if len(o.Exclude) > 0 {
		f["exclude"] = o.Exclude
	}
	if onnx {
		f["external_data"] = o.ExternalData
	}
	if o.Algorithm != Magnitude {
		f["method"] = string(o.Algorithm)
		src := "self"
		if o.Calib.Text != "" {
			src = o.Calib.Text
		}
		f["calib"], f["calib_samples"], f["calib_len"] = src, o.Calib.Samples, o.Calib.Len
		if o.Calib.Text == "" {
			f["seed"] = o.Calib.Seed
		}
		if o.Algorithm == SparseGPT {
			f["damp"], f["block_size"] = o.Damp, o.BlockSize
		}
		if o.OWL != nil {
			f["owl_m"], f["owl_lambda"] = o.OWL.M, o.OWL.Lambda
		}
		if o.Pipeline == Independent {
			f["pipeline"] = string(Independent)
		}
	}
	return f
}
