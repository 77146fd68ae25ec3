package compress

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/internal/safeio"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/report/html"
)

// PartialSchema is the schema of a [Partial] in JSON.
const PartialSchema = "lmsparse.sweep-partial/v1"

// MaxPartialBytes is the largest partial file [ReadPartial] reads (the
// bound of a report.json).
const MaxPartialBytes = 64 << 20

// MaxShards bounds the N of a sharded sweep.
const MaxShards = 10000

// ErrPartial reports sweep partial files that cannot be merged: not a
// partial file, an inconsistent one, parts of different runs, a missing or
// duplicated shard. It wraps [ErrInvalid] too.
var ErrPartial = errors.New("invalid sweep partial")

func partialErrorf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...), cause: ErrPartial}
}

// RunID identifies a sharded sweep: every shard of one run has the same
// RunID, and [Merge] refuses shards whose RunIDs differ.
type RunID struct {
	Model  string `json:"model"`  // the model's path
	Output string `json:"output"` // OUT, which the shard with unit 0 writes
	// Inputs are the model's files with their sizes and sha256 (as in
	// lmsparse.json).
	Inputs []manifest.Input `json:"inputs"`
	// Texts are the eval text and, when the run calibrates on a file, the
	// calibration text, with their sizes and sha256 (File is the path).
	Texts []manifest.Input `json:"texts"`
	// Recipe is the normalized recipe: every setting of the run.
	Recipe       *Recipe `json:"recipe"`
	MaxShardSize int64   `json:"max_shard_size"` // Options.MaxShardSize as it runs
	Units        int     `json:"units"`          // 1 + sweep sparsities × methods
	Shards       int     `json:"shards"`         // N
	// Tool is the lmsparse build (manifest.Tool): another build may
	// compute other bits.
	Tool string `json:"tool"`
}

// A Partial is what one shard of a sharded sweep did ([Plan.RunShard]):
// its contiguous range of the run's work units, the report of the main
// pass when it holds unit 0, and its sweep points. Its JSON is the partial
// file, schema [PartialSchema]; [Merge] combines the partials of every
// shard into the report of the one-machine run.
type Partial struct {
	Schema string `json:"schema"` // PartialSchema
	Shard  int    `json:"shard"`  // i, 0 ≤ i < Shards
	RunID
	// FirstUnit and EndUnit are the shard's units [FirstUnit, EndUnit),
	// model.Shard{Shard, Shards}.Range(Units).
	FirstUnit int `json:"first_unit"`
	EndUnit   int `json:"end_unit"`
	// Main is the report of the main pass (unit 0) without the sweep,
	// timings, peak RSS and recipe (RunID has it); nil in the other shards.
	Main *report.Report `json:"main,omitempty"`
	// Points are the sweep points of the shard's units, in unit order.
	Points []report.Point `json:"points"`
	// Timings are the shard's stages, "sweep" and "total" included; PeakRSS
	// its peak resident memory.
	Timings []report.Timing `json:"timings"`
	PeakRSS int64           `json:"peak_rss_bytes"`
}

// String summarizes the shard in one line: "shard 0/3: units [0, 3) of 7:
// the main pass (OUT written), 2 sweep point(s)".
func (p *Partial) String() string {
	s := fmt.Sprintf("shard %d/%d: units [%d, %d) of %d: ", p.Shard, p.Shards, p.FirstUnit, p.EndUnit, p.Units)
	if p.Main != nil {
		s += "the main pass (" + p.Output + " written), "
	}
	return s + strconv.Itoa(len(p.Points)) + " sweep point(s)"
}

// checkShard checks the plan's Options.Shard against the normalized
// recipe: a sharded run needs a sweep to split, and find-sparsity does not
// split.
func (p *Plan) checkShard() error {
	sh := p.opts.Shard
	switch {
	case sh.N == 0 && sh.I == 0:
		return nil
	case sh.Valid() != nil || sh.N > MaxShards:
		return invalidf("shard %d/%d: want 0 ≤ i < n ≤ %d", sh.I, sh.N, MaxShards)
	case p.opts.FindSparsity:
		return invalidf("shard %d/%d: find-sparsity bisects one point after the other and does not split; give a sweep instead", sh.I, sh.N)
	case len(p.r.Sweep) == 0 || p.r.Eval == nil || p.r.Prune == nil:
		return invalidf("shard %d/%d: a sharded run splits a sweep: give a sweep and an eval stage", sh.I, sh.N)
	}
	return nil
}

