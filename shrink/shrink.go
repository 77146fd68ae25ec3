package shrink

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strings"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/tensor"
)

// ErrInvalid reports a request that cannot be carried out exactly: an
// unknown unit, heads of a gpt2 model, a sparsity that removes every unit,
// an architecture without the coupled tensors. The lmsparse command maps
// it to exit code 2.
var ErrInvalid = errors.New("invalid structured pruning request")

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Unit is a kind of unit to remove.
type Unit string

const (
	// MLP is an MLP intermediate channel.
	MLP Unit = "mlp"
	// Heads is an attention key/value group with its query heads.
	Heads Unit = "heads"
	// QHeads is a query head alone: the same number go from every
	// key/value group, the key/value heads stay.
	QHeads Unit = "qheads"
)

// IsUnits reports whether s names units ("mlp", "heads", "qheads",
// "mlp,heads", …)
// rather than another kind of structured pruning (rows, cols).
func IsUnits(s string) bool {
	_, err := ParseUnits(s)
	return err == nil
}

// ParseUnits parses a comma-separated list of units.
func ParseUnits(s string) ([]Unit, error) {
	var out []Unit
	for _, f := range strings.Split(s, ",") {
		u := Unit(strings.TrimSpace(f))
		if u != MLP && u != Heads && u != QHeads {
			return nil, invalidf("removing shapes needs whole units, --structured mlp (MLP channels), heads (attention heads with their key/value head), qheads (query heads alone) or a list such as mlp,heads, not %q: "+
				"rows or columns of single tensors change the hidden size every block shares, so they can only be zeroed (shapes kept)", s)
		}
		if slices.Contains(out, u) {
			return nil, invalidf("unit %q given twice in %q", u, s)
		}
		out = append(out, u)
	}
	slices.Sort(out) // heads, mlp, qheads
	if slices.Contains(out, Heads) && slices.Contains(out, QHeads) {
		return nil, invalidf("%q: give heads (whole key/value groups) or qheads (query heads within every group), not both", s)
	}
	return out, nil
}

// Options control a job.
type Options struct {
	// Units to prune: "mlp" (MLP channels), "heads" (key/value groups with
	// their query heads), "qheads" (query heads within every group), or a
	// comma-separated list such as "mlp,heads" (see ParseUnits).
	Units string
	// Sparsity is the fraction of units removed in every block, in [0, 1).
	Sparsity float64
	// Remove removes the units (smaller shapes, config.json updated);
	// false zeroes them in place.
	Remove bool
	// MaxShardSize is the largest output shard in tensor bytes; 0 means
	// Hugging Face's 5 GB.
	MaxShardSize int64
	// Command and Flags are recorded in the manifest; Command defaults to
	// "prune".
	Command string
	Flags   map[string]any
	// Calib, when set, scores units by their activations on calibration
	// windows (sparsify.CalibrationWindows: sampled from the model, or cut
	// from a text) instead of their weights alone: a unit's importance is
	// Σ_c ‖x_c‖₂·‖W[:,c]‖₂ over the input columns c it feeds into the
	// projection that reads it (down_proj's column j, c_proj's row j, the
	// head's o_proj columns), x_c the column's values over every window
	// token, on the dense model — Wanda's |W|·‖x‖, summed over the unit.
	// Threads is the forward pass's (0: all CPUs).
	Calib   *sparsify.Calibration
	Threads int
	// Progress receives the stages "score" (one unit per block) and
	// "write" (one per tensor).
	Progress progress.Func
}

// Job is one planned structured pruning of a checkpoint. A Job is used
// once.
type Job struct {
	opts     Options
	unitList []Unit // parsed Options.Units
	m        *checkpoint.Model
	own      bool
	family   string // "llama" or "gpt2"
	cfg      checkpoint.Config

	// Counts before and after: MLP channels, query heads, key/value heads.
	inter, interAfter int
	heads, headsAfter int
	kv, kvAfter       int

	blocks []block
	ops    map[string]*op
	// act holds, per block, the sums of squares of the o_proj and the
	// down_proj inputs over the calibration tokens (Options.Calib).
	act      [][2][]float64
	replaced []replacement
	executed bool
}

