package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/internal/match"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/tensor"
)

// pruneOptions are the inputs of "lmsparse prune".
type pruneOptions struct {
	Model        string
	Out          outputOptions
	Sparsity     float64
	SparsitySet  bool
	Scope        string
	Pattern      string
	Structured   string
	Include      []string
	Exclude      []string
	Format       string
	ExternalData bool
	JSON         bool
}

func pruneCommand() *command {
	return &command{
		name:    "prune",
		summary: "Prune weights by magnitude (per tensor, per row, global, N:M or structured) and store them dense or sparse",
		usage:   "prune MODEL -o OUT (--sparsity S [--scope tensor|row|global] | --pattern N:M | --sparsity S --structured rows|cols) [--include GLOB]... [--exclude GLOB]... [--format dense|csr|bitmask|auto] [--json]",
		details: `Targets are, by default, every 2-D weight inside the transformer blocks: the
attention and MLP projections (names like model.layers.N.* or transformer.h.N.*
ending in .weight). Embeddings, the LM head, norms and biases stay untouched
unless --include selects them; --exclude removes targets. Globs match whole
tensor names; * matches any run of characters (model.layers.*.mlp.*).

--sparsity S prunes k = round-half-even(S·n) weights with the smallest |w| in
each tensor (--scope tensor, the default), in each output row (--scope row),
or over all targets at once (--scope global: tensors end with different
sparsities, reported per tensor). Ties go to the lower flat index first, so
results are deterministic. --pattern N:M keeps the N largest |w| of every M
consecutive input columns in each row (a last partial group of g < M columns
keeps min(N, g)). --structured rows|cols removes the round-half-even(S·rows)
output rows (or S·cols input columns) with the smallest L1 norm. Weights
that are already zero count as pruned; kept weights are bit-identical; a NaN
in a target is an error. GPT-2 Conv1D weights ([in, out]) are handled by
their output rows and input columns.

--format dense writes a drop-in checkpoint; csr and bitmask store each pruned
2-D tensor sparse (docs/FORMAT.md); auto picks the smallest per tensor.
MODEL may also be an ONNX model (a .onnx file, or a directory holding one):
targets are the MatMul/Gemm weight initializers (not a tied embedding), OUT
gets the pruned .onnx with the tokenizer files, --format is dense, sparse
(ONNX sparse_initializer) or auto, and --external-data moves large tensors
to one .data file.
OUT also gets lmsparse.json: version, input files with sha256, flags, and per
tensor encoding, dtype, shape, nnz, sparsity and bytes before and after.
"lmsparse decompress OUT -o DENSE" gives back a dense checkpoint.`,
		examples: []string{
			"lmsparse prune ./llama -o ./llama-50 --sparsity 0.5",
			"lmsparse prune ./llama -o ./llama-24 --pattern 2:4 --format bitmask",
			"lmsparse prune ./gpt2 -o ./gpt2-g70 --sparsity 0.7 --scope global --format auto --json",
			"lmsparse prune ./llama -o ./llama-mlp --sparsity 0.6 --exclude 'model.layers.*.self_attn.*'",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o pruneOptions
			o.Out.register(fs)
			fs.Float64Var(&o.Sparsity, "sparsity", 0, "fraction of weights to prune, in [0, 1)")
			fs.StringVar(&o.Scope, "scope", "tensor", "where the magnitude threshold applies: tensor, row or global")
			fs.StringVar(&o.Pattern, "pattern", "", "N:M semi-structured pattern, e.g. 2:4 (instead of --sparsity)")
			fs.StringVar(&o.Structured, "structured", "", "remove whole output rows or input columns: rows or cols")
			fs.StringArrayVar(&o.Include, "include", nil, "also prune tensors matching this glob (repeatable)")
			fs.StringArrayVar(&o.Exclude, "exclude", nil, "do not prune tensors matching this glob (repeatable)")
			fs.StringVar(&o.Format, "format", "dense", "storage of pruned tensors: dense, csr, bitmask or auto")
			fs.BoolVar(&o.ExternalData, "external-data", false, "ONNX: write tensors of 1 KiB or more to one external .data file")
			fs.BoolVar(&o.JSON, "json", false, "print the report as JSON (the content of lmsparse.json)")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) != 1 {
					return usageErrorf("prune: want exactly one MODEL argument, got %d (see 'lmsparse prune --help')", len(args))
				}
				o.Model = args[0]
				o.SparsitySet = fs.Changed("sparsity")
				if fs.Changed("scope") && (o.Pattern != "" || o.Structured != "") {
					return usageErrorf("prune: --scope applies to unstructured --sparsity only, not with --pattern or --structured")
				}
				if err := o.Out.check("prune"); err != nil {
					return err
				}
				return runPrune(ctx, o, stdout, stderr)
			}
		},
	}
}

