package compress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/shrink"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/train"
)

// Recipe is the YAML file of "lmsparse compress --recipe": the stages to run,
// always in the order prune → sae → recover → store → eval → gates (a stage
// that is absent is skipped), and an optional sweep. Flags override its
// fields.
type Recipe struct {
	Version int       `yaml:"version" json:"version"`
	Prune   *Prune    `yaml:"prune,omitempty" json:"prune,omitempty"`
	SAE     *SAE      `yaml:"sae,omitempty" json:"sae,omitempty"`
	Recover *Recover  `yaml:"recover,omitempty" json:"recover,omitempty"`
	Store   Store     `yaml:"store" json:"store"`
	Eval    *Eval     `yaml:"eval,omitempty" json:"eval,omitempty"`
	Gates   *Gates    `yaml:"gates,omitempty" json:"gates,omitempty"`
	Sweep   []float64 `yaml:"sweep,omitempty" json:"sweep,omitempty"`
	// SweepMethods are the prune methods each sweep sparsity is evaluated
	// with (magnitude, wanda, sparsegpt), to compare them; it must list
	// the prune stage's own method, whose points give the highest passing
	// sparsity. Empty means the prune stage's method alone, which
	// Normalize writes in.
	SweepMethods []string `yaml:"sweep_methods,omitempty" json:"sweep_methods,omitempty"`

	// Dir is the directory relative paths in the recipe (eval.text,
	// recover.text, prune.calib.source) resolve against: LoadRecipe sets it
	// to the recipe file's directory; empty means the working directory.
	Dir string `yaml:"-" json:"-"`

	lines   map[string]int // "prune.sparsity" → line in the recipe file
	file    string
	textCWD bool // Eval.Text was set by SetText: relative to the working directory
}

type Prune struct {
	// Method is magnitude (unstructured, the default), nm or structured,
	// or one of the calibrated methods wanda and sparsegpt (with sparsity
	// or pattern).
	Method     string   `yaml:"method,omitempty" json:"method,omitempty"`
	Sparsity   *float64 `yaml:"sparsity,omitempty" json:"sparsity,omitempty"`
	Scope      string   `yaml:"scope,omitempty" json:"scope,omitempty"`
	Pattern    string   `yaml:"pattern,omitempty" json:"pattern,omitempty"`
	Structured string   `yaml:"structured,omitempty" json:"structured,omitempty"`
	// Shrink removes the units of structured: mlp, heads, qheads or a list such as mlp,heads
	// (package shrink) instead of zeroing them.
	Shrink    bool                `yaml:"shrink,omitempty" json:"shrink,omitempty"`
	Include   []string            `yaml:"include,omitempty" json:"include,omitempty"`
	Exclude   []string            `yaml:"exclude,omitempty" json:"exclude,omitempty"`
	Overrides []sparsify.Override `yaml:"overrides,omitempty" json:"overrides,omitempty"`
	// Calib, OWL, Damp and BlockSize tune wanda and sparsegpt.
	Calib     *Calib  `yaml:"calib,omitempty" json:"calib,omitempty"`
	OWL       *OWL    `yaml:"owl,omitempty" json:"owl,omitempty"`
	Damp      float64 `yaml:"damp,omitempty" json:"damp,omitempty"`
	BlockSize int     `yaml:"block_size,omitempty" json:"block_size,omitempty"`
}

// Calib is the calibration data of wanda and sparsegpt: source "self"
// (sampled from the model) or a text file (relative to the recipe's
// directory), samples windows of len tokens, seed for self.
type Calib struct {
	Source  string `yaml:"source,omitempty" json:"source,omitempty"`
	Samples int    `yaml:"samples,omitempty" json:"samples,omitempty"`
	Len     int    `yaml:"len,omitempty" json:"len,omitempty"`
	Seed    uint64 `yaml:"seed,omitempty" json:"seed,omitempty"`
}

// OWL enables outlier-weighted block sparsities (m and lambda 0 take 5
// and 0.08).
type OWL struct {
	M      float64 `yaml:"m,omitempty" json:"m,omitempty"`
	Lambda float64 `yaml:"lambda,omitempty" json:"lambda,omitempty"`
}