// block names the coupled tensors of one transformer block.
type block struct {
	// MLP: rows of up (and gate) [inter, D] for llama, columns of c_fc
	// [D, inter] for gpt2; down's columns (llama [D, inter]) or rows
	// (gpt2 c_proj [inter, D]).
	mlpIn  []string // llama gate, up; gpt2 c_fc
	mlpOut string   // llama down_proj; gpt2 c_proj
	// Heads (llama): q, k, v rows, o columns (k and v empty for qheads).
	q, k, v, o    string
	dropMLP       []bool // per channel, after selection
	dropQ, dropKV []bool // per row of q_proj, of k_proj/v_proj
}

// op is one tensor the job rewrites: axis 0 drops rows (or entries of a
// 1-D tensor), axis 1 columns, as drop says.
type op struct {
	name    string
	axis    int
	kind    int           // kindMLP, kindQ (q_proj, o_proj) or kindKV
	drop    func() []bool // read after selection
	info    checkpoint.Tensor
	shape   tensor.Shape // after
	nonzero int64        // counted while writing
}

const (
	kindMLP = iota
	kindQ
	kindKV
)

type replacement struct {
	name     string
	parts    []safetensors.Entry
	encoding string
	bytes    int64
	meta     map[string]string
}

// Plan opens the checkpoint at path (sparse tensors written by lmsparse
// are read dense) and plans the job.
func Plan(ctx context.Context, path string, opts Options) (*Job, error) {
	if _, ok := checkpoint.ONNXPath(path); ok {
		return nil, invalidf("%s: removing MLP channels or heads needs a Hugging Face checkpoint (llama family or gpt2), not an ONNX model", path)
	}
	m, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	if _, err := m.ExpandSparse(); err != nil {
		m.Close()
		return nil, err
	}
	j, err := PlanCheckpoint(ctx, m, opts)
	if err != nil {
		m.Close()
		return nil, err
	}
	j.own = true
	return j, nil
}

// roundHalfEven is the number of units of n removed at sparsity s.
func roundHalfEven(s float64, n int) int { return int(math.RoundToEven(s * float64(n))) }

// PlanCheckpoint plans the job on a checkpoint the caller opened (and
// closes after the job). Nothing but headers is read.
func PlanCheckpoint(_ context.Context, m *checkpoint.Model, opts Options) (*Job, error) {
	if opts.Command == "" {
		opts.Command = "prune"
	}
	units, err := ParseUnits(opts.Units)
	if err != nil {
		return nil, err
	}
	if !(opts.Sparsity >= 0 && opts.Sparsity < 1) {
		return nil, invalidf("sparsity %g: want a fraction of units in [0, 1)", opts.Sparsity)
	}
	if m.Config == nil {
		return nil, invalidf("%s: no config.json: removing MLP channels or heads needs the model's configuration", m.Path)
	}
	c := *m.Config
	j := &Job{opts: opts, unitList: units, m: m, cfg: c, ops: map[string]*op{}}
	switch c.ModelType {
	case "llama", "mistral", "qwen2":
		j.family = "llama"
	case "gpt2":
		j.family = "gpt2"
	default:
		return nil, invalidf("model_type %q: removing MLP channels or heads is implemented for the llama family (llama, mistral, qwen2) and gpt2", c.ModelType)
	}
	j.inter, j.heads, j.kv = c.IntermediateSize, c.NumHeads, c.NumKVHeads
	j.interAfter, j.headsAfter, j.kvAfter = j.inter, j.heads, j.kv
	for _, u := range units {
		switch u {
		case MLP:
			r := roundHalfEven(opts.Sparsity, j.inter)
			if r >= j.inter {
				return nil, invalidf("sparsity %g would remove all %d MLP channels of every block", opts.Sparsity, j.inter)
			}
			j.interAfter = j.inter - r
		case Heads, QHeads:
			if j.family == "gpt2" {
				return nil, invalidf("gpt2 takes its head size from n_embd/n_head, so its config.json cannot describe fewer heads of the same size: " +
					"remove heads of llama-family models only (gpt2 takes --structured mlp)")
			}
			if u == QHeads {
				G := j.heads / j.kv
				r := roundHalfEven(opts.Sparsity, G)
				if r >= G {
					return nil, invalidf("sparsity %g would remove all %d query heads of every key/value group", opts.Sparsity, G)
				}
				j.headsAfter = j.kv * (G - r)
				continue
			}
			r := roundHalfEven(opts.Sparsity, j.kv)
			if r >= j.kv {
				return nil, invalidf("sparsity %g would remove all %d key/value groups of every block (qheads removes query heads within each group)", opts.Sparsity, j.kv)
			}
			j.kvAfter = j.kv - r
			j.headsAfter = j.kvAfter * (j.heads / j.kv)
		default:
			return nil, invalidf("unknown unit %q", u)
		}
	}
	if err := j.planBlocks(); err != nil {
		return nil, err
	}
	return j, nil
}