// method validates the flags and turns them into a prune.Method.
func (o *pruneOptions) method() (prune.Method, error) {
	var m prune.Method
	switch o.Format {
	case "dense", "csr", "bitmask", "auto", "sparse":
	default:
		return m, usageErrorf("prune: --format %q: want dense, csr, bitmask or auto (ONNX: dense, sparse or auto)", o.Format)
	}
	if o.Pattern != "" {
		if o.SparsitySet {
			return m, usageErrorf("prune: give either --sparsity or --pattern, not both (N:M sets the sparsity to 1-N/M)")
		}
		n, mm, ok := strings.Cut(o.Pattern, ":")
		ni, err1 := strconv.Atoi(n)
		mi, err2 := strconv.Atoi(mm)
		if !ok || err1 != nil || err2 != nil {
			return m, usageErrorf("prune: --pattern %q: want N:M, e.g. 2:4", o.Pattern)
		}
		m = prune.Method{N: ni, M: mi}
		if mi == 0 {
			return m, usageErrorf("prune: --pattern %q: M must be at least 1", o.Pattern)
		}
	} else {
		if !o.SparsitySet {
			return m, usageErrorf("prune: --sparsity (or --pattern) is required")
		}
		m = prune.Method{Sparsity: o.Sparsity, Scope: prune.Scope(o.Scope), Structured: prune.Structure(o.Structured)}
		if o.Structured != "" {
			m.Scope = ""
		}
	}
	if err := m.Validate(); err != nil {
		return m, usageErrorf("prune: %v", strings.TrimPrefix(err.Error(), prune.ErrInvalid.Error()+": "))
	}
	return m, nil
}

// blockWeight matches the names of weights inside transformer blocks:
// model.layers.N., transformer.h.N., h.N., blocks.N. ...
var blockWeight = regexp.MustCompile(`(^|\.)(layers|layer|h|blocks|block)\.[0-9]+\.`)

// conv1D matches GPT-2's Conv1D weights, stored [in, out].
var conv1D = regexp.MustCompile(`(^|\.)(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$`)

// pruneTarget is one tensor to prune and, after planning, what happens to it.
type pruneTarget struct {
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
}

// selectTargets applies the default rule, --include and --exclude. Every
// glob must match at least one tensor.
func selectTargets(m *checkpoint.Model, include, exclude []string) ([]*pruneTarget, error) {
	names := m.Names()
	for _, g := range append(append([]string(nil), include...), exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return nil, usageErrorf("prune: bad glob %q: %v", g, err)
		}
		if !anyMatch(g, names) {
			return nil, usageErrorf("prune: glob %q matches no tensor of %s; nearest names: %s", g, m.Path, strings.Join(match.Nearest(g, names, 3), ", "))
		}
	}
	gpt2 := m.Config != nil && m.Config.ModelType == "gpt2"
	var out []*pruneTarget
	for _, name := range names {
		info, _ := m.Tensor(name)
		sel := len(info.Shape) == 2 && strings.HasSuffix(name, ".weight") && blockWeight.MatchString(name)
		for _, g := range include {
			if ok, _ := path.Match(g, name); ok {
				sel = true
			}
		}
		for _, g := range exclude {
			if ok, _ := path.Match(g, name); ok {
				sel = false
			}
		}
		if !sel {
			continue
		}
		if !info.DType.IsFloat() {
			return nil, fmt.Errorf("%s: tensor %q: %w: cannot prune dtype %s (floating-point tensors only)", info.File, name, tensor.ErrDType, info.DType)
		}
		t := &pruneTarget{name: name, info: info}
		n, _ := info.Shape.Elems()
		switch len(info.Shape) {
		case 0, 1:
			t.sRows, t.sCols = 1, n
		default:
			t.sRows = info.Shape[0]
			t.sCols = n / max(info.Shape[0], 1)
		}
		t.rows, t.cols = int(t.sRows), int(t.sCols)
		if gpt2 && len(info.Shape) == 2 && conv1D.MatchString(name) {
			t.transposed = true
			t.rows, t.cols = t.cols, t.rows
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, usageErrorf("prune: no tensor of %s to prune (the default targets are 2-D weights inside transformer blocks; use --include)", m.Path)
	}
	return out, nil
}

func anyMatch(glob string, names []string) bool {
	for _, n := range names {
		if ok, _ := path.Match(glob, n); ok {
			return true
		}
	}
	return false
}

// tensorBuffers reads targets one at a time into reused buffers, so the
// memory in use is bounded by the largest target. For F32 the float32
// values and the raw bytes are the same memory.
type tensorBuffers struct {
	m    *checkpoint.Model
	raw  []byte    // the loaded tensor's bytes: F32Bytes(vals) or own
	own  []byte    // raw bytes of non-F32 tensors
	vals []float32 // decoded values
	mask []bool
	keep []bool // elements a sparse encoding stores

	// maskedT is the target whose masked matrix is maskedM, still valid
	// in the buffers: its sparse parts are written one after another.
	maskedT *pruneTarget
	maskedM *sparse.Matrix
}