// SAE is the sae stage: the autoencoder of "lmsparse sae" (zero fields
// take its defaults).
type SAE struct {
	Tensor  string  `yaml:"tensor,omitempty" json:"tensor,omitempty"`
	Latents int     `yaml:"latents,omitempty" json:"latents,omitempty"`
	K       int     `yaml:"k,omitempty" json:"k,omitempty"`
	L1      float64 `yaml:"l1,omitempty" json:"l1,omitempty"`
	Epochs  int     `yaml:"epochs,omitempty" json:"epochs,omitempty"`
	Batch   int     `yaml:"batch,omitempty" json:"batch,omitempty"`
	LR      float64 `yaml:"lr,omitempty" json:"lr,omitempty"`
	Seed    uint64  `yaml:"seed,omitempty" json:"seed,omitempty"`
}

// Recover is the recover stage: after pruning (and the sae stage), the
// pruned model is fine-tuned as "lmsparse finetune --base ORIGINAL" does,
// distilled from the original, and the trained weights are what the store
// stage writes. The pruned weights stay exactly zero (the mask is kept);
// every other parameter trains, except the sae stage's tensor, which stays
// the autoencoder's reconstruction. With an eval stage the report shows
// the fidelity before recovery beside the final one, and the loss curve.
//
// Normalize writes the defaults of the zero fields, those of "lmsparse
// finetune": steps 100, batch 8 windows, accum 1, ctx 128 tokens (at most
// the model's positions; NewPlan fills it in), optimizer adamw, lr 0.001,
// schedule constant (cosine decays to min_lr, default 0, after warmup
// steps, default 0), weight_decay 0, clip 0 (off), distill 1 (the loss is
// KL(original‖model); 0 is plain cross-entropy on the data), seed 0,
// shuffle false. The data is text, a file relative to the recipe's
// directory cut into windows of ctx tokens, or, when text is empty,
// samples (default 256) sequences of ctx tokens sampled from the original
// with seed. A key written as 0 where 0 cannot run (steps, batch, accum,
// ctx, samples, lr) is an error, not the default.
//
// The sweep and find-sparsity do not recover: their points are one-shot
// prunes of the original, so find-sparsity's answer is a lower bound of
// what recovery passes.
type Recover struct {
	Steps       int      `yaml:"steps,omitempty" json:"steps,omitempty"`
	Batch       int      `yaml:"batch,omitempty" json:"batch,omitempty"`
	Accum       int      `yaml:"accum,omitempty" json:"accum,omitempty"`
	Ctx         int      `yaml:"ctx,omitempty" json:"ctx,omitempty"`
	Optimizer   string   `yaml:"optimizer,omitempty" json:"optimizer,omitempty"`
	LR          float64  `yaml:"lr,omitempty" json:"lr,omitempty"`
	MinLR       float64  `yaml:"min_lr,omitempty" json:"min_lr,omitempty"`
	Schedule    string   `yaml:"schedule,omitempty" json:"schedule,omitempty"`
	Warmup      int      `yaml:"warmup,omitempty" json:"warmup,omitempty"`
	WeightDecay float64  `yaml:"weight_decay,omitempty" json:"weight_decay,omitempty"`
	Clip        float64  `yaml:"clip,omitempty" json:"clip,omitempty"`
	Distill     *float64 `yaml:"distill,omitempty" json:"distill,omitempty"`
	Text        string   `yaml:"text,omitempty" json:"text,omitempty"`
	Samples     int      `yaml:"samples,omitempty" json:"samples,omitempty"`
	Seed        uint64   `yaml:"seed,omitempty" json:"seed,omitempty"`
	Shuffle     bool     `yaml:"shuffle,omitempty" json:"shuffle,omitempty"`
}

// Defaults of the recover stage (see Recover).
const (
	defaultRecoverSteps = 100
	defaultRecoverBatch = 8
	defaultRecoverLR    = 1e-3
)