// planBlocks finds every block's coupled tensors, checks their shapes and
// dtypes against config.json and plans the rewrites.
func (j *Job) planBlocks() error {
	m, c := j.m, j.cfg
	has := func(name string) bool { _, ok := m.Tensor(name); return ok }
	D, I, hd := int64(c.HiddenSize), int64(j.inter), int64(c.HeadDim)
	prefix := "model."
	if j.family == "gpt2" {
		prefix = "transformer."
	}
	embed := map[string]string{"llama": "embed_tokens.weight", "gpt2": "wte.weight"}[j.family]
	if !has(prefix+embed) && has(embed) {
		prefix = ""
	}
	doMLP, doHeads, doQ := slices.Contains(j.unitList, MLP), slices.Contains(j.unitList, Heads), slices.Contains(j.unitList, QHeads)
	j.blocks = make([]block, c.NumLayers)
	// add plans a rewrite of name, checking its shape.
	add := func(name string, axis, kind int, drop func() []bool, want ...int64) error {
		info, ok := m.Tensor(name)
		if !ok {
			return fmt.Errorf("%s: %w: tensor %q is missing", m.Path, checkpoint.ErrFormat, name)
		}
		if !info.Shape.Equal(tensor.Shape(want)) {
			return fmt.Errorf("%s: %w: tensor %q has shape %v, want %v from config.json", m.Path, checkpoint.ErrFormat, name, []int64(info.Shape), want)
		}
		if !info.DType.IsFloat() {
			return fmt.Errorf("%s: %w: tensor %q has dtype %s, want a floating-point type", m.Path, checkpoint.ErrUnsupported, name, info.DType)
		}
		j.ops[name] = &op{name: name, axis: axis, kind: kind, drop: drop, info: info}
		return nil
	}
	for l := range j.blocks {
		b := &j.blocks[l]
		var errs []error
		if j.family == "llama" {
			lp := fmt.Sprintf("%slayers.%d.", prefix, l)
			if doMLP {
				drop := func() []bool { return b.dropMLP }
				b.mlpIn = []string{lp + "mlp.gate_proj.weight", lp + "mlp.up_proj.weight"}
				b.mlpOut = lp + "mlp.down_proj.weight"
				errs = append(errs, add(b.mlpIn[0], 0, kindMLP, drop, I, D), add(b.mlpIn[1], 0, kindMLP, drop, I, D), add(b.mlpOut, 1, kindMLP, drop, D, I))
				for _, bn := range []string{lp + "mlp.gate_proj.bias", lp + "mlp.up_proj.bias"} {
					if has(bn) {
						errs = append(errs, add(bn, 0, kindMLP, drop, I))
					}
				}
			}
			if doHeads || doQ {
				H, KV := int64(j.heads), int64(j.kv)
				a := lp + "self_attn."
				b.q, b.o = a+"q_proj.weight", a+"o_proj.weight"
				dq, dkv := func() []bool { return b.dropQ }, func() []bool { return b.dropKV }
				errs = append(errs, add(b.q, 0, kindQ, dq, H*hd, D), add(b.o, 1, kindQ, dq, D, H*hd))
				if doHeads {
					b.k, b.v = a+"k_proj.weight", a+"v_proj.weight"
					errs = append(errs, add(b.k, 0, kindKV, dkv, KV*hd, D), add(b.v, 0, kindKV, dkv, KV*hd, D))
				}
				for i, bn := range []string{a + "q_proj.bias", a + "k_proj.bias", a + "v_proj.bias"} {
					if !has(bn) || (i > 0 && !doHeads) {
						continue
					}
					if i == 0 {
						errs = append(errs, add(bn, 0, kindQ, dq, H*hd))
					} else {
						errs = append(errs, add(bn, 0, kindKV, dkv, KV*hd))
					}
				}
			}
		} else if doMLP {
			lp := fmt.Sprintf("%sh.%d.", prefix, l)
			drop := func() []bool { return b.dropMLP }
			b.mlpIn = []string{lp + "mlp.c_fc.weight"}
			b.mlpOut = lp + "mlp.c_proj.weight"
			errs = append(errs, add(b.mlpIn[0], 1, kindMLP, drop, D, I), add(lp+"mlp.c_fc.bias", 0, kindMLP, drop, I), add(b.mlpOut, 0, kindMLP, drop, I, D))
		}
		if err := errors.Join(errs...); err != nil {
			return err
		}
	}
	for _, o := range j.ops {
		o.shape = o.info.Shape.Clone()
		if !j.opts.Remove {
			continue
		}
		switch o.kind {
		case kindMLP:
			o.shape[o.axis] = int64(j.interAfter)
		case kindQ:
			o.shape[o.axis] = int64(j.headsAfter) * hd
		case kindKV:
			o.shape[o.axis] = int64(j.kvAfter) * hd
		}
		if _, err := o.shape.Bytes(o.info.DType); err != nil {
			return fmt.Errorf("tensor %q: %w", o.name, err)
		}
	}
	return nil
}