func (b *tensorBuffers) load(t *pruneTarget) (*prune.Matrix, error) {
	b.maskedT, b.maskedM = nil, nil
	n := t.sRows * t.sCols
	if int64(cap(b.vals)) < n {
		b.vals = make([]float32, n)
		b.mask = make([]bool, n)
	}
	b.vals, b.mask = b.vals[:n], b.mask[:n]
	x := &prune.Matrix{Name: t.name, Vals: b.vals, Rows: t.rows, Cols: t.cols, Transposed: t.transposed}
	if t.info.DType == tensor.F32 && tensor.LittleEndianHost() {
		raw, err := b.m.ReadInto(t.name, tensor.F32Bytes(b.vals))
		if err != nil {
			return nil, err
		}
		b.raw = raw
		return x, nil
	}
	raw, err := b.m.ReadInto(t.name, b.own)
	if err != nil {
		return nil, err
	}
	b.own, b.raw = raw, raw
	if err := tensor.DecodeF32(b.vals, raw, t.info.DType); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", t.info.File, t.name, err)
	}
	return x, nil
}

// masked loads t and applies its plan: the raw bytes and the pruned mask.
// Asked for the same target again, it returns the same matrix without
// reading it again.
func (b *tensorBuffers) masked(t *pruneTarget) (*sparse.Matrix, error) {
	if b.maskedT == t {
		return b.maskedM, nil
	}
	x, err := b.load(t)
	if err != nil {
		return nil, err
	}
	t.plan.Mask(x.Vals, b.mask)
	sm := &sparse.Matrix{DType: t.info.DType, Rows: t.sRows, Cols: t.sCols, Raw: b.raw, Pruned: b.mask}
	if err := sm.ComputeKeep(b.keep); err != nil {
		return nil, err
	}
	b.keep = sm.Keep
	b.maskedT, b.maskedM = t, sm
	return sm, nil
}

// pruneDense loads t, plans it if planning was skipped, zeroes the pruned
// weights in the raw bytes and counts what remains. It returns the bytes of
// the dense pruned tensor.
func (b *tensorBuffers) pruneDense(sel *prune.Selector, t *pruneTarget) ([]byte, error) {
	x, err := b.load(t)
	if err != nil {
		return nil, err
	}
	return b.pruneLoaded(sel, t, x, func() {})
}

// pruneLoaded is pruneDense once t is loaded as x: wait returns when the
// input scan no longer reads the loaded bytes.
func (b *tensorBuffers) pruneLoaded(sel *prune.Selector, t *pruneTarget, x *prune.Matrix, wait func()) ([]byte, error) {
	var err error
	if t.plan == nil {
		if t.plan, err = sel.NewPlan(t.method, x); err != nil {
			wait()
			return nil, fmt.Errorf("%s: %w", t.info.File, err)
		}
	}
	wait()
	zeroPruned(t, x.Vals, b.raw, b.mask)
	return b.raw, nil
}

// zeroPruned applies t's plan to a loaded tensor: the pruned elements of
// raw (its bytes, in its dtype) become all-zero bits, kept ones stay bit
// for bit; vals are its decoded values (overwritten) and mask scratch of
// the same length. It sets t.stored and t.nonzero.
func zeroPruned(t *pruneTarget, vals []float32, raw []byte, mask []bool) {
	switch t.info.DType {
	case tensor.F32, tensor.F16, tensor.BF16:
		// Pruned elements become +0 in vals; decoding keeps every other
		// value exactly (and the sign of zero), so a zero bit pattern in
		// vals marks exactly the elements whose raw bytes must be zeroed.
		_, t.stored, t.nonzero = t.plan.ApplyCount(vals)
		if t.info.DType == tensor.F32 && !sameMemory(vals, raw) {
			tensor.EncodeF32(raw, vals, tensor.F32) // exact: vals are raw's values
		} else if t.info.DType != tensor.F32 {
			es := t.info.DType.Size()
			for i, v := range vals {
				if math.Float32bits(v) == 0 {
					clear(raw[i*es : (i+1)*es])
				}
			}
		}
	default:
		t.plan.Mask(vals, mask)
		es := t.info.DType.Size()
		for i, p := range mask {
			if p {
				clear(raw[i*es : (i+1)*es])
			}
		}
		countValues(t, vals, mask, raw)
	}
}

// sameMemory reports whether raw is the byte view of vals (F32 loaded in
// place by tensorBuffers).
func sameMemory(vals []float32, raw []byte) bool {
	return len(vals) > 0 && len(raw) > 0 && &tensor.F32Bytes(vals)[0] == &raw[0]
}