// Store is the store stage: the format of pruned tensors and the shard size.
type Store struct {
	Format       string `yaml:"format,omitempty" json:"format,omitempty"`
	MaxShardSize string `yaml:"max_shard_size,omitempty" json:"max_shard_size,omitempty"`
}

// Eval is the eval stage: held-out text (relative to the recipe) and windows.
type Eval struct {
	Text      string `yaml:"text,omitempty" json:"text,omitempty"`
	Ctx       int    `yaml:"ctx,omitempty" json:"ctx,omitempty"`
	Stride    int    `yaml:"stride,omitempty" json:"stride,omitempty"`
	MaxTokens int    `yaml:"max_tokens,omitempty" json:"max_tokens,omitempty"`
}

// Gates are the fidelity thresholds a run must pass (nil: not checked).
type Gates struct {
	MaxPPLRatio *float64 `yaml:"max_ppl_ratio,omitempty" json:"max_ppl_ratio,omitempty"`
	MaxKL       *float64 `yaml:"max_kl,omitempty" json:"max_kl,omitempty"`
	MinTop1     *float64 `yaml:"min_top1,omitempty" json:"min_top1,omitempty"`
}

// RecipeVersion is the only recipe version this lmsparse reads.
const RecipeVersion = 1

// maxRecipeSize bounds a recipe file.
const maxRecipeSize = 1 << 20

// LoadRecipe reads a recipe file strictly: unknown keys, wrong types and
// trailing documents are errors naming the file and line.
func LoadRecipe(path string) (*Recipe, error) {
	data, err := checkpoint.ReadFileBounded(path, maxRecipeSize)
	if err != nil {
		return nil, err
	}
	r, err := ParseRecipe(path, data)
	if err != nil {
		return nil, err
	}
	r.Dir = filepath.Dir(path)
	return r, nil
}

// ParseRecipe parses a recipe strictly; name labels it in errors (a file
// name). Relative paths in it resolve against the working directory unless
// the caller sets Dir.
func ParseRecipe(path string, data []byte) (*Recipe, error) {
	r := &Recipe{file: path, lines: map[string]int{}}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(r); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, invalidf("%s: the recipe is empty", path)
		}
		return nil, invalidf("%s", yamlMessage(path, err))
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, invalidf("%s: a recipe is one YAML document", path)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		collectLines(&root, "", r.lines)
	}
	if _, ok := r.lines["recover"]; ok && r.Recover == nil {
		r.Recover = &Recover{} // "recover:" with nothing under it: every default
	}
	if r.Version != RecipeVersion {
		return nil, r.errorf("version", "version %d: this lmsparse reads recipe version %d (add \"version: %d\")", r.Version, RecipeVersion, RecipeVersion)
	}
	return r, nil
}

// yamlLine matches the "line N: " prefix of yaml.v3 messages.
var yamlLine = regexp.MustCompile(`^line ([0-9]+): (.*)$`)

// yamlMessage turns yaml.v3's multi-line errors into one line in the
// "file:line: message" form: "line 3: field foo not found in type
// main.Prune" → "recipe.yaml:3: unknown key foo".
func yamlMessage(path string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n")
	var parts []string
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, " not found in type "); i >= 0 && strings.Contains(line, "field ") {
			line = strings.Replace(line[:i], "field ", "unknown key ", 1)
		}
		line = strings.ReplaceAll(line, "compress.", "recipe ")
		if line == "" {
			continue
		}
		if m := yamlLine.FindStringSubmatch(line); m != nil {
			line = path + ":" + m[1] + ": " + m[2]
		} else {
			line = path + ": " + line
		}
		parts = append(parts, line)
	}
	return strings.Join(parts, "; ")
}

// collectLines records the line of every mapping key, by dotted path.
func collectLines(n *yaml.Node, prefix string, lines map[string]int) {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			collectLines(c, prefix, lines)
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			if prefix != "" {
				key = prefix + "." + key
			}
			lines[key] = n.Content[i].Line
			collectLines(n.Content[i+1], key, lines)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			collectLines(c, prefix+"["+strconv.Itoa(i)+"]", lines)
		}
	}
}