// Close releases the checkpoint when Plan opened it.
func (j *Job) Close() error {
	if j.own && j.m != nil {
		return j.m.Close()
	}
	return nil
}

// InputDir is the directory of the checkpoint's files.
func (j *Job) InputDir() string { return j.m.Dir }

// Describe names the job as the manifest does: "structured mlp 25%
// (removed)" or "(zeroed, shapes kept)".
func (j *Job) Describe() string {
	how := "zeroed, shapes kept"
	if j.opts.Remove {
		how = "removed"
	}
	by := ""
	if j.opts.Calib != nil {
		by = " by activations"
	}
	return fmt.Sprintf("structured %s %g%%%s (%s)", j.units(), 100*j.opts.Sparsity, by, how)
}

// scoreName describes the importance score in the manifest.
func (j *Job) scoreName() string {
	if j.opts.Calib != nil {
		return "activations (wanda): sum over the unit's input columns of the reading projection of ‖x_c‖₂·‖W[:,c]‖₂"
	}
	return "sum of the L1 norms of each unit's rows and columns in the coupled weights"
}

// units names the units as the flag does: "mlp", "heads", "heads,mlp".
func (j *Job) units() string {
	var us []string
	for _, u := range j.unitList {
		us = append(us, string(u))
	}
	return strings.Join(us, ",")
}

// Sizes are the per-block unit counts before and after.
type Sizes struct {
	Inter, InterAfter int // MLP channels
	Heads, HeadsAfter int // query heads
	KV, KVAfter       int // key/value heads
}

// Sizes returns the per-block unit counts before and after the job (the
// counts that remain nonzero when zeroing).
func (j *Job) Sizes() Sizes {
	return Sizes{j.inter, j.interAfter, j.heads, j.headsAfter, j.kv, j.kvAfter}
}

// Replace has Execute store tensor name as parts instead of the tensor (a
// later stage's encoding of it, such as a sparse autoencoder's); the tensor
// must not be one the job rewrites. Call before Execute.
func (j *Job) Replace(name string, parts []safetensors.Entry, encoding string, bytes int64, meta map[string]string) error {
	if _, ok := j.m.Tensor(name); !ok {
		return invalidf("tensor %q: no such tensor in %s", name, j.m.Path)
	}
	if j.ops[name] != nil {
		return invalidf("tensor %q is pruned by %s and cannot also be replaced", name, j.Describe())
	}
	j.replaced = append(j.replaced, replacement{name, parts, encoding, bytes, meta})
	return nil
}