// RunShard runs shard Options.Shard of the run: its contiguous range of
// the work units (model.Shard.Range of 1 + sweep sparsities × methods;
// unit 0 is the main pass, the others the sweep's points in the order of
// report.Report.Sweep). The shard holding unit 0 writes and commits the
// output — the checkpoint and lmsparse.json, not the reports, which
// [MergeInto] writes — as Run does; the others write nothing there. A
// failing gate is no error here: the merge reports it. It writes the
// shard's [Partial] to the file partial ([WritePartial]) and returns it.
func (p *Plan) RunShard(ctx context.Context, partial string) (*Partial, error) {
	sh := p.opts.Shard
	if sh.N == 0 {
		return nil, fmt.Errorf("compress: RunShard needs Options.Shard")
	}
	first, end := sh.Range(p.units())
	rep, err := p.run(ctx, first, end)
	if err != nil {
		return nil, err
	}
	part := &Partial{Schema: PartialSchema, Shard: sh.I, FirstUnit: first, EndUnit: end, Points: rep.Sweep,
		Timings: rep.Timings, PeakRSS: rep.PeakRSS}
	if first == 0 && end > 0 {
		main := *rep
		main.Recipe, main.Sweep, main.Best, main.Timings, main.PeakRSS = nil, nil, nil, nil, 0
		part.Main = &main
	}
	if part.RunID, err = p.runID(); err != nil {
		return nil, err
	}
	return part, WritePartial(partial, part)
}

// runID is the identity of the plan's sharded run. The model's files are
// hashed by the prunes that read them; a shard without any hashes them.
func (p *Plan) runID() (RunID, error) {
	id := RunID{Model: p.model, Output: p.out, Inputs: p.inputs, Recipe: p.r, MaxShardSize: p.maxShard, Units: p.units(),
		Shards: p.opts.Shard.N, Tool: manifest.Tool()}
	var err error
	if id.Inputs == nil {
		if id.Inputs, err = manifest.HashFiles(p.m.Dir, p.m.Files); err != nil {
			return id, err
		}
	}
	texts := []string{p.text}
	if c := p.r.calibPath(); c != "" && (calibratedMethod(p.r.Prune.Method) || p.r.sweepCalibrated()) {
		texts = append(texts, c)
	}
	for _, path := range texts {
		in, err := hashFile(path)
		if err != nil {
			return id, err
		}
		id.Texts = append(id.Texts, in)
	}
	return id, nil
}

// hashFile returns the size and sha256 of the file at path.
func hashFile(path string) (manifest.Input, error) {
	f, _, err := safeio.Open(path)
	if err != nil {
		return manifest.Input{}, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return manifest.Input{}, fmt.Errorf("%s: %w", path, err)
	}
	return manifest.Input{File: path, Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// WritePartial writes p as JSON (one line) to path, atomically.
func WritePartial(path string, p *Partial) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, append(b, '\n'))
}

// ReadPartial reads a partial file — a regular file (package safeio) of
// at most [MaxPartialBytes] — strictly (unknown fields are errors) and
// checks that it is whole; every refusal wraps [ErrPartial] and names the
// file.
func ReadPartial(path string) (*Partial, error) {
	data, err := safeio.ReadFile(path, MaxPartialBytes)
	if errors.Is(err, safeio.ErrInput) {
		return nil, partialErrorf("%v", err)
	}
	if err != nil {
		return nil, err
	}
	var p Partial
	if other, err := safeio.DecodeStrict(data, &p, PartialSchema); other != nil {
		return nil, partialErrorf("%s is not a sweep partial file (schema %q, want %q)", path, *other, PartialSchema)
	} else if err != nil {
		return nil, partialErrorf("%s: not a valid sweep partial file: %v", path, err)
	}
	if err := p.check(); err != nil {
		return nil, partialErrorf("%s: %v", path, err)
	}
	return &p, nil
}