// errorf returns a usage error naming the recipe line of key (or the flag
// when the value came from the command line).
func (r *Recipe) errorf(key, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if line, ok := r.lines[key]; ok && r.file != "" {
		return invalidf("%s:%d: %s", r.file, line, msg)
	}
	return invalidf("%s", msg)
}

// Units reports whether the prune stage prunes whole MLP channels or
// attention heads (structured: mlp, heads, qheads or a list such as mlp,heads; package shrink)
// rather than through a prune.Method.
func (r *Recipe) Units() bool {
	return r.Prune != nil && r.Prune.Method == "structured" && shrink.IsUnits(r.Prune.Structured)
}

// checkUnits checks a prune stage of whole units: its sparsity, and no
// option or stage that works on single tensors' zeros.
func (r *Recipe) checkUnits() error {
	p := r.Prune
	switch {
	case !(*p.Sparsity >= 0 && *p.Sparsity < 1):
		return r.errorf("prune.sparsity", "sparsity %g: want a fraction of units in [0, 1)", *p.Sparsity)
	case p.Scope != "" || len(p.Include)+len(p.Exclude)+len(p.Overrides) > 0:
		return r.errorf("prune.structured", "structured: %s prunes the same units in every block: no scope, include, exclude or overrides", p.Structured)
	case len(r.Sweep) > 0 || len(r.SweepMethods) > 0:
		return r.errorf("sweep", "the sweep prunes single tensors; structured: %s has no sweep", p.Structured)
	case r.Recover != nil:
		return r.errorf("recover", "the recover stage keeps the zeros of single tensors; structured: %s has no recover stage", p.Structured)
	case r.Store.Format != "" && r.Store.Format != "dense":
		return r.errorf("store.format", "structured: %s writes dense tensors (removed units, or zeros in place): store.format must be dense", p.Structured)
	}
	return nil
}

// PruneMethod turns the prune stage into a prune.Method (the zero Method
// for a stage of whole units, see Units).
func (r *Recipe) PruneMethod() (prune.Method, error) {
	p := r.Prune
	var m prune.Method
	method := p.Method
	if method == "" {
		switch {
		case p.Pattern != "":
			method = "nm"
		case p.Structured != "":
			method = "structured"
		default:
			method = "magnitude"
		}
	}
	calibrated := calibratedMethod(method)
	units := method == "structured" && shrink.IsUnits(p.Structured) // calib scores units by activations
	if !calibrated && !r.sweepCalibrated() && ((p.Calib != nil && !units) || p.OWL != nil || p.Damp != 0 || p.BlockSize != 0) {
		return m, r.errorf("prune.method", "calib, owl, damp and block_size tune method wanda or sparsegpt (of the prune stage or of sweep_methods), not %s", method)
	}
	if calibrated {
		switch {
		case p.Structured != "":
			return m, r.errorf("prune.structured", "method %s prunes unstructured or N:M, not structured", method)
		case p.Pattern != "":
			method = "nm"
		default:
			method = "magnitude"
		}
	}
	switch method {
	case "nm":
		var err error
		if m, err = prune.ParsePattern(p.Pattern); err != nil {
			return m, r.errorf("prune.pattern", "prune.pattern %q: %s", p.Pattern, prune.Reason(err))
		}
		if p.Sparsity != nil {
			return m, r.errorf("prune.sparsity", "prune.sparsity cannot be combined with an N:M pattern (it sets the sparsity to 1-N/M)")
		}
	case "magnitude", "structured":
		if p.Sparsity == nil {
			return m, r.errorf("prune", "the prune stage needs a sparsity")
		}
		if method == "structured" && shrink.IsUnits(p.Structured) {
			return m, r.checkUnits()
		}
		if p.Shrink {
			return m, r.errorf("prune.shrink", "shrink removes whole units: it needs method structured with structured: mlp, heads, qheads or a list such as mlp,heads (rows and cols can only be zeroed)")
		}
		m = prune.Method{Sparsity: *p.Sparsity, Scope: prune.Scope(p.Scope)}
		if m.Scope == "" {
			m.Scope = prune.ScopeTensor
		}
		if method == "structured" {
			if p.Structured == "" {
				return m, r.errorf("prune.method", "method structured needs structured: rows or cols")
			}
			m.Structured, m.Scope = prune.Structure(p.Structured), ""
		} else if p.Structured != "" {
			return m, r.errorf("prune.structured", "structured: %s needs method structured", p.Structured)
		}
	default:
		return m, r.errorf("prune.method", "prune.method %q: want magnitude, nm, structured, wanda or sparsegpt", p.Method)
	}
	if err := m.Validate(); err != nil {
		key := "prune.sparsity"
		if m.IsNM() {
			key = "prune.pattern"
		}
		return m, r.errorf(key, "%s", prune.Reason(err))
	}
	return m, nil
}