// planTargets computes every target's plan and counts, reading each target
// (three times for global scope) before anything is written.
func planTargets(ctx context.Context, m *checkpoint.Model, method prune.Method, targets []*pruneTarget, buf *tensorBuffers) error {
	wrap := func(t *pruneTarget, err error) error {
		return fmt.Errorf("%s: %w", t.info.File, err)
	}
	if method.Scope == prune.ScopeGlobal && !method.IsNM() && method.Structured == prune.StructNone {
		var total int64
		for _, t := range targets {
			total += t.sRows * t.sCols
		}
		g, err := prune.NewGlobal(method, total)
		if err != nil {
			return err
		}
		for pass := 0; pass < 2; pass++ {
			for _, t := range targets {
				if err := ctx.Err(); err != nil {
					return err
				}
				x, err := buf.load(t)
				if err != nil {
					return err
				}
				if pass == 0 {
					if err := g.Observe(x); err != nil {
						return wrap(t, err)
					}
				} else {
					g.Refine(x)
				}
			}
		}
		for _, t := range targets {
			x, err := buf.load(t)
			if err != nil {
				return err
			}
			t.plan = g.Plan(x)
			countAfter(t, x, buf)
		}
		return nil
	}
	var sel prune.Selector
	for _, t := range targets {
		if err := ctx.Err(); err != nil {
			return err
		}
		x, err := buf.load(t)
		if err != nil {
			return err
		}
		if t.plan, err = sel.NewPlan(t.method, x); err != nil {
			return wrap(t, err)
		}
		countAfter(t, x, buf)
	}
	return nil
}

// countAfter applies t's plan to the loaded x and counts what remains.
func countAfter(t *pruneTarget, x *prune.Matrix, buf *tensorBuffers) {
	switch t.info.DType {
	case tensor.F32, tensor.F16, tensor.BF16:
		// Decoding is exact: a kept value that is not zero has bits set.
		if t.plan.KeepsOnlyNonzero() {
			t.stored = int64(len(x.Vals)) - t.plan.Pruned
			t.nonzero = t.stored
			return
		}
	}
	t.plan.Mask(x.Vals, buf.mask)
	countValues(t, x.Vals, buf.mask, buf.raw)
}

// countValues sets t.stored (elements with any bit set) and t.nonzero
// (elements whose value is not zero) over the elements not in pruned
// (nil: vals and raw are already pruned).
func countValues(t *pruneTarget, vals []float32, pruned []bool, raw []byte) {
	t.stored, t.nonzero = 0, 0
	switch dt := t.info.DType; {
	case pruned == nil && (dt == tensor.F32 || dt == tensor.F16 || dt == tensor.BF16):
		// Decoding these is exact and keeps the sign of zero, so the
		// float32 bits tell both counts.
		// Branch-free: (x | -x) >> 31 is 1 exactly when x != 0.
		var stored, nonzero uint64
		for _, v := range vals {
			b := math.Float32bits(v)
			a := b &^ (1 << 31)
			stored += uint64((b | -b) >> 31)
			nonzero += uint64((a | -a) >> 31)
		}
		t.stored, t.nonzero = int64(stored), int64(nonzero)
	default:
		es := dt.Size()
		for i, v := range vals {
			if pruned != nil && pruned[i] {
				continue
			}
			if sparse.NonZeroBits(raw, es, int64(i)) {
				t.stored++
			}
			if v != 0 {
				t.nonzero++
			}
		}
	}
}

// sparsityOverride gives the tensors matching a glob their own sparsity.
type sparsityOverride struct {
	Match    string  `yaml:"match" json:"match"`
	Sparsity float64 `yaml:"sparsity" json:"sparsity"`
}

// pruneJob is one pruning of a checkpoint: the targets, their plans and
// encodings, and the output tensors. prune and compress share it.
type pruneJob struct {
	m         *checkpoint.Model
	method    prune.Method
	format    string
	targets   []*pruneTarget
	buf       *tensorBuffers
	cfgBytes  []byte // config.json, nil without one
	bitmaskOK bool   // config.json can take a sparsity_config
}