// check verifies that p is consistent in itself: its units are those of
// shard Shard of Shards, and its points those of its units.
func (p *Partial) check() error {
	if p.Schema != PartialSchema {
		return fmt.Errorf("schema %q, want %q: not a sweep partial file", p.Schema, PartialSchema)
	}
	r := p.Recipe
	switch {
	case p.Shards < 1 || p.Shards > MaxShards || p.Shard < 0 || p.Shard >= p.Shards:
		return fmt.Errorf("shard %d/%d: want 0 ≤ i < n ≤ %d", p.Shard, p.Shards, MaxShards)
	case r == nil || r.Prune == nil || r.Eval == nil || len(r.Sweep) == 0:
		return fmt.Errorf("the recipe has no prune stage, eval stage or sweep")
	case p.Units != r.units():
		return fmt.Errorf("units %d, but the recipe's sweep makes %d", p.Units, r.units())
	}
	first, end := model.Shard{I: p.Shard, N: p.Shards}.Range(p.Units)
	main := first == 0 && end > 0
	if p.FirstUnit != first || p.EndUnit != end || len(p.Points) != max(end-max(first, 1), 0) || (p.Main != nil) != main {
		return fmt.Errorf("shard %d/%d of %d units holds units [%d, %d), but the file has [%d, %d), %d points and main pass %v",
			p.Shard, p.Shards, p.Units, first, end, p.FirstUnit, p.EndUnit, len(p.Points), p.Main != nil)
	}
	for i, pt := range p.Points {
		if s, method := r.unit(max(first, 1) + i); pt.Sparsity != s || pt.Method != method {
			return fmt.Errorf("point %d is sparsity %g (%s), but its unit is sparsity %g (%s)", i, pt.Sparsity, pt.Method, s, method)
		}
	}
	if main && (p.Main.Schema != report.Schema || len(p.Main.Tensors) == 0) {
		return fmt.Errorf("the main pass's report has schema %q and %d tensors", p.Main.Schema, len(p.Main.Tensors))
	}
	return nil
}

// fields lists the RunID by name, to name a difference: the recipe by
// its keys (recipe.prune.sparsity), the files by name.
func (id RunID) fields() ([][2]string, error) {
	out := [][2]string{{"shards", strconv.Itoa(id.Shards)}, {"units", strconv.Itoa(id.Units)}, {"model", id.Model},
		{"output", id.Output}, {"tool", id.Tool}, {"max_shard_size", strconv.FormatInt(id.MaxShardSize, 10)}}
	for _, in := range id.Inputs {
		out = append(out, [2]string{"model file " + in.File, fmt.Sprintf("%d bytes, sha256 %s", in.Bytes, in.SHA256)})
	}
	for i, in := range id.Texts {
		out = append(out, [2]string{"text " + strconv.Itoa(i+1), fmt.Sprintf("%s, %d bytes, sha256 %s", in.File, in.Bytes, in.SHA256)})
	}
	b, err := json.Marshal(id.Recipe)
	if err != nil {
		return nil, err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return flatten("recipe", v, out), nil
}

// flatten appends the leaves of JSON value v by dotted key.
func flatten(key string, v any, out [][2]string) [][2]string {
	if m, ok := v.(map[string]any); ok {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			out = flatten(key+"."+k, m[k], out)
		}
		return out
	}
	b, _ := json.Marshal(v)
	return append(out, [2]string{key, string(b)})
}

// differ names the first field in which a and b differ ("" when none).
func differ(a, b RunID) (string, error) {
	fa, err := a.fields()
	if err != nil {
		return "", err
	}
	fb, err := b.fields()
	if err != nil {
		return "", err
	}
	mb := map[string]string{}
	for _, f := range fb {
		mb[f[0]] = f[1]
	}
	for _, f := range fa {
		if v, ok := mb[f[0]]; !ok || v != f[1] {
			if !ok {
				v = "(none)"
			}
			return fmt.Sprintf("%s %q vs %q", f[0], f[1], v), nil
		}
		delete(mb, f[0])
	}
	for _, f := range fb {
		if _, ok := mb[f[0]]; ok {
			return fmt.Sprintf("%s %q vs %q", f[0], "(none)", f[1]), nil
		}
	}
	return "", nil
}