// Algorithm returns the prune stage's algorithm (magnitude for nm and
// structured).
func (r *Recipe) Algorithm() sparsify.Algorithm {
	if r.Prune == nil {
		return sparsify.Magnitude
	}
	return algorithm(r.Prune.Method)
}

// algorithm returns the algorithm of a prune method name (magnitude for
// nm and structured).
func algorithm(method string) sparsify.Algorithm {
	if calibratedMethod(method) {
		return sparsify.Algorithm(method)
	}
	return sparsify.Magnitude
}

// calibratedMethod reports whether a prune method runs the model on
// calibration data.
func calibratedMethod(method string) bool { return method == "wanda" || method == "sparsegpt" }

// sweepCalibrated reports whether sweep_methods lists a calibrated method.
func (r *Recipe) sweepCalibrated() bool {
	return slices.ContainsFunc(r.SweepMethods, calibratedMethod)
}

// sweepMethods are the methods each sweep sparsity is evaluated with:
// sweep_methods, or the prune stage's method alone.
func (r *Recipe) sweepMethods() []string {
	if len(r.SweepMethods) > 0 {
		return r.SweepMethods
	}
	return []string{r.Prune.Method}
}

// validateSweepMethods checks sweep_methods against the sweep and the
// prune stage m (validated).
func (r *Recipe) validateSweepMethods(m prune.Method) error {
	if len(r.SweepMethods) == 0 {
		return nil
	}
	if len(r.Sweep) == 0 {
		return r.errorf("sweep_methods", "sweep_methods compares prune methods at the sweep's sparsities: give a sweep too")
	}
	for i, name := range r.SweepMethods {
		switch name {
		case "magnitude", "wanda", "sparsegpt":
		default:
			return r.errorf("sweep_methods", "sweep_methods[%d] %q: want magnitude, wanda or sparsegpt", i, name)
		}
		if slices.Index(r.SweepMethods, name) < i {
			return r.errorf("sweep_methods", "sweep_methods lists %s twice", name)
		}
	}
	own := r.Prune.Method
	if own == "" {
		own = "magnitude"
	}
	switch {
	case m.Structured != prune.StructNone:
		return r.errorf("sweep_methods", "sweep_methods compares unstructured pruning; the prune stage is structured")
	case !slices.Contains(r.SweepMethods, own):
		return r.errorf("sweep_methods", "sweep_methods %v lacks the prune stage's method %s: list it too (its points give the highest passing sparsity)", r.SweepMethods, own)
	case m.Scope == prune.ScopeGlobal && r.sweepCalibrated():
		return r.errorf("sweep_methods", "wanda and sparsegpt compare weights within rows or column blocks: scope global does not apply to them (use scope tensor or row)")
	}
	return nil
}

// calibPath is the calibration text resolved against Dir ("" for self).
func (r *Recipe) calibPath() string {
	c := r.Prune.Calib
	if c == nil || c.Source == "" || c.Source == "self" {
		return ""
	}
	if r.Dir == "" || filepath.IsAbs(c.Source) {
		return c.Source
	}
	return filepath.Join(r.Dir, c.Source)
}