// l1 adds to score[u] the L1 norm of unit u's slice of tensor name: rows
// (axis 0) or columns (axis 1) of a [rows, cols] tensor, span rows or
// columns per unit.
func (j *Job) l1(name string, axis, span int, score []float64) error {
	w, err := j.m.Float32(name)
	if err != nil {
		return err
	}
	info, _ := j.m.Tensor(name)
	cols := int(info.Shape[1])
	for i, x := range w {
		if x != x {
			return fmt.Errorf("%s: %w: tensor %q has a NaN at index %d", info.File, ErrInvalid, name, i)
		}
		idx := i / cols
		if axis == 1 {
			idx = i % cols
		}
		score[idx/span] += math.Abs(float64(x))
	}
	return nil
}

// lowest returns a mask of the r units with the lowest score, ties to the
// lower index.
func lowest(score []float64, r int) []bool {
	idx := make([]int, len(score))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int { return cmp.Compare(score[a], score[b]) })
	drop := make([]bool, len(score))
	for _, i := range idx[:r] {
		drop[i] = true
	}
	return drop
}

// expand repeats every entry of mask n times.
func expand(mask []bool, n int) []bool {
	out := make([]bool, 0, len(mask)*n)
	for _, d := range mask {
		for range n {
			out = append(out, d)
		}
	}
	return out
}

// selectUnits scores every block's units and sets the drop masks.
func (j *Job) selectUnits(ctx context.Context) error {
	if j.opts.Calib != nil {
		if err := j.activations(ctx); err != nil {
			return err
		}
	}
	st := j.opts.Progress.Start("score", int64(len(j.blocks)), "blocks")
	hd, G := j.cfg.HeadDim, j.heads/max(j.kv, 1)
	for l := range j.blocks {
		if err := ctx.Err(); err != nil {
			return err
		}
		b := &j.blocks[l]
		if j.act != nil {
			if err := j.selectByActivations(l, b); err != nil {
				return err
			}
			st.Add(1)
			continue
		}
		if b.mlpOut != "" {
			score := make([]float64, j.inter)
			inAxis, outAxis := 0, 1 // llama: rows of gate/up, columns of down
			if j.family == "gpt2" {
				inAxis, outAxis = 1, 0
			}
			for _, n := range b.mlpIn {
				if err := j.l1(n, inAxis, 1, score); err != nil {
					return err
				}
			}
			if err := j.l1(b.mlpOut, outAxis, 1, score); err != nil {
				return err
			}
			b.dropMLP = lowest(score, j.inter-j.interAfter)
		}
		if b.q != "" && b.k == "" { // query heads within every group
			score := make([]float64, j.heads)
			for _, s := range []struct {
				name string
				axis int
			}{{b.q, 0}, {b.o, 1}} {
				if err := j.l1(s.name, s.axis, hd, score); err != nil {
					return err
				}
			}
			var heads []bool
			for g := range j.kv {
				heads = append(heads, lowest(score[g*G:(g+1)*G], G-j.headsAfter/j.kv)...)
			}
			b.dropQ = expand(heads, hd)
		} else if b.q != "" {
			score := make([]float64, j.kv)
			for _, s := range []struct {
				name       string
				axis, span int
			}{{b.q, 0, G * hd}, {b.k, 0, hd}, {b.v, 0, hd}, {b.o, 1, G * hd}} {
				if err := j.l1(s.name, s.axis, s.span, score); err != nil {
					return err
				}
			}
			groups := lowest(score, j.kv-j.kvAfter)
			b.dropKV = expand(groups, hd)
			b.dropQ = expand(groups, G*hd)
		}
		st.Add(1)
	}
	st.Finish("")
	return nil
}