// Merge combines the partials of every shard of one sharded sweep, given
// in any order, into the report.Report of the one-machine run: the main
// pass's report with every shard's points in unit order and the highest
// passing sparsity over all of them, so that its report.json, report.md
// and report.html are the one-machine run's apart from the timings. The
// timings are the main pass's stages, then "sweep" and "total", each the
// sum over the shards (machine time, not wall time); the peak RSS is the
// largest shard's. names label the partials in errors (their files; nil
// numbers them). Partials of different runs (any [RunID] field differs:
// the error names it), a missing or duplicated shard, or an inconsistent
// partial are errors wrapping [ErrPartial].
func Merge(parts []*Partial, names []string) (*report.Report, error) {
	if len(parts) == 0 {
		return nil, partialErrorf("no partial files to merge")
	}
	name := model.PartLabels(names)
	for i, p := range parts {
		if p == nil {
			return nil, partialErrorf("%s: no partial", name(i))
		}
		if err := p.check(); err != nil {
			return nil, partialErrorf("%s: %v", name(i), err)
		}
		if i > 0 {
			d, err := differ(parts[0].RunID, p.RunID)
			if err != nil {
				return nil, err
			}
			if d != "" {
				return nil, partialErrorf("%s and %s are not shards of one run: %s", name(0), name(i), d)
			}
		}
	}
	ordered, err := model.OrderShards(parts, func(p *Partial) int { return p.Shard }, parts[0].Shards, name, nil)
	if err != nil {
		return nil, partialErrorf("%v (got %d partial files)", err, len(parts))
	}
	var (
		rep          report.Report
		mainTimings  []report.Timing
		sweep, total float64
		peak         int64
	)
	for _, p := range ordered {
		if p.Main != nil {
			rep, mainTimings = *p.Main, p.Timings
		}
		rep.Sweep = append(rep.Sweep, p.Points...)
		for _, t := range p.Timings {
			switch t.Stage {
			case "sweep":
				sweep += t.Seconds
			case "total":
				total += t.Seconds
			}
		}
		peak = max(peak, p.PeakRSS)
	}
	id := parts[0].RunID
	rep.Recipe = id.Recipe
	rep.Best = bestPassing(rep.Sweep, id.Recipe.Prune.Method)
	for _, t := range mainTimings {
		if t.Stage != "sweep" && t.Stage != "total" {
			rep.Timings = append(rep.Timings, t)
		}
	}
	rep.Timings = append(rep.Timings, report.Timing{Stage: "sweep", Seconds: manifest.Round(sweep, 3)},
		report.Timing{Stage: "total", Seconds: manifest.Round(total, 3)})
	rep.PeakRSS = peak
	return &rep, nil
}

// MergeFiles reads the partial files at paths with [ReadPartial] and
// merges them with [Merge], naming them by their paths.
func MergeFiles(paths []string) (*report.Report, error) {
	parts := make([]*Partial, len(paths))
	for i, path := range paths {
		p, err := ReadPartial(path)
		if err != nil {
			return nil, err
		}
		parts[i] = p
	}
	return Merge(parts, paths)
}

// MergeInto merges the partial files at paths ([MergeFiles]) and writes
// report.json, report.md and report.html into the directory dir (created
// when missing; each file atomically) — the output the shard with the
// main pass wrote, or any other directory. Like Run, it returns the
// report and, when a gate failed, an error wrapping [ErrGateFailed].
func MergeInto(paths []string, dir string) (*report.Report, error) {
	rep, err := MergeFiles(paths)
	if err != nil {
		return nil, err
	}
	files, err := reportFiles(rep)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	for _, f := range files {
		if err := atomicfile.WriteBytes(filepath.Join(dir, f.name), f.data); err != nil {
			return nil, err
		}
	}
	if failed := rep.FailedGates(); len(failed) > 0 {
		return rep, fmt.Errorf("%w: %s (reports in %s)", ErrGateFailed, strings.Join(failed, ", "), dir)
	}
	return rep, nil
}

// Rerender rewrites report.md and report.html in dir from its report.json
// (after an upgrade of lmsparse, or an edit of report.json, which stays as
// it is) and, when charts is not "", writes each chart as charts/ID.svg.
func Rerender(dir, charts string) (*report.Report, error) {
	rep, err := report.Load(filepath.Join(dir, "report.json"))
	if err != nil {
		return nil, err
	}
	files, err := reportFiles(rep)
	if err != nil {
		return nil, err
	}
	for _, f := range files {
		if f.name == "report.json" {
			continue
		}
		if err := atomicfile.WriteBytes(filepath.Join(dir, f.name), f.data); err != nil {
			return nil, err
		}
	}
	if charts == "" {
		return rep, nil
	}
	cs, err := html.Charts(rep)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(charts, 0o755); err != nil {
		return nil, err
	}
	for _, c := range cs {
		if err := atomicfile.WriteBytes(filepath.Join(charts, c.ID+".svg"), c.SVG); err != nil {
			return nil, err
		}
	}
	return rep, nil
}