// newPruneJob selects the targets of m and checks everything that can be
// checked without reading weights.
func newPruneJob(m *checkpoint.Model, method prune.Method, format string, include, exclude []string, overrides []sparsityOverride) (*pruneJob, error) {
	targets, err := selectTargets(m, include, exclude)
	if err != nil {
		return nil, err
	}
	global := method.Scope == prune.ScopeGlobal && !method.IsNM() && method.Structured == prune.StructNone
	if len(overrides) > 0 && (global || method.IsNM()) {
		return nil, usageErrorf("prune: per-glob sparsity overrides need tensor or row scope (or structured), not %s", method)
	}
	for _, t := range targets {
		t.method = method
		if method.Structured != prune.StructNone && len(t.info.Shape) != 2 {
			return nil, usageErrorf("prune: tensor %q has shape %v: structured pruning needs 2-D tensors", t.name, t.info.Shape)
		}
	}
	for _, ov := range overrides {
		if _, err := path.Match(ov.Match, ""); err != nil {
			return nil, usageErrorf("prune: bad override glob %q: %v", ov.Match, err)
		}
		mm := method
		mm.Sparsity = ov.Sparsity
		if err := mm.Validate(); err != nil {
			return nil, usageErrorf("prune: override %q: %v", ov.Match, strings.TrimPrefix(err.Error(), prune.ErrInvalid.Error()+": "))
		}
		matched := false
		for _, t := range targets {
			if ok, _ := path.Match(ov.Match, t.name); ok {
				t.method, matched = mm, true
			}
		}
		if !matched {
			names := make([]string, len(targets))
			for i, t := range targets {
				names[i] = t.name
			}
			return nil, usageErrorf("prune: override %q matches no pruning target; nearest targets: %s", ov.Match, strings.Join(match.Nearest(ov.Match, names, 3), ", "))
		}
	}
	cfgBytes, err := readConfigBytes(m)
	if err != nil {
		return nil, err
	}
	j := &pruneJob{m: m, method: method, format: format, targets: targets, buf: &tensorBuffers{m: m}, cfgBytes: cfgBytes, bitmaskOK: cfgBytes != nil}
	if cfgBytes != nil {
		if _, err := checkpoint.AddQuantizationConfig(cfgBytes, struct{}{}); err != nil {
			j.bitmaskOK = false
			if format == "bitmask" {
				return nil, fmt.Errorf("%s: --format bitmask: %w", m.Dir, err)
			}
		}
	} else if format == "bitmask" {
		return nil, fmt.Errorf("%s: --format bitmask: %w: no config.json to record the sparsity_config in", m.Path, checkpoint.ErrFormat)
	}
	return j, nil
}

// needsPlanning reports whether prepare reads the targets: for sparse
// sizes or a global threshold.
func (j *pruneJob) needsPlanning() bool {
	global := j.method.Scope == prune.ScopeGlobal && !j.method.IsNM() && j.method.Structured == prune.StructNone
	return j.format != "dense" || global
}

// prepare plans the targets when the output needs it before writing
// (sparse sizes, global thresholds) and picks each target's encoding.
func (j *pruneJob) prepare(ctx context.Context) error {
	if j.needsPlanning() {
		if err := planTargets(ctx, j.m, j.method, j.targets, j.buf); err != nil {
			return err
		}
	}
	for _, t := range j.targets {
		t.enc = chooseEncoding(j.format, t, j.bitmaskOK)
	}
	return nil
}

// metadataAndConfig returns the output's __metadata__ and, when a target
// is stored as bitmask, its config.json (nil: copy the input's).
func (j *pruneJob) metadataAndConfig() (map[string]string, []byte, error) {
	meta := copyMeta(j.m.Metadata())
	var usesBitmask, usesCSR bool
	for _, t := range j.targets {
		usesBitmask = usesBitmask || t.enc == sparse.Bitmask
		usesCSR = usesCSR || t.enc == sparse.CSR
	}
	if usesCSR {
		meta[sparse.MetadataKey] = sparse.CSRVersion
	}
	if !usesBitmask {
		return meta, nil, nil
	}
	structure := "unstructured"
	if j.method.IsNM() {
		structure = fmt.Sprintf("%d:%d", j.method.N, j.method.M)
	}
	_, targetSparsity := targetTotals(j.targets)
	qc := map[string]any{
		"quant_method": "compressed-tensors",
		"format":       "sparse-bitmask",
		"sparsity_config": map[string]any{
			"format":             "sparse-bitmask",
			"global_sparsity":    roundTo(targetSparsity, 6),
			"sparsity_structure": structure,
		},
	}
	config, err := checkpoint.AddQuantizationConfig(j.cfgBytes, qc)
	return meta, config, err
}

