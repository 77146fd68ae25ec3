package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"path"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/loader"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
)

// pruneOptions are the inputs of "lmsparse prune".
type pruneOptions struct {
	Model       string
	Out         outputOptions
	Sparsity    float64
	SparsitySet bool
	Scope       string
	Pattern     string
	Structured  string
	Include     []string
	Exclude     []string
	Format      string
	JSON        bool
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
	case "dense", "csr", "bitmask", "auto":
	default:
		return m, usageErrorf("prune: --format %q: want dense, csr, bitmask or auto", o.Format)
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
	info         loader.Tensor
	rows, cols   int   // logical [out, in]
	sRows, sCols int64 // stored 2-D view
	transposed   bool
	plan         *prune.Plan
	stored       int64 // elements with any bit set after pruning
	nonzero      int64 // elements whose value is not zero after pruning
	enc          sparse.Encoding
}

// selectTargets applies the default rule, --include and --exclude. Every
// glob must match at least one tensor.
func selectTargets(m *loader.Model, include, exclude []string) ([]*pruneTarget, error) {
	names := m.Names()
	for _, g := range append(append([]string(nil), include...), exclude...) {
		if _, err := path.Match(g, ""); err != nil {
			return nil, usageErrorf("prune: bad glob %q: %v", g, err)
		}
		if !anyMatch(g, names) {
			return nil, usageErrorf("prune: glob %q matches no tensor of %s; nearest names: %s", g, m.Path, strings.Join(nearest(g, names, 3), ", "))
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

// nearest returns the k names closest to s by edit distance.
func nearest(s string, names []string, k int) []string {
	type scored struct {
		name string
		d    int
	}
	var best []scored
	for _, n := range names {
		d := editDistance(s, n)
		i := len(best)
		for i > 0 && best[i-1].d > d {
			i--
		}
		if i < k {
			best = append(best[:i], append([]scored{{n, d}}, best[i:]...)...)
			if len(best) > k {
				best = best[:k]
			}
		}
	}
	out := make([]string, len(best))
	for i, b := range best {
		out[i] = b.name
	}
	return out
}

// editDistance is the Levenshtein distance between a glob and a name, where
// a * in the glob matches any run of characters at no cost.
func editDistance(glob, name string) int {
	prev := make([]int, len(name)+1)
	cur := make([]int, len(name)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(glob); i++ {
		star := glob[i-1] == '*'
		cur[0] = prev[0]
		if !star {
			cur[0] = i
		}
		for j := 1; j <= len(name); j++ {
			if star {
				// match nothing, or one more character
				cur[j] = min(prev[j], cur[j-1])
				continue
			}
			cost := 1
			if glob[i-1] == name[j-1] || glob[i-1] == '?' {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(name)]
}

// tensorBuffers reads targets one at a time into reused buffers, so the
// memory in use is bounded by the largest target.
type tensorBuffers struct {
	m    *loader.Model
	raw  []byte
	vals []float32
	mask []bool
}

func (b *tensorBuffers) load(t *pruneTarget) (*prune.Matrix, error) {
	raw, err := b.m.ReadInto(t.name, b.raw)
	if err != nil {
		return nil, err
	}
	b.raw = raw
	n := t.sRows * t.sCols
	if int64(cap(b.vals)) < n {
		b.vals = make([]float32, n)
		b.mask = make([]bool, n)
	}
	b.vals, b.mask = b.vals[:n], b.mask[:n]
	if err := tensor.DecodeF32(b.vals, raw, t.info.DType); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", t.info.File, t.name, err)
	}
	return &prune.Matrix{Name: t.name, Vals: b.vals, Rows: t.rows, Cols: t.cols, Transposed: t.transposed}, nil
}

// masked loads t and applies its plan: the raw bytes and the pruned mask.
func (b *tensorBuffers) masked(t *pruneTarget) (*sparse.Matrix, error) {
	x, err := b.load(t)
	if err != nil {
		return nil, err
	}
	t.plan.Mask(x.Vals, b.mask)
	return &sparse.Matrix{DType: t.info.DType, Rows: t.sRows, Cols: t.sCols, Raw: b.raw, Pruned: b.mask}, nil
}

// planTargets computes every target's plan and counts, reading each target
// (three times for global scope) before anything is written.
func planTargets(ctx context.Context, m *loader.Model, method prune.Method, targets []*pruneTarget, buf *tensorBuffers) error {
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
		if t.plan, err = sel.NewPlan(method, x); err != nil {
			return wrap(t, err)
		}
		countAfter(t, x, buf)
	}
	return nil
}

// countAfter applies t's plan to the loaded x and counts what remains.
func countAfter(t *pruneTarget, x *prune.Matrix, buf *tensorBuffers) {
	t.plan.Mask(x.Vals, buf.mask)
	es := t.info.DType.Size()
	t.stored, t.nonzero = 0, 0
	for i, p := range buf.mask {
		if p {
			continue
		}
		if sparse.NonZeroBits(buf.raw, es, int64(i)) {
			t.stored++
		}
		if x.Vals[i] != 0 {
			t.nonzero++
		}
	}
}

func runPrune(ctx context.Context, o pruneOptions, stdout, stderr io.Writer) error {
	method, err := o.method()
	if err != nil {
		return err
	}
	m, err := loader.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	if err := loader.CheckOutput(o.Out.Dir, m.Dir, o.Out.Force); err != nil {
		return err
	}
	targets, err := selectTargets(m, o.Include, o.Exclude)
	if err != nil {
		return err
	}
	for _, t := range targets {
		if method.Structured != prune.StructNone && len(t.info.Shape) != 2 {
			return usageErrorf("prune: tensor %q has shape %v: structured pruning needs 2-D tensors", t.name, t.info.Shape)
		}
	}
	buf := &tensorBuffers{m: m}
	if err := planTargets(ctx, m, method, targets, buf); err != nil {
		return err
	}
	bitmaskOK := true
	cfgBytes, cfgErr := readConfigBytes(m)
	if cfgErr == nil && cfgBytes != nil {
		if _, err := loader.AddQuantizationConfig(cfgBytes, struct{}{}); err != nil {
			bitmaskOK = false
			if o.Format == "bitmask" {
				return fmt.Errorf("%s: --format bitmask: %w", m.Dir, err)
			}
		}
	}
	for _, t := range targets {
		t.enc = sparse.Dense
		if len(t.info.Shape) != 2 {
			continue // sparse layouts are for matrices; others stay dense
		}
		switch o.Format {
		case "csr":
			t.enc = sparse.CSR
		case "bitmask":
			t.enc = sparse.Bitmask
		case "auto":
			t.enc = sparse.Choose(t.info.DType, t.sRows, t.sCols, t.stored)
			if t.enc == sparse.Bitmask && !bitmaskOK {
				s := sparse.Sizes(t.info.DType, t.sRows, t.sCols, t.stored)
				t.enc = sparse.Dense
				if s[sparse.CSR] < s[sparse.Dense] {
					t.enc = sparse.CSR
				}
			}
		}
	}
	entries, rep, err := pruneEntries(ctx, m, targets, buf)
	if err != nil {
		return err
	}
	rep.Command = "prune"
	rep.Method = method.String()
	rep.Flags = pruneFlags(o)
	if rep.Inputs, err = hashInputs(m); err != nil {
		return err
	}
	meta := copyMeta(m.Metadata())
	var config []byte
	var usesBitmask, usesCSR bool
	for _, t := range targets {
		usesBitmask = usesBitmask || t.enc == sparse.Bitmask
		usesCSR = usesCSR || t.enc == sparse.CSR
	}
	if usesCSR {
		meta[sparse.MetadataKey] = sparse.CSRVersion
	}
	if usesBitmask {
		if cfgBytes == nil {
			return fmt.Errorf("%s: %w: the bitmask format needs a config.json to record its sparsity_config", m.Path, loader.ErrFormat)
		}
		structure := "unstructured"
		if method.IsNM() {
			structure = fmt.Sprintf("%d:%d", method.N, method.M)
		}
		qc := map[string]any{
			"quant_method": "compressed-tensors",
			"format":       "sparse-bitmask",
			"sparsity_config": map[string]any{
				"format":             "sparse-bitmask",
				"global_sparsity":    rep.Totals.TargetSparsity,
				"sparsity_structure": structure,
			},
		}
		if config, err = loader.AddQuantizationConfig(cfgBytes, qc); err != nil {
			return err
		}
	}
	manifest, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return err
	}
	manifest = append(manifest, '\n')
	err = loader.WriteDir(o.Out.Dir, m.Dir, entries, loader.WriteOptions{
		MaxShardSize: o.Out.MaxShardSize, Force: o.Out.Force, Metadata: meta, Config: config,
		Extra: map[string][]byte{manifestFile: manifest},
	})
	if err != nil {
		return err
	}
	if o.JSON {
		_, err := stdout.Write(manifest)
		return err
	}
	return printSizeReport(stdout, rep)
}

func readConfigBytes(m *loader.Model) ([]byte, error) {
	if m.Config == nil {
		return nil, nil
	}
	return readFileBounded(m.Dir + "/" + loader.ConfigFile)
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

// pruneEntries builds the output tensors in natural name order — copies of
// untouched tensors and the parts of pruned ones — and the size report.
func pruneEntries(ctx context.Context, m *loader.Model, targets []*pruneTarget, buf *tensorBuffers) ([]safetensors.Entry, *manifest, error) {
	byName := map[string]*pruneTarget{}
	for _, t := range targets {
		byName[t.name] = t
	}
	rep := &manifest{Schema: manifestSchema, Tool: versionString()}
	var entries []safetensors.Entry
	var targetParams, targetNonzero int64
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		params, _ := info.Shape.Elems()
		row := manifestTensor{Name: name, DType: string(info.DType), Shape: nonNilShape(info.Shape),
			Parameters: params, BytesBefore: info.Size, Encoding: string(sparse.Dense)}
		t := byName[name]
		if t == nil {
			e, err := m.Entry(name)
			if err != nil {
				return nil, nil, err
			}
			entries = append(entries, e)
			row.BytesAfter = info.Size
			if info.DType.Known() {
				st, err := scanTensor(m, name, info.DType, make([]byte, 1<<20))
				if err != nil {
					return nil, nil, err
				}
				nz := params - st.Zeros
				row.Nonzeros = &nz
			}
		} else {
			row.Pruned = true
			row.Encoding = string(t.enc)
			nz := t.nonzero
			row.Nonzeros = &nz
			row.Stored = t.stored
			parts, err := sparse.Parts(t.enc, info.DType, t.sRows, t.sCols, t.stored)
			if err != nil {
				return nil, nil, err
			}
			for _, p := range parts {
				p, t := p, t
				shape := p.Shape
				if p.Suffix == "" {
					shape = info.Shape.Clone() // dense keeps the original shape
				}
				entries = append(entries, safetensors.Entry{
					Name: name + p.Suffix, DType: p.DType, Shape: shape, Size: p.Size,
					Write: func(w io.Writer) error {
						if err := ctx.Err(); err != nil {
							return err
						}
						sm, err := buf.masked(t)
						if err != nil {
							return err
						}
						return p.Write(w, sm)
					},
				})
				row.BytesAfter += p.Size
			}
			targetParams += params
			targetNonzero += t.nonzero
		}
		if row.Nonzeros != nil && params > 0 {
			row.Sparsity = 1 - float64(*row.Nonzeros)/float64(params)
		}
		rep.Tensors = append(rep.Tensors, row)
		rep.Totals.Tensors++
		rep.Totals.Parameters += params
		if row.Nonzeros != nil {
			rep.Totals.Nonzeros += *row.Nonzeros
		}
		rep.Totals.BytesBefore += row.BytesBefore
		rep.Totals.BytesAfter += row.BytesAfter
	}
	rep.Totals.PrunedTensors = len(targets)
	if targetParams > 0 {
		rep.Totals.TargetSparsity = roundTo(1-float64(targetNonzero)/float64(targetParams), 6)
	}
	if rep.Totals.Parameters > 0 {
		rep.Totals.Sparsity = 1 - float64(rep.Totals.Nonzeros)/float64(rep.Totals.Parameters)
	}
	if rep.Totals.BytesAfter > 0 {
		rep.Totals.Ratio = float64(rep.Totals.BytesBefore) / float64(rep.Totals.BytesAfter)
	}
	return entries, rep, nil
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
func printSizeReport(w io.Writer, rep *manifest) error {
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
		tab.add(t.Name, tensor.Shape(t.Shape).String(), t.DType, sp, commas(t.BytesBefore), "->", commas(t.BytesAfter), enc)
	}
	if err := tab.write(w); err != nil {
		return err
	}
	tot := rep.Totals
	_, err := fmt.Fprintf(w, "total: %d tensors (%d pruned), %s parameters, %s nonzeros (%.2f%% sparse; pruned tensors %.2f%%), %s -> %s bytes (%.3fx smaller)\n",
		tot.Tensors, tot.PrunedTensors, commas(tot.Parameters), commas(tot.Nonzeros), 100*tot.Sparsity, 100*tot.TargetSparsity,
		commas(tot.BytesBefore), commas(tot.BytesAfter), tot.Ratio)
	return err
}