// fillDefaults writes the defaults into the recipe.
func (r *Recipe) fillDefaults() {
	if p := r.Prune; p != nil && p.Method == "" {
		switch {
		case p.Pattern != "":
			p.Method = "nm"
		case p.Structured != "":
			p.Method = "structured"
		default:
			p.Method = "magnitude"
		}
	}
	if p := r.Prune; p != nil && p.Method == "magnitude" && p.Scope == "" {
		p.Scope = string(prune.ScopeTensor)
	}
	if p := r.Prune; p != nil && (calibratedMethod(p.Method) || r.sweepCalibrated()) {
		if p.Calib == nil {
			p.Calib = &Calib{}
		}
		c := p.Calib
		if c.Source == "" {
			c.Source = "self"
		}
		if c.Samples == 0 {
			c.Samples = sparsify.DefaultCalibSamples
		}
		if c.Len == 0 {
			c.Len = sparsify.DefaultCalibLen
		}
		sparsegpt := p.Method == "sparsegpt" || slices.Contains(r.SweepMethods, "sparsegpt")
		if sparsegpt && p.Damp == 0 {
			p.Damp = 0.01
		}
		if sparsegpt && p.BlockSize == 0 {
			p.BlockSize = 128
		}
		if p.OWL != nil && p.OWL.M == 0 {
			p.OWL.M = 5
		}
		if p.OWL != nil && p.OWL.Lambda == 0 {
			p.OWL.Lambda = 0.08
		}
	}
	if v := r.Recover; v != nil {
		if v.Steps == 0 {
			v.Steps = defaultRecoverSteps
		}
		if v.Batch == 0 {
			v.Batch = defaultRecoverBatch
		}
		if v.Accum == 0 {
			v.Accum = 1
		}
		if v.Optimizer == "" {
			v.Optimizer = string(train.AdamW)
		}
		if v.LR == 0 {
			v.LR = defaultRecoverLR
		}
		if v.Schedule == "" {
			v.Schedule = string(train.Constant)
		}
		if v.Distill == nil {
			one := 1.0
			v.Distill = &one
		}
		if v.Text == "" && v.Samples == 0 {
			v.Samples = train.DefaultSamples
		}
	}
	if p := r.Prune; p != nil && len(r.Sweep) > 0 && len(r.SweepMethods) == 0 && (p.Method == "magnitude" || calibratedMethod(p.Method)) {
		r.SweepMethods = []string{p.Method} // what the sweep runs
	}
	if r.Store.Format == "" {
		r.Store.Format = "dense"
	}
}

// Normalize checks the recipe as a whole (after a caller changed fields,
// e.g. from flags) and writes the defaults into it, so that it shows what
// actually runs.
func (r *Recipe) Normalize() error {
	if err := r.validate(); err != nil {
		return err
	}
	r.fillDefaults()
	return nil
}

// recoverText is the recover stage's training text resolved against Dir
// ("" for self-sampled windows).
func (r *Recipe) recoverText() string {
	t := r.Recover.Text
	if t == "" || r.Dir == "" || filepath.IsAbs(t) {
		return t
	}
	return filepath.Join(r.Dir, t)
}

// TextPath returns the eval stage's text file resolved against Dir.
func (r *Recipe) TextPath() string {
	if r.Eval == nil || r.Eval.Text == "" {
		return ""
	}
	if r.Dir == "" || r.textCWD || filepath.IsAbs(r.Eval.Text) {
		return r.Eval.Text
	}
	return filepath.Join(r.Dir, r.Eval.Text)
}

// SetText sets the eval stage's text file (adding the stage), a path
// relative to the working directory rather than to Dir (a command-line
// override of the recipe).
func (r *Recipe) SetText(path string) {
	if r.Eval == nil {
		r.Eval = &Eval{}
	}
	r.Eval.Text, r.textCWD = path, true
}