func runPrune(ctx context.Context, o pruneOptions, stdout, stderr io.Writer) error {
	method, err := o.method()
	if err != nil {
		return err
	}
	if file, ok := onnxPath(o.Model); ok {
		return pruneONNX(ctx, o, method, file, stdout)
	}
	if o.Format == "sparse" || o.ExternalData {
		return usageErrorf("prune: --format sparse and --external-data are for ONNX models; a safetensors checkpoint takes dense, csr, bitmask or auto")
	}
	m, err := checkpoint.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := checkpoint.CheckOutput(o.Out.Dir, m.Dir, o.Out.Force); err != nil {
		return err
	}
	j, err := newPruneJob(m, method, o.Format, o.Include, o.Exclude, nil)
	if err != nil {
		return err
	}
	// Without planning (dense, not global) nothing reads the weights before
	// writing, so the input scan can wait for the prefetcher's order and
	// take the targets' bytes from it; otherwise it starts now, beside
	// planning, and reads everything itself.
	var bg *background
	if j.needsPlanning() {
		bg = startBackground(ctx, m, j.targets, nil)
		defer bg.stop()
	}
	if err := j.prepare(ctx); err != nil {
		return err
	}
	meta, config, err := j.metadataAndConfig()
	if err != nil {
		return err
	}
	entries, pf, err := pruneEntries(ctx, m, j.targets, j.buf)
	if err != nil {
		return err
	}
	pf.plan(entries, o.Out.MaxShardSize)
	if bg == nil {
		bg = startBackground(ctx, m, j.targets, pf)
		defer bg.stop()
	}
	pf.run(ctx)
	defer pf.stop()
	var rep *manifest.Manifest
	var man []byte
	err = checkpoint.WriteDir(o.Out.Dir, m.Dir, entries, checkpoint.WriteOptions{
		MaxShardSize: o.Out.MaxShardSize, Force: o.Out.Force, Metadata: meta, Config: config,
		After: func(string) (map[string][]byte, error) {
			res, err := bg.wait()
			if err != nil {
				return nil, err
			}
			rep = pruneManifest(m, j.targets, res.nonzero)
			rep.Method, rep.Flags, rep.Inputs = method.String(), pruneFlags(o), res.inputs
			if man, err = json.MarshalIndent(rep, "", "  "); err != nil {
				return nil, err
			}
			man = append(man, '\n')
			return map[string][]byte{manifest.File: man}, nil
		},
	})
	if err != nil {
		return err
	}
	if o.JSON {
		_, err := stdout.Write(man)
		return err
	}
	return printSizeReport(stdout, rep)
}

// chooseEncoding returns how target t is stored under --format f. Only 2-D
// tensors can be sparse; auto picks the smallest encoding, avoiding bitmask
// when config.json cannot take its sparsity_config.
func chooseEncoding(f string, t *pruneTarget, bitmaskOK bool) sparse.Encoding {
	if len(t.info.Shape) != 2 {
		return sparse.Dense
	}
	switch f {
	case "csr":
		return sparse.CSR
	case "bitmask":
		return sparse.Bitmask
	case "auto":
		e := sparse.Choose(t.info.DType, t.sRows, t.sCols, t.stored)
		if e == sparse.Bitmask && !bitmaskOK {
			s := sparse.Sizes(t.info.DType, t.sRows, t.sCols, t.stored)
			if e = sparse.Dense; s[sparse.CSR] < s[sparse.Dense] {
				e = sparse.CSR
			}
		}
		return e
	}
	return sparse.Dense
}

func readConfigBytes(m *checkpoint.Model) ([]byte, error) {
	if m.Config == nil {
		return nil, nil
	}
	return readFileBounded(filepath.Join(m.Dir, checkpoint.ConfigFile))
}

func copyMeta(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		out[k] = v
	}
	if len(in) == 0 {
		out["format"] = "pt"
	}
	return out
}

func pruneFlags(o pruneOptions) map[string]any {
	f := map[string]any{"format": o.Format, "max_shard_size": o.Out.MaxShardSize}
	if o.Pattern != "" {
		f["pattern"] = o.Pattern
	} else {
		f["sparsity"] = o.Sparsity
		if o.Structured != "" {
			f["structured"] = o.Structured
		} else {
			f["scope"] = o.Scope
		}
	}
	if len(o.Include) > 0 {
		f["include"] = o.Include
	}
	if len(o.Exclude) > 0 {
		f["exclude"] = o.Exclude
	}
	return f
}

// pruneEntries returns the output tensors in natural name order: copies of
// untouched tensors and the parts of pruned ones. A dense target is loaded,
// pruned and written in one go — by the returned prefetcher, one tensor
// ahead of the writer on another goroutine, once the caller starts it with
// the final list of entries; a sparse one is reloaded for each part.
func pruneEntries(ctx context.Context, m *checkpoint.Model, targets []*pruneTarget, buf *tensorBuffers) ([]safetensors.Entry, *prefetcher, error) {
	byName := map[string]*pruneTarget{}
	for _, t := range targets {
		byName[t.name] = t
	}
	var sel prune.Selector
	pf := &prefetcher{m: m, targets: byName}
	var entries []safetensors.Entry
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		t := byName[name]
		if t == nil {
			e, err := m.Entry(name)
			if err != nil {
				return nil, nil, err
			}
			entries = append(entries, e)
			continue
		}
		if t.enc == sparse.Dense {
			entries = append(entries, safetensors.Entry{Name: name, DType: info.DType, Shape: info.Shape.Clone(), Size: info.Size,
				Write: func(w io.Writer) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					if pf.ready != nil {
						return pf.write(w, t)
					}
					raw, err := buf.pruneDense(&sel, t)
					if err != nil {
						return err
					}
					_, err = w.Write(raw)
					return err
				}})
			continue
		}
		parts, err := sparse.Parts(t.enc, info.DType, t.sRows, t.sCols, t.stored)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range parts {
			entries = append(entries, safetensors.Entry{Name: name + p.Suffix, DType: p.DType, Shape: p.Shape, Size: p.Size,
				Write: func(w io.Writer) error {
					if err := ctx.Err(); err != nil {
						return err
					}
					sm, err := buf.masked(t)
					if err != nil {
						return err
					}
					return p.Write(w, sm)
				}})
		}
	}
	return entries, pf, nil
}