// selectByActivations sets block l's drop masks from the activation
// scores (Options.Calib).
func (j *Job) selectByActivations(l int, b *block) error {
	hd, G := j.cfg.HeadDim, j.heads/max(j.kv, 1)
	// wanda returns Σ_c ‖x_c‖₂·‖W[:,c]‖₂ per unit of span input columns
	// of the projection name, whose input column c is its column (axis 1)
	// or its row (axis 0, gpt2's Conv1D).
	wanda := func(name string, axis, span int, ss []float64) ([]float64, error) {
		w, err := j.m.Float32(name)
		if err != nil {
			return nil, err
		}
		info, _ := j.m.Tensor(name)
		cols := int(info.Shape[1])
		col := make([]float64, len(ss))
		for i, x := range w {
			c := i % cols
			if axis == 0 {
				c = i / cols
			}
			col[c] += float64(x) * float64(x)
		}
		out := make([]float64, len(ss)/span)
		for c := range col {
			out[c/span] += math.Sqrt(col[c]) * math.Sqrt(ss[c])
		}
		return out, nil
	}
	if b.mlpOut != "" {
		axis := 1
		if j.family == "gpt2" {
			axis = 0
		}
		score, err := wanda(b.mlpOut, axis, 1, j.act[l][1])
		if err != nil {
			return err
		}
		b.dropMLP = lowest(score, j.inter-j.interAfter)
	}
	if b.q == "" {
		return nil
	}
	heads, err := wanda(b.o, 1, hd, j.act[l][0])
	if err != nil {
		return err
	}
	if b.k == "" { // query heads within every group
		var drop []bool
		for g := range j.kv {
			drop = append(drop, lowest(heads[g*G:(g+1)*G], G-j.headsAfter/j.kv)...)
		}
		b.dropQ = expand(drop, hd)
		return nil
	}
	groups := make([]float64, j.kv)
	for h, v := range heads {
		groups[h/G] += v
	}
	drop := lowest(groups, j.kv-j.kvAfter)
	b.dropKV, b.dropQ = expand(drop, hd), expand(drop, G*hd)
	return nil
}

// activations runs the dense model over the calibration windows block by
// block and keeps each block's sums of squares of the o_proj and
// down_proj input columns.
func (j *Job) activations(ctx context.Context) error {
	c := *j.opts.Calib
	wins := c.Windows
	if wins == nil {
		var err error
		if wins, err = sparsify.CalibrationWindows(ctx, j.m.Dir, c, j.opts.Threads); err != nil {
			return err
		}
	}
	lm, err := model.Load(j.m, model.Options{Threads: j.opts.Threads, Stream: "on", Sparse: "off"})
	if err != nil {
		return err
	}
	defer lm.Close()
	blocks, err := lm.NewBlocks(wins, 0)
	if err != nil {
		return err
	}
	st := j.opts.Progress.Start("calibrate", int64(lm.Layers()), "blocks")
	j.act = make([][2][]float64, lm.Layers())
	for l := range j.act {
		weights := map[string][]float32{}
		for _, p := range lm.Projections(l) {
			if weights[p.Name], err = j.m.Float32(p.Name); err != nil {
				return err
			}
		}
		ss := &j.act[l]
		err := blocks.Run(ctx, weights, func(g int, in []float32, rows, k, ld int) {
			if g != 1 && g != 3 {
				return
			}
			i := g / 2 // o_proj input 0, down_proj input 1
			if ss[i] == nil {
				ss[i] = make([]float64, k)
			}
			for r := range rows {
				for c, x := range in[r*ld : r*ld+k] {
					ss[i][c] += float64(x) * float64(x)
				}
			}
		})
		if err != nil {
			return err
		}
		blocks.Advance()
		st.Add(1)
	}
	st.Finish("")
	return nil
}