// validate checks the recipe as a whole, after flags were merged.
func (r *Recipe) validate() error {
	if r.Prune == nil && r.SAE == nil {
		return &invalidError{msg: "nothing to do: the recipe has neither a prune nor an sae stage", cause: ErrEmpty}
	}
	if r.Prune != nil {
		m, err := r.PruneMethod()
		if err != nil {
			return err
		}
		for i, ov := range r.Prune.Overrides {
			if ov.Match == "" {
				return r.errorf(fmt.Sprintf("prune.overrides[%d]", i), "an override needs match: GLOB")
			}
			if ov.Sparsity < 0 || ov.Sparsity >= 1 {
				return r.errorf(fmt.Sprintf("prune.overrides[%d].sparsity", i), "override sparsity %g is outside [0, 1)", ov.Sparsity)
			}
		}
		if c := r.Prune.Calib; c != nil && (c.Samples < 0 || c.Len < 0) {
			return r.errorf("prune.calib", "calib samples and len must not be negative")
		}
		if r.Prune.Damp < 0 || r.Prune.BlockSize < 0 {
			return r.errorf("prune", "damp and block_size must not be negative")
		}
		if len(r.Sweep) > 0 && m.IsNM() {
			return r.errorf("sweep", "a sweep varies the sparsity, which an N:M pattern fixes")
		}
		if err := r.validateSweepMethods(m); err != nil {
			return err
		}
	} else if len(r.Sweep) > 0 {
		return r.errorf("sweep", "a sweep needs a prune stage")
	} else if len(r.SweepMethods) > 0 {
		return r.errorf("sweep_methods", "sweep_methods compares prune methods at the sweep's sparsities: give a prune stage and a sweep")
	}
	if err := r.validateRecover(); err != nil {
		return err
	}
	switch r.Store.Format {
	case "", "dense", "csr", "bitmask", "24bitmask", "auto":
	default:
		return r.errorf("store.format", "store.format %q: want dense, csr, bitmask, 24bitmask or auto", r.Store.Format)
	}
	if r.Store.MaxShardSize != "" {
		if _, err := checkpoint.ParseSize(r.Store.MaxShardSize); err != nil {
			return r.errorf("store.max_shard_size", "%v", err)
		}
	}
	if r.SAE != nil {
		s := r.SAE
		if s.Latents < 0 || s.K < 0 || s.L1 < 0 || s.Epochs < 0 || s.Batch < 0 || s.LR < 0 {
			return r.errorf("sae", "sae values must not be negative")
		}
	}
	hasText := r.Eval != nil && r.Eval.Text != ""
	if r.Eval != nil && !hasText {
		return r.errorf("eval", "the eval stage needs text: FILE (held-out text)")
	}
	if r.Eval != nil && (r.Eval.Ctx < 0 || r.Eval.Stride < 0 || r.Eval.MaxTokens < 0) {
		return r.errorf("eval", "eval ctx, stride and max_tokens must not be negative")
	}
	if g := r.Gates; g != nil && (g.MaxPPLRatio != nil || g.MaxKL != nil || g.MinTop1 != nil) && !hasText {
		return r.errorf("gates", "gates need an eval stage with text: the fidelity they check is measured on it")
	}
	if g := r.Gates; g != nil {
		bad := func(v *float64, ok func(float64) bool) bool { return v != nil && (math.IsNaN(*v) || !ok(*v)) }
		switch {
		case bad(g.MaxPPLRatio, func(x float64) bool { return x >= 1 && !math.IsInf(x, 0) }):
			return r.errorf("gates.max_ppl_ratio", "max_ppl_ratio (--max-ppl-ratio) %g: a perplexity ratio limit is at least 1 (1.2 allows 20%% worse)", *g.MaxPPLRatio)
		case bad(g.MaxKL, func(x float64) bool { return x >= 0 && !math.IsInf(x, 0) }):
			return r.errorf("gates.max_kl", "max_kl (--max-kl) %g: a KL limit in nats is 0 or more", *g.MaxKL)
		case bad(g.MinTop1, func(x float64) bool { return x >= 0 && x <= 1 }):
			return r.errorf("gates.min_top1", "min_top1 (--min-top1) %g: top-1 agreement is a fraction in [0, 1] (0.7 means 70%%)", *g.MinTop1)
		}
	}
	for i, s := range r.Sweep {
		if s < 0 || s >= 1 {
			return r.errorf(fmt.Sprintf("sweep[%d]", i), "sweep sparsity %g is outside [0, 1)", s)
		}
	}
	if len(r.Sweep) > 0 && !hasText {
		return r.errorf("sweep", "a sweep needs an eval stage with text")
	}
	return nil
}