// prefetcher prunes the dense targets on its own goroutines, ahead of the
// writer, in the order the writer will ask for them; two to four sets of
// buffers rotate (see depth), so memory stays within twice the largest
// tensor.
type prefetcher struct {
	m       *checkpoint.Model
	targets map[string]*pruneTarget
	order   []*pruneTarget // set by plan
	share   *shareLink     // set by startBackground, before run
	exited  chan struct{}  // closed when run's goroutine returns
	ready   chan prefetched
	free    chan *tensorBuffers
	cancel  context.CancelFunc
}

type prefetched struct {
	t   *pruneTarget
	raw []byte
	buf *tensorBuffers
	err error
}

// start plans and runs prefetching for entries (plan, then run).
func (p *prefetcher) start(ctx context.Context, entries []safetensors.Entry, maxShard int64) {
	p.plan(entries, maxShard)
	p.run(ctx)
}

// plan sets the order of the dense targets for entries, the final list
// given to checkpoint.WriteDir with maxShard: that of the files WriteDir writes
// and of safetensors.Layout within each.
func (p *prefetcher) plan(entries []safetensors.Entry, maxShard int64) {
	p.order = nil
	for _, sh := range checkpoint.PlanShards(entries, maxShard) {
		_, idx, err := safetensors.Layout(nil, sh.Entries)
		if err != nil {
			p.order = nil
			return // the writer reports it; prune without prefetching
		}
		for _, i := range idx {
			if t := p.targets[sh.Entries[i].Name]; t != nil && t.enc == sparse.Dense {
				p.order = append(p.order, t)
			}
		}
	}
}