// rewrite returns the tensor's bytes with the dropped rows or columns
// removed (Remove) or zeroed, and the count of nonzero values written.
func (j *Job) rewrite(o *op, buf []byte) ([]byte, []byte, int64, error) {
	raw, err := j.m.ReadInto(o.name, buf)
	if err != nil {
		return nil, buf, 0, err
	}
	es := o.info.DType.Size()
	rows, cols := o.info.Shape[0], int64(1)
	if len(o.info.Shape) == 2 {
		cols = o.info.Shape[1]
	}
	drop := o.drop()
	var out []byte
	if j.opts.Remove {
		size, _ := o.shape.Bytes(o.info.DType) // checked by Plan
		out = make([]byte, 0, size)
		for r := range rows {
			if o.axis == 0 && drop[r] {
				continue
			}
			row := raw[r*cols*int64(es) : (r+1)*cols*int64(es)]
			if o.axis == 0 {
				out = append(out, row...)
				continue
			}
			for c := range cols {
				if !drop[c] {
					out = append(out, row[c*int64(es):(c+1)*int64(es)]...)
				}
			}
		}
	} else {
		out = raw
		for r := range rows {
			for c := range cols {
				if (o.axis == 0 && drop[r]) || (o.axis == 1 && drop[c]) {
					clear(out[(r*cols+c)*int64(es) : (r*cols+c+1)*int64(es)])
				}
			}
		}
	}
	var st tensor.Stats
	if err := st.Add(o.info.DType, out); err != nil {
		return nil, buf, 0, fmt.Errorf("tensor %q: %w", o.name, err)
	}
	n := int64(len(out) / es)
	return out, raw, n - st.Zeros, nil
}

// Execute scores the units, writes the pruned checkpoint into out (the
// tensors, config.json and the other configuration and tokenizer files,
// and lmsparse.json) and returns the manifest. The caller commits or
// aborts out.
func (j *Job) Execute(ctx context.Context, out *checkpoint.Output) (*manifest.Manifest, error) {
	if j.executed {
		return nil, fmt.Errorf("shrink: the job was already executed")
	}
	j.executed = true
	if err := j.selectUnits(ctx); err != nil {
		return nil, err
	}
	m := j.m
	var buf []byte
	var entries []safetensors.Entry
	st := j.opts.Progress.Start("write", int64(len(m.Names())), "tensors")
	for _, name := range m.Names() {
		o := j.ops[name]
		if o == nil {
			e, err := m.Entry(name)
			if err != nil {
				return nil, err
			}
			w := e.Write
			e.Write = func(wr io.Writer) error { st.Add(1); return w(wr) }
			entries = append(entries, e)
			continue
		}
		size, _ := o.shape.Bytes(o.info.DType)
		entries = append(entries, safetensors.Entry{Name: name, DType: o.info.DType, Shape: o.shape.Clone(), Size: size,
			Write: func(w io.Writer) error {
				if err := ctx.Err(); err != nil {
					return err
				}
				data, b, nz, err := j.rewrite(o, buf)
				if err != nil {
					return err
				}
				buf, o.nonzero = b, nz
				st.Add(1)
				_, err = w.Write(data)
				return err
			}})
	}
	meta := map[string]string{}
	for k, v := range m.Metadata() {
		if k != sparse.MetadataKey && k != sparse.SAEMetadataKey {
			meta[k] = v
		}
	}
	if len(meta) == 0 {
		meta["format"] = "pt"
	}
	for _, r := range j.replaced {
		entries = safetensors.Replace(entries, r.name, r.parts)
		for k, v := range r.meta {
			meta[k] = v
		}
	}
	if _, err := out.WriteTensors(entries, checkpoint.TensorOptions{MaxShardSize: j.opts.MaxShardSize, Metadata: meta}); err != nil {
		return nil, err
	}
	st.Finish("")
	cfg, changes, err := j.config()
	if err != nil {
		return nil, err
	}
	if err := out.CopyAux(m.Dir, cfg); err != nil {
		return nil, err
	}
	man, err := j.manifest(changes)
	if err != nil {
		return nil, err
	}
	js, err := man.JSON()
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile(manifest.File, js); err != nil {
		return nil, err
	}
	return man, nil
}