// validateRecover checks the recover stage's values (train.Plan checks
// them against the model in NewPlan). Errors name the key's line.
func (r *Recipe) validateRecover() error {
	v := r.Recover
	if v == nil {
		return nil
	}
	if r.Prune == nil {
		return r.errorf("recover", "a recover stage needs a prune stage: it trains the pruned model")
	}
	key := func(k string) string {
		if _, ok := r.lines["recover."+k]; ok {
			return "recover." + k
		}
		return "recover"
	}
	// written reports a key given in the recipe file (so 0 is not "the
	// default").
	written := func(k string) bool { _, ok := r.lines["recover."+k]; return ok }
	bad := func(x float64) bool { return math.IsNaN(x) || math.IsInf(x, 0) }
	for _, c := range []struct {
		name string
		v    int
		min  int
		want string
	}{
		{"steps", v.Steps, 1, "at least 1"},
		{"batch", v.Batch, 1, "at least 1 window"},
		{"accum", v.Accum, 1, "at least 1 batch per step"},
		{"ctx", v.Ctx, 2, "at least 2 tokens"},
		{"samples", v.Samples, 1, "at least 1 sequence"},
	} {
		if c.v < 0 || (c.v < c.min && (c.v != 0 || written(c.name))) {
			return r.errorf(key(c.name), "recover.%s %d: want %s", c.name, c.v, c.want)
		}
	}
	lr := v.LR
	if lr == 0 && !written("lr") {
		lr = defaultRecoverLR
	}
	switch {
	case bad(lr) || lr <= 0:
		return r.errorf(key("lr"), "recover.lr %g: want a positive learning rate", v.LR)
	case bad(v.MinLR) || v.MinLR < 0 || v.MinLR > lr:
		return r.errorf(key("min_lr"), "recover.min_lr %g: want 0 … %g (lr)", v.MinLR, lr)
	case v.Warmup < 0:
		return r.errorf(key("warmup"), "recover.warmup %d: want 0 or more steps", v.Warmup)
	case bad(v.WeightDecay) || v.WeightDecay < 0:
		return r.errorf(key("weight_decay"), "recover.weight_decay %g: want 0 or more", v.WeightDecay)
	case bad(v.Clip) || v.Clip < 0:
		return r.errorf(key("clip"), "recover.clip %g: want 0 (off) or a positive gradient norm", v.Clip)
	case v.Distill != nil && (math.IsNaN(*v.Distill) || *v.Distill < 0 || *v.Distill > 1):
		return r.errorf(key("distill"), "recover.distill %g: want 0 … 1", *v.Distill)
	case v.Text != "" && v.Samples != 0:
		return r.errorf(key("samples"), "recover.samples sets how many sequences are sampled; with recover.text the windows come from the text")
	}
	switch train.Optimizer(v.Optimizer) {
	case "", train.AdamW, train.SGD:
	default:
		return r.errorf(key("optimizer"), "recover.optimizer %q: want adamw or sgd", v.Optimizer)
	}
	switch train.Schedule(v.Schedule) {
	case "", train.Constant, train.Cosine:
	default:
		return r.errorf(key("schedule"), "recover.schedule %q: want constant or cosine", v.Schedule)
	}
	return nil
}

// YAML returns the recipe as YAML.
func (r *Recipe) YAML() ([]byte, error) {
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(r); err != nil {
		return nil, err
	}
	return b.Bytes(), enc.Close()
}

// ParseSweep parses a list of sweep sparsities written as on the command
// line: comma-separated numbers such as "0.3,0.5,0.7" (the recipe checks
// their range).
func ParseSweep(s string) ([]float64, error) {
	var sweep []float64
	for _, f := range strings.Split(s, ",") {
		v, err := strconv.ParseFloat(strings.TrimSpace(f), 64)
		if err != nil {
			return nil, invalidf("--sweep %q: want comma-separated sparsities such as 0.3,0.5,0.7", s)
		}
		sweep = append(sweep, v)
	}
	return sweep, nil
}