// run begins prefetching in the planned order; stop releases it.
func (p *prefetcher) run(ctx context.Context) {
	if p.order == nil {
		return
	}
	ctx, p.cancel = context.WithCancel(ctx)
	depth := p.depth()
	p.ready = make(chan prefetched, 1)
	p.free = make(chan *tensorBuffers, depth)
	for range depth {
		p.free <- &tensorBuffers{m: p.m}
	}
	order, share := p.order, p.share
	p.exited = make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		wg.Wait()
		close(p.exited)
	}()
	// Two stages: the reader loads targets (and lends them to the input
	// scan) as far ahead as the free buffers allow, so the scan never
	// waits for a read; the pruner selects, waits for the scan, zeroes and
	// hands each to the writer.
	type loaded struct {
		t    *pruneTarget
		buf  *tensorBuffers
		x    *prune.Matrix
		wait func()
		err  error
	}
	loadedCh := make(chan loaded, depth)
	go func() {
		defer wg.Done()
		defer close(loadedCh)
		if share != nil {
			defer close(share.feed)
		}
		for _, t := range order {
			var buf *tensorBuffers
			select {
			case buf = <-p.free:
			case <-ctx.Done():
				return
			}
			x, err := buf.load(t)
			wait := func() {}
			if err == nil {
				wait = share.lend(t, buf.raw)
			}
			select {
			case loadedCh <- loaded{t, buf, x, wait, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer wg.Done()
		defer close(p.ready)
		var sel prune.Selector
		for l := range loadedCh {
			raw, err := l.buf.raw, l.err
			if err == nil {
				raw, err = l.buf.pruneLoaded(&sel, l.t, l.x, l.wait)
			}
			select {
			case p.ready <- prefetched{l.t, raw, l.buf, err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
}

// depth returns how many targets may be loaded at once: at least two (one
// being written, one being pruned), and more while their buffers together
// stay within twice the model's largest tensor (so within the memory bound
// prune keeps anyway), at most four.
func (p *prefetcher) depth() int {
	var largest, perTarget int64
	for _, name := range p.m.Names() {
		info, _ := p.m.Tensor(name)
		largest = max(largest, info.Size)
	}
	for _, t := range p.order {
		n := t.sRows * t.sCols
		need := 5 * n // float32 values and the bool mask
		if t.info.DType != tensor.F32 {
			need += t.info.Size
		}
		perTarget = max(perTarget, need)
	}
	if perTarget == 0 {
		return 2
	}
	return int(min(max(2*largest/perTarget, 2), 4))
}

// write writes target t, which must be the next one prefetched.
func (p *prefetcher) write(w io.Writer, t *pruneTarget) error {
	r, ok := <-p.ready
	switch {
	case !ok:
		return fmt.Errorf("tensor %q: pruning stopped early", t.name)
	case r.err != nil:
		return r.err
	case r.t != t:
		return fmt.Errorf("tensor %q: internal error: pruned %q out of order", t.name, r.t.name)
	}
	_, err := w.Write(r.raw)
	p.free <- r.buf
	return err
}

// stop ends prefetching and waits for its goroutine to return, so the
// model can be closed after it (safe to call when it never started).
func (p *prefetcher) stop() {
	if p != nil && p.cancel != nil {
		p.cancel()
		<-p.exited
	}
}

// targetTotals returns the parameters of all targets and their sparsity
// after pruning (valid once every target is planned or written).
func targetTotals(targets []*pruneTarget) (params int64, sparsity float64) {
	var nz int64
	for _, t := range targets {
		params += t.sRows * t.sCols
		nz += t.nonzero
	}
	if params > 0 {
		sparsity = 1 - float64(nz)/float64(params)
	}
	return params, sparsity
}

// pruneManifest builds the size report once every tensor is written;
// nonzero gives the nonzero counts of the untouched tensors.
func pruneManifest(m *checkpoint.Model, targets []*pruneTarget, nonzero map[string]int64) *manifest.Manifest {
	byName := map[string]*pruneTarget{}
	for _, t := range targets {
		byName[t.name] = t
	}
	rep := &manifest.Manifest{Schema: manifest.Schema, Tool: manifest.Tool(), Command: "prune"}
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		params, _ := info.Shape.Elems()
		row := manifest.Tensor{Name: name, DType: string(info.DType), Shape: nonNilShape(info.Shape),
			Parameters: params, BytesBefore: info.Size, BytesAfter: info.Size, Encoding: string(sparse.Dense)}
		if t := byName[name]; t != nil {
			nz := t.nonzero
			row.Pruned, row.Encoding, row.Nonzeros, row.Stored = true, string(t.enc), &nz, t.stored
			sizes := sparse.Sizes(info.DType, t.sRows, t.sCols, t.stored)
			row.BytesAfter = sizes[t.enc]
		} else if nz, ok := nonzero[name]; ok {
			row.Nonzeros = &nz
		}
		if row.Nonzeros != nil && params > 0 {
			row.Sparsity = 1 - float64(*row.Nonzeros)/float64(params)
		}
		rep.Tensors = append(rep.Tensors, row)
		tot := &rep.Totals
		tot.Tensors++
		tot.Parameters += params
		if row.Nonzeros != nil {
			tot.Nonzeros += *row.Nonzeros
		}
		tot.BytesBefore += row.BytesBefore
		tot.BytesAfter += row.BytesAfter
	}
	tot := &rep.Totals
	tot.PrunedTensors = len(targets)
	_, sp := targetTotals(targets)
	tot.TargetSparsity = roundTo(sp, 6)
	if tot.Parameters > 0 {
		tot.Sparsity = 1 - float64(tot.Nonzeros)/float64(tot.Parameters)
	}
	if tot.BytesAfter > 0 {
		tot.Ratio = float64(tot.BytesBefore) / float64(tot.BytesAfter)
	}
	return rep
}

func roundTo(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

func nonNilShape(s tensor.Shape) []int64 {
	if s == nil {
		return []int64{}
	}
	return []int64(s)
}

// printSizeReport prints a row per tensor, in the spirit of llama.cpp's
// quantize output, and the totals.
func printSizeReport(w io.Writer, rep *manifest.Manifest) error {
	tab := &textTable{right: map[int]bool{3: true, 4: true, 6: true}}
	tab.add("NAME", "SHAPE", "DTYPE", "SPARSITY", "BYTES", "", "AFTER", "ENCODING")
	for _, t := range rep.Tensors {
		sp := "-"
		if t.Nonzeros != nil {
			sp = fmt.Sprintf("%.2f%%", 100*t.Sparsity)
		}
		enc := t.Encoding
		if !t.Pruned {
			enc = "untouched"
		}
		tab.add(t.Name, tensor.Shape(t.Shape).String(), t.DType, sp, report.Commas(t.BytesBefore), "->", report.Commas(t.BytesAfter), enc)
	}
	if err := tab.write(w); err != nil {
		return err
	}
	tot := rep.Totals
	_, err := fmt.Fprintf(w, "total: %d tensors (%d pruned), %s parameters, %s nonzeros (%.2f%% sparse; pruned tensors %.2f%%), %s -> %s bytes (%.3fx smaller)\n",
		tot.Tensors, tot.PrunedTensors, report.Commas(tot.Parameters), report.Commas(tot.Nonzeros), 100*tot.Sparsity, 100*tot.TargetSparsity,
		report.Commas(tot.BytesBefore), report.Commas(tot.BytesAfter), tot.Ratio)
	return err
}