// config returns the output's config.json and the changed keys.
func (j *Job) config() ([]byte, map[string][2]int, error) {
	orig, err := checkpoint.ReadConfigBytes(j.m)
	if err != nil {
		return nil, nil, err
	}
	set := map[string][2]int{}
	if j.opts.Remove && j.interAfter != j.inter {
		key := "intermediate_size"
		if j.family == "gpt2" {
			key = "n_inner"
		}
		set[key] = [2]int{j.inter, j.interAfter}
	}
	if j.opts.Remove && j.headsAfter != j.heads {
		// num_key_value_heads too: without it transformers takes it equal
		// to num_attention_heads.
		set["num_attention_heads"] = [2]int{j.heads, j.headsAfter}
		set["num_key_value_heads"] = [2]int{j.kv, j.kvAfter}
		set["head_dim"] = [2]int{j.cfg.HeadDim, j.cfg.HeadDim}
	}
	cfg, err := EditConfig(orig, set)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", j.m.Dir, err)
	}
	return cfg, set, nil
}

// Removed returns, after Execute, the indices of the units pruned in each
// block: MLP channels, key/value groups, and query heads (those of the
// removed groups, or those removed alone); nil for a unit not pruned.
func (j *Job) Removed() (mlp, groups, qheads [][]int) {
	idx := func(mask []bool, span int) []int {
		out := []int{}
		for i := 0; i < len(mask); i += span {
			if mask[i] {
				out = append(out, i/span)
			}
		}
		return out
	}
	for _, b := range j.blocks {
		if b.dropMLP != nil {
			mlp = append(mlp, idx(b.dropMLP, 1))
		}
		if b.dropKV != nil {
			groups = append(groups, idx(b.dropKV, j.cfg.HeadDim))
		}
		if b.dropQ != nil {
			qheads = append(qheads, idx(b.dropQ, j.cfg.HeadDim))
		}
	}
	return mlp, groups, qheads
}

// manifest builds lmsparse.json once every tensor is written.
func (j *Job) manifest(changes map[string][2]int) (*manifest.Manifest, error) {
	m := j.m
	rep := manifest.New(j.opts.Command)
	rep.Method = j.Describe()
	rep.Flags = j.opts.Flags
	if rep.Flags == nil {
		rep.Flags = map[string]any{"structured": j.units(), "sparsity": j.opts.Sparsity, "shrink": j.opts.Remove,
			"max_shard_size": j.opts.MaxShardSize}
	}
	inputs, err := manifest.HashFiles(m.Dir, m.Files)
	if err != nil {
		return nil, err
	}
	rep.Inputs = inputs
	buf := make([]byte, 1<<20)
	var prunedParams, prunedNZ int64
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		params, _ := info.Shape.Elems()
		row := manifest.Tensor{Name: name, DType: string(info.DType), Shape: append([]int64{}, info.Shape...),
			Parameters: params, BytesBefore: info.Size, BytesAfter: info.Size, Encoding: string(sparse.Dense)}
		if o := j.ops[name]; o != nil {
			nz := o.nonzero
			row.Pruned, row.Nonzeros = true, &nz
			row.BytesAfter, _ = o.shape.Bytes(o.info.DType)
			if j.opts.Remove {
				row.ShapeAfter = append([]int64{}, o.shape...)
			}
			prunedParams += params
			prunedNZ += nz
		} else if info.DType.Known() {
			s, err := m.Stats(name, buf)
			if err != nil {
				return nil, err
			}
			nz := params - s.Zeros
			row.Nonzeros = &nz
		}
		if row.Nonzeros != nil && params > 0 {
			row.Sparsity = 1 - float64(*row.Nonzeros)/float64(params)
		}
		for _, r := range j.replaced {
			if r.name == name {
				row.Encoding, row.BytesAfter = r.encoding, r.bytes
			}
		}
		rep.Add(row)
	}
	rep.Totals.PrunedTensors = len(j.ops)
	if prunedParams > 0 {
		rep.Totals.TargetSparsity = manifest.Round(1-float64(prunedNZ)/float64(prunedParams), 6)
	}
	rep.Finish(true)
	mlp, groups, qheads := j.Removed()
	rep.Shrink = &manifest.Shrink{Units: j.units(), Sparsity: j.opts.Sparsity, Removed: j.opts.Remove,
		Score: j.scoreName(), MLPRemoved: mlp, GroupsRemoved: groups, QHeadsRemoved: qheads}
	if len(changes) > 0 {
		rep.Shrink.Config = changes
	}
	return rep, nil
}
