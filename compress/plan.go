package compress

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/lmsparse/lmsparse/arch"
	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/report/html"
	"github.com/lmsparse/lmsparse/saestore"
	"github.com/lmsparse/lmsparse/shrink"
	"github.com/lmsparse/lmsparse/sparsify"
)

// Options control a compress run. The zero value works.
type Options struct {
	// Force allows replacing an output directory that is not empty (see
	// checkpoint.Create).
	Force bool
	// MaxShardSize is the largest output shard in tensor bytes when the
	// recipe's store.max_shard_size is empty; 0 means 5 GB.
	MaxShardSize int64
	// Threads of the forward pass and the autoencoder; 0 means all CPUs.
	Threads int
	// Progress receives every stage's progress; a stage's last event
	// (Final) carries a one-line summary in Detail.
	Progress progress.Func
	// FindSparsity bisects, before the run, to the highest sparsity (to
	// 0.01) of the recipe's method that passes every gate, and runs the
	// recipe at it; the points tried go to the report's sweep.
	FindSparsity bool
	// Shard, when its N is not 0, makes the plan shard I of N of a
	// sharded sweep, run with Plan.RunShard (see "Sharded sweeps" in the
	// package documentation); the zero value is the whole run.
	Shard model.Shard
}

func (o *Options) applyDefaults() {
	if o.Threads <= 0 {
		o.Threads = runtime.NumCPU()
	}
}

// Plan is a checked compress run, to be run once: the model opened, the output location
// accepted, the recipe's stages planned and — with an eval stage — the
// text tokenized and the original model loaded. NewPlan writes nothing;
// Run does the work. Close releases the models.
type Plan struct {
	model, out string
	r          *Recipe
	opts       Options
	maxShard   int64

	m       *checkpoint.Model
	method  prune.Method
	sae     *saestore.Job
	base    model.LM
	harness *eval.Harness
	text    string // the text file read
	textLen int64

	inner   progress.Func    // opts.Progress for the packages a stage drives
	windows [][]int          // calibration windows, shared by the prune stage, the sweep and find-sparsity
	inputs  []manifest.Input // the model's files with their sha256, from the first prune that hashed them

	started time.Time
	timings []report.Timing
	ran     bool
	notes   []string
}

// Notes returns what writing the output did beside it that a user may want
// to know (see checkpoint.Output.Notes), once Run has returned.
func (p *Plan) Notes() []string { return p.notes }

// scratch returns the path of the temporary output of a stage (the sweep's
// points, recovery's intermediate) beside OUT: .OUT.lmsparse-STAGE, named
// after OUT so that runs writing other outputs in the same directory never
// share it (nor its lock).
func (p *Plan) scratch(stage string) string {
	out := filepath.Clean(p.out)
	return filepath.Join(filepath.Dir(out), "."+filepath.Base(out)+".lmsparse-"+stage)
}

// NewPlan checks a run of recipe r on the model at modelPath into the
// directory out: the recipe as a whole, the output location, the prune
// targets and options, the autoencoder's tensor and options, the recover
// stage's training options (planned once on the model), and the eval
// text, tokenizer, windows and the original model. Nothing is written.
// The recipe is normalized (defaults filled in, eval ctx and stride as
// they will run), so it reads as what runs.
func NewPlan(ctx context.Context, modelPath, out string, r *Recipe, opts Options) (*Plan, error) {
	opts.applyDefaults()
	p := &Plan{model: modelPath, out: out, r: r, opts: opts, maxShard: opts.MaxShardSize, started: time.Now()}
	if opts.FindSparsity {
		switch {
		case r.Prune == nil || r.Prune.Pattern != "" || r.Prune.Structured != "":
			return nil, invalidf("find-sparsity searches the sparsity of an unstructured prune stage")
		case r.Gates == nil || r.Eval == nil:
			return nil, invalidf("find-sparsity needs gates and an eval stage to pass")
		case len(r.Sweep) > 0:
			return nil, invalidf("give either a sweep or find-sparsity, not both")
		case r.Prune.Sparsity == nil:
			zero := 0.0
			r.Prune.Sparsity = &zero // found by the search
		}
	}
	if f := opts.Progress; f != nil {
		// The stages' own summaries come from Plan.stage; the packages it
		// drives report progress only.
		p.inner = func(e progress.Event) {
			if e.Final {
				e.Detail = ""
			}
			f(e)
		}
	}
	if err := r.Normalize(); err != nil {
		return nil, err
	}
	if err := p.checkShard(); err != nil {
		return nil, err
	}
	if r.Store.MaxShardSize != "" {
		n, err := checkpoint.ParseSize(r.Store.MaxShardSize)
		if err != nil {
			return nil, r.errorf("store.max_shard_size", "%v", err)
		}
		p.maxShard = n
	}
	m, err := checkpoint.Open(modelPath)
	if err != nil {
		return nil, err
	}
	p.m = m
	ok := false
	defer func() {
		if !ok {
			p.Close()
		}
	}()
	if first, end := opts.Shard.Range(p.units()); first == 0 && end > 0 { // a shard without the main pass writes no OUT
		if err := checkpoint.CheckOutput(out, m.Dir, opts.Force); err != nil {
			return nil, err
		}
	}
	if r.Prune != nil {
		if p.method, err = r.PruneMethod(); err != nil {
			return nil, err
		}
		if r.Units() {
			// Whole MLP channels or heads (package shrink): checked the same way.
			j, err := shrink.PlanCheckpoint(ctx, m, p.shrinkOptions())
			if err != nil {
				return nil, err
			}
			j.Close()
		}
	}
	if r.Prune != nil && !r.Units() {
		// Planning here checks the targets before any work; Run plans again
		// (a sparsify job is used once).
		j, err := sparsify.PlanCheckpoint(ctx, m, p.pruneOptions(nil))
		if err != nil {
			return nil, err
		}
		targets := j.Targets()
		j.Close()
		for _, name := range r.SweepMethods {
			if name == r.Prune.Method || len(r.Sweep) == 0 {
				continue
			}
			// The sweep's other methods are checked the same way.
			j, err := sparsify.PlanCheckpoint(ctx, m, p.methodOptions(algorithm(name), &r.Sweep[0]))
			if err != nil {
				return nil, fmt.Errorf("sweep_methods %s: %w", name, err)
			}
			j.Close()
		}
		if r.Recover != nil && m.Config != nil {
			// Training keeps the zeros of the blocks' 2-D weights only.
			a := arch.Lookup(m.Config.ModelType)
			for _, t := range targets {
				if !a.DefaultTarget(t.Name, t.Shape) {
					return nil, r.errorf("prune.include", "%s is pruned but is not a block weight, whose zeros the recover stage keeps: drop it from prune.include or drop the recover stage", t.Name)
				}
			}
		}
	}
	if s := r.SAE; s != nil {
		so := saestore.Options{Tensor: s.Tensor, Latents: s.Latents, K: s.K, L1: s.L1, Epochs: s.Epochs, Batch: s.Batch,
			LR: s.LR, Seed: s.Seed, Threads: opts.Threads, Progress: p.inner}
		if p.sae, err = saestore.Plan(ctx, m, so); err != nil {
			return nil, err
		}
	}
	if r.Recover != nil {
		if err := p.checkRecover(ctx); err != nil {
			return nil, err
		}
	}
	if r.Eval != nil {
		if err := p.prepareEval(); err != nil {
			return nil, err
		}
		r.Eval.Ctx, r.Eval.Stride = p.harness.Ctx(), p.harness.Stride() // report what runs
	}
	p.stage("load", p.started, "%s: %d tensors", modelPath, len(m.Names()))
	ok = true
	return p, nil
}

// prepareEval reads and tokenizes the text with the original model's
// tokenizer and loads the original model, checking ctx and stride.
func (p *Plan) prepareEval() error {
	e := p.r.Eval
	p.text = p.r.TextPath()
	tok, err := eval.LoadTokenizer(p.model, "")
	if err != nil {
		return err
	}
	text, err := eval.ReadTextTokens(p.text, tok, e.MaxTokens)
	if err != nil {
		return err
	}
	if p.base, err = eval.Open(p.model, model.Options{Threads: p.opts.Threads}); err != nil {
		return err
	}
	p.textLen = int64(len(text.Data))
	p.harness, err = eval.NewHarness(p.base, tok, text, eval.Options{Ctx: e.Ctx, Stride: e.Stride, MaxTokens: e.MaxTokens,
		BaseLabel: p.model, Progress: p.inner})
	return err
}

// Recipe returns the normalized recipe the plan runs.
func (p *Plan) Recipe() *Recipe { return p.r }

// Close releases the models the plan holds.
func (p *Plan) Close() error {
	if p.base != nil {
		if c, ok := p.base.(interface{ Close() error }); ok {
			c.Close()
		}
		p.base = nil
	}
	if p.m != nil {
		p.m.Close()
		p.m = nil
	}
	return nil
}

// shrinkOptions are the options of a prune stage of whole units.
func (p *Plan) shrinkOptions() shrink.Options {
	pr := p.r.Prune
	o := shrink.Options{Units: pr.Structured, Sparsity: *pr.Sparsity, Remove: pr.Shrink, MaxShardSize: p.maxShard,
		Command: "compress", Flags: map[string]any{"recipe": p.r}, Progress: p.inner, Threads: p.opts.Threads}
	if c := pr.Calib; c != nil { // units scored by their activations
		o.Calib = &sparsify.Calibration{Text: p.r.calibPath(), Samples: c.Samples, Len: c.Len, Seed: c.Seed}
	}
	return o
}

// pruneOptions are the sparsify options of the prune stage at the recipe's
// sparsity, or at sparsity s when it is not nil (sweep points: dense, no
// overrides).
func (p *Plan) pruneOptions(s *float64) sparsify.Options {
	return p.methodOptions(p.r.Algorithm(), s)
}

// methodOptions are pruneOptions with algorithm alg in place of the
// prune stage's (the sweep's other methods); the other prune options stay
// the recipe's.
func (p *Plan) methodOptions(alg sparsify.Algorithm, s *float64) sparsify.Options {
	o := sparsify.Options{Method: p.method, Format: sparsify.Format(p.r.Store.Format), MaxShardSize: p.maxShard,
		Command: "compress", Flags: map[string]any{"recipe": p.r}}
	if p.r.Prune == nil {
		o.CopyOnly = true
		return o
	}
	pr := p.r.Prune
	o.Include, o.Exclude = pr.Include, pr.Exclude
	if o.Algorithm = alg; o.Algorithm != sparsify.Magnitude {
		c := pr.Calib
		if c == nil {
			c = &Calib{}
		}
		o.Calib = sparsify.Calibration{Text: p.r.calibPath(), Samples: c.Samples, Len: c.Len, Seed: c.Seed,
			Windows: p.windows, Source: c.Source}
		o.Damp, o.BlockSize, o.Threads = pr.Damp, pr.BlockSize, p.opts.Threads
		if pr.OWL != nil {
			o.OWL = &sparsify.OWL{M: pr.OWL.M, Lambda: pr.OWL.Lambda}
		}
	}
	if s != nil {
		o.Method.Sparsity, o.Format, o.MaxShardSize = *s, sparsify.Dense, 0
	} else {
		o.Overrides, o.Progress = p.r.Prune.Overrides, p.inner
	}
	return o
}

// stage records a finished stage's time and reports its summary.
func (p *Plan) stage(name string, begin time.Time, format string, args ...any) {
	secs := time.Since(begin)
	p.timings = append(p.timings, report.Timing{Stage: name, Seconds: manifest.Round(secs.Seconds(), 3)})
	if p.opts.Progress != nil {
		p.opts.Progress(progress.Event{Stage: name, Final: true, Elapsed: secs, Detail: fmt.Sprintf(format, args...)})
	}
}

// Run compresses the model into the output directory: the checkpoint,
// lmsparse.json, report.json, report.md and report.html appear together
// when it succeeds (or when only a gate fails), and nothing changes under
// the output's name when it fails. With a recover stage the model is
// pruned into a dense intermediate checkpoint in a temporary directory
// beside the output (removed before Run returns), scored, fine-tuned and
// written from there; the sweep and find-sparsity stay one-shot. It
// returns the report; when a gate fails, the error wraps ErrGateFailed and
// the report is complete. The plan of a shard (Options.Shard) runs with
// RunShard instead.
func (p *Plan) Run(ctx context.Context) (*report.Report, error) {
	if p.opts.Shard.N != 0 {
		return nil, fmt.Errorf("compress: the plan of shard %d/%d runs with RunShard", p.opts.Shard.I, p.opts.Shard.N)
	}
	rep, err := p.run(ctx, 0, p.units())
	if err != nil {
		return nil, err
	}
	if failed := rep.FailedGates(); len(failed) > 0 {
		return rep, fmt.Errorf("%w: %s (reports in %s)", ErrGateFailed, strings.Join(failed, ", "), p.out)
	}
	return rep, nil
}

// run does the work units [first, end) of the run (see units): unit 0,
// the main pass, prunes, trains, writes and scores the output, and the
// others are the sweep's points. With unit 0 it writes the output — the
// reports too, unless the plan is a shard's — and commits it.
func (p *Plan) run(ctx context.Context, first, end int) (*report.Report, error) {
	if p.ran {
		return nil, fmt.Errorf("compress: the plan was already run")
	}
	p.ran = true
	r, main, sharded := p.r, first == 0 && end > 0, p.opts.Shard.N != 0
	var out *checkpoint.Output
	if main {
		var err error
		if out, err = checkpoint.Create(p.out, checkpoint.OutputOptions{Force: p.opts.Force, InputDir: p.m.Dir}); err != nil {
			return nil, err
		}
		// The stages' temporary outputs of earlier runs on OUT that were
		// killed: removed now, whether or not this run has those stages.
		for _, stage := range []string{"sweep", "recover"} {
			p.notes = append(p.notes, checkpoint.RemoveStale(p.scratch(stage))...)
		}
		defer func() {
			out.Abort() // nothing after a commit
			p.notes = append(out.Notes(), p.notes...)
		}()
	}
	if sharded {
		p.notes = append(p.notes, checkpoint.RemoveStale(p.sweepScratch())...)
	}
	if p.needWindows(first, end) {
		// One set of calibration windows for every pruning of the run.
		c := r.Prune.Calib
		var err error
		if p.windows, err = sparsify.CalibrationWindows(ctx, p.model, sparsify.Calibration{Text: r.calibPath(), Samples: c.Samples,
			Len: c.Len, Seed: c.Seed}, p.opts.Threads); err != nil {
			return nil, err
		}
	}
	rep := &report.Report{Schema: report.Schema, Tool: manifest.Tool(), Model: p.model, Output: p.out, Recipe: r, Passed: true}
	if main {
		if err := p.mainPass(ctx, out, rep); err != nil {
			return nil, err
		}
	}
	if p.harness != nil && len(r.Sweep) > 0 {
		if err := p.sweep(ctx, rep, max(first, 1), end); err != nil {
			return nil, err
		}
	}
	rep.Timings = append(p.timings, report.Timing{Stage: "total", Seconds: manifest.Round(time.Since(p.started).Seconds(), 3)})
	rep.PeakRSS = peakRSS()
	if main {
		if !sharded {
			if err := WriteReports(out, rep); err != nil {
				return nil, err
			}
		}
		if err := out.Commit(ctx); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// mainPass is the run's unit 0: find-sparsity, the sae stage, prune and
// write (or recover), and the eval stage with the gates.
func (p *Plan) mainPass(ctx context.Context, out *checkpoint.Output, rep *report.Report) error {
	if p.opts.FindSparsity {
		if err := p.findSparsity(ctx, rep); err != nil {
			return err
		}
	}
	sae, err := p.saeStage(ctx, rep)
	if err != nil {
		return err
	}
	if p.r.Recover != nil {
		err = p.recover(ctx, out, rep, sae)
	} else {
		err = p.write(ctx, out, rep, sae)
	}
	if err != nil || p.harness == nil {
		return err
	}
	return p.evalStage(ctx, out.Staging(), rep)
}

// needWindows reports whether units [first, end) prune with a calibrated
// method that takes the run's shared calibration windows: the main pass
// with a sweep or find-sparsity, or a sweep point.
func (p *Plan) needWindows(first, end int) bool {
	r := p.r
	if r.Prune == nil {
		return false
	}
	if first == 0 && end > 0 && r.Algorithm() != sparsify.Magnitude && (len(r.Sweep) > 0 || p.opts.FindSparsity) {
		return true
	}
	for k := max(first, 1); k < end; k++ {
		if _, method := p.unit(k); calibratedMethod(method) {
			return true
		}
	}
	return false
}

// saeStage trains the autoencoder of the sae stage (nil without one).
func (p *Plan) saeStage(ctx context.Context, rep *report.Report) (*saestore.Compressed, error) {
	if p.sae == nil {
		return nil, nil
	}
	begin := time.Now()
	res, err := p.sae.Execute(ctx)
	if err != nil {
		return nil, err
	}
	c, info := res.Compressed, p.sae.Tensor
	opt := c.Options
	rep.SAE = &report.SAE{Tensor: info.Name, Latents: opt.Latents, K: opt.K, L1: opt.L1, Epochs: opt.Epochs,
		BytesBefore: info.Size, BytesAfter: c.Bytes, FVU: c.Stats.FVU, Cosine: c.Stats.Cosine, L0: c.Stats.L0, Dead: c.Stats.Dead}
	p.stage("sae", begin, "%s %v: %d latents, %s; %s → %s bytes, FVU %.4f, %d dead latents", info.Name, info.Shape, opt.Latents,
		c.Method(), report.Commas(info.Size), report.Commas(c.Bytes), c.Stats.FVU, c.Stats.Dead)
	return c, nil
}

// replaceSAE has job store the autoencoder's parts in place of its tensor.
func replaceSAE(job *sparsify.Job, c *saestore.Compressed) error {
	if c == nil {
		return nil
	}
	return job.Replace(c.Info.Name, c.Entries(), string(sparse.SAE), c.Bytes, map[string]string{sparse.SAEMetadataKey: sparse.SAEVersion})
}

// write is the store stage without recovery: the prune job (with the
// autoencoder's parts) streams the checkpoint into out.
func (p *Plan) write(ctx context.Context, out *checkpoint.Output, rep *report.Report, sae *saestore.Compressed) error {
	if p.r.Units() {
		return p.writeUnits(ctx, out, rep, sae)
	}
	job, err := sparsify.PlanCheckpoint(ctx, p.m, p.pruneOptions(nil))
	if err != nil {
		return err
	}
	defer job.Close()
	if err := replaceSAE(job, sae); err != nil {
		return err
	}
	begin := time.Now()
	man, err := job.Execute(ctx, out)
	if err != nil {
		return err
	}
	p.fillTotals(rep, man, out.Staging())
	rep.Notes = append(rep.Notes, job.Notes()...)
	if g := report.GrowthWarning(man); g != "" {
		rep.Notes = append(rep.Notes, strings.TrimPrefix(g, "warning: "))
	}
	if sparsify.Format(p.r.Store.Format) == sparsify.Dense && p.r.Prune != nil {
		// What store format auto would have written (the headline says it).
		rep.Totals.AutoBytes = rep.Totals.BytesAfter - (job.Bytes(sparsify.Dense) - job.Bytes(sparsify.Auto))
	}
	p.stage("write", begin, "%s", p.writeSummary(rep, len(job.Targets()), job.Describe()))
	return nil
}

// writeUnits is the store stage of a prune stage of whole MLP channels
// or attention heads: the shrink job (with the autoencoder's parts)
// writes the checkpoint, smaller when the units are removed.
func (p *Plan) writeUnits(ctx context.Context, out *checkpoint.Output, rep *report.Report, sae *saestore.Compressed) error {
	job, err := shrink.PlanCheckpoint(ctx, p.m, p.shrinkOptions())
	if err != nil {
		return err
	}
	defer job.Close()
	if sae != nil {
		if err := job.Replace(sae.Info.Name, sae.Entries(), string(sparse.SAE), sae.Bytes, map[string]string{sparse.SAEMetadataKey: sparse.SAEVersion}); err != nil {
			return err
		}
	}
	begin := time.Now()
	man, err := job.Execute(ctx, out)
	if err != nil {
		return err
	}
	p.fillTotals(rep, man, out.Staging())
	summary := p.writeSummary(rep, man.Totals.PrunedTensors, job.Describe())
	if p.r.Prune.Shrink {
		summary = strings.Replace(summary, "of their weights zero", "of their weights removed", 1)
	}
	p.stage("write", begin, "%s", summary)
	return nil
}

// writeSummary is the write stage's line: bytes, and the pruned tensors
// (n, described as desc).
func (p *Plan) writeSummary(rep *report.Report, n int, desc string) string {
	t := rep.Totals
	summary := fmt.Sprintf("%s: %s → %s bytes of tensors (%.3f× smaller)", p.out, report.Commas(t.BytesBefore), report.Commas(t.BytesAfter), t.Ratio)
	if p.r.Prune != nil {
		summary = fmt.Sprintf("%s, %d tensors pruned (%s), %.2f%% of their weights zero", summary, n, desc, 100*t.TargetSparsity)
	}
	return summary
}

// WriteReports renders report.json, report.md and report.html into out.
func WriteReports(out *checkpoint.Output, rep *report.Report) error {
	files, err := reportFiles(rep)
	if err != nil {
		return err
	}
	for _, f := range files {
		if err := out.WriteFile(f.name, f.data); err != nil {
			return err
		}
	}
	return nil
}

// file is a file to write: its name and bytes.
type file struct {
	name string
	data []byte
}

// reportFiles renders report.json, report.md and report.html.
func reportFiles(rep *report.Report) ([]file, error) {
	js, err := rep.JSON()
	if err != nil {
		return nil, err
	}
	page, err := html.Render(rep)
	if err != nil {
		return nil, err
	}
	return []file{{"report.json", js}, {"report.md", rep.Markdown()}, {"report.html", page}}, nil
}

// fillTotals copies the manifest into rep and measures the weight files
// before (the input's) and after (in dir).
func (p *Plan) fillTotals(rep *report.Report, man *manifest.Manifest, dir string) {
	rep.Inputs, rep.Tensors, rep.Calibration = man.Inputs, man.Tensors, man.Calibration
	p.inputs = man.Inputs
	rep.Structured = strings.TrimPrefix(report.StructuredNote(man), "structured ")
	rep.Totals = report.Totals{Totals: man.Totals}
	for _, f := range p.m.Files {
		if st, err := os.Stat(f); err == nil {
			rep.Totals.FileBytesBefore += st.Size()
		}
	}
	if ents, err := os.ReadDir(dir); err == nil {
		for _, e := range ents {
			if strings.HasSuffix(e.Name(), ".safetensors") {
				if st, err := e.Info(); err == nil {
					rep.Totals.FileBytesAfter += st.Size()
				}
			}
		}
	}
}

// score evaluates the checkpoint at dir against the original.
func (p *Plan) score(ctx context.Context, dir string) (*eval.Report, error) {
	lm, err := eval.Open(dir, model.Options{Threads: p.opts.Threads})
	if err != nil {
		return nil, err
	}
	defer func() {
		if c, ok := lm.(interface{ Close() error }); ok {
			c.Close()
		}
	}()
	return p.harness.Score(ctx, lm, dir)
}

// fidelity scores the checkpoint at dir against the original.
func (p *Plan) fidelity(ctx context.Context, dir string) (*report.Fidelity, error) {
	res, err := p.score(ctx, dir)
	if err != nil {
		return nil, err
	}
	k := res.KL
	f := &report.Fidelity{Text: p.text, TextBytes: p.textLen, Ctx: res.Ctx, Stride: res.Stride, Tokens: res.Tokens, Scored: res.Scored,
		PPL: res.PPL, BasePPL: k.BasePPL, PPLRatio: res.PPL / k.BasePPL, LogPPLRatio: k.LogPPLRatio,
		KLMean: k.Mean, KLMax: k.Max, KLP99: k.P99, KLP90: k.P90, KLP50: k.P50, Top1: k.Top1}
	if res.BitsPerByte != nil {
		f.BitsPerByte = *res.BitsPerByte
		f.BaseBitsPerByte = k.BaseNLLSum / math.Ln2 / float64(p.textLen)
	}
	return f, nil
}

// evalStage measures the written checkpoint and applies the gates.
func (p *Plan) evalStage(ctx context.Context, dir string, rep *report.Report) error {
	begin := time.Now()
	f, err := p.fidelity(ctx, dir)
	if err != nil {
		return err
	}
	rep.Fid = f
	rep.Gates = gates(p.r.Gates, f.PPLRatio, f.KLMean, f.Top1)
	for _, g := range rep.Gates {
		rep.Passed = rep.Passed && g.Passed
	}
	p.stage("eval", begin, "perplexity %.6g (original %.6g, ×%.4f), KL %.4g, top-1 %.2f%% on %d tokens", f.PPL, f.BasePPL, f.PPLRatio, f.KLMean, 100*f.Top1, f.Scored)
	return nil
}

// gates evaluates the recipe's gates for one measurement.
func gates(g *Gates, pplRatio, kl, top1 float64) []report.Gate {
	if g == nil {
		return nil
	}
	var out []report.Gate
	if g.MaxPPLRatio != nil {
		out = append(out, report.Gate{Name: "max_ppl_ratio", Op: "<=", Threshold: *g.MaxPPLRatio, Value: pplRatio, Passed: pplRatio <= *g.MaxPPLRatio})
	}
	if g.MaxKL != nil {
		out = append(out, report.Gate{Name: "max_kl", Op: "<=", Threshold: *g.MaxKL, Value: kl, Passed: kl <= *g.MaxKL})
	}
	if g.MinTop1 != nil {
		out = append(out, report.Gate{Name: "min_top1", Op: ">=", Threshold: *g.MinTop1, Value: top1, Passed: top1 >= *g.MinTop1})
	}
	return out
}

// sweep prunes the original at the sparsity of each of the work units
// [from, to) with its method (dense, in a staging directory beside the
// output that is never committed; see unit), evaluates it and records the
// points; with gates, the highest sparsity of the prune stage's own method
// passing them all.
func (p *Plan) sweep(ctx context.Context, rep *report.Report, from, to int) error {
	begin := time.Now()
	st := p.inner.Start("sweep", int64(max(to-from, 0)), "points")
	for k := from; k < to; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		s, name := p.unit(k)
		point, err := p.sweepPoint(ctx, name, s)
		if err != nil {
			return fmt.Errorf("sweep at sparsity %g (%s): %w", s, name, err)
		}
		if gs := gates(p.r.Gates, point.PPLRatio, point.KLMean, point.Top1); gs != nil {
			ok := true
			for _, g := range gs {
				ok = ok && g.Passed
			}
			point.Passed = &ok
		}
		rep.Sweep = append(rep.Sweep, point)
		st.Add(1)
	}
	rep.Best = bestPassing(rep.Sweep, p.r.Prune.Method)
	methods := p.r.sweepMethods()
	switch sh := p.opts.Shard; {
	case sh.N != 0:
		p.stage("sweep", begin, "%d of the sweep's %d points evaluated (shard %d/%d)", len(rep.Sweep), p.units()-1, sh.I, sh.N)
	case len(methods) > 1:
		p.stage("sweep", begin, "%d sparsities × %d methods (%s) evaluated", len(p.r.Sweep), len(methods), strings.Join(methods, ", "))
	default:
		p.stage("sweep", begin, "%d sparsities evaluated", len(p.r.Sweep))
	}
	return nil
}

// bestPassing returns the highest sparsity of the points of method own
// that passed every gate (nil when none did, or without gates).
func bestPassing(points []report.Point, own string) *float64 {
	var best *float64
	for _, pt := range points {
		if pt.Passed != nil && *pt.Passed && pt.Method == own && (best == nil || pt.Sparsity > *best) {
			s := pt.Sparsity
			best = &s
		}
	}
	return best
}

// units returns the number of work units of the run: the main pass (unit
// 0) and a sweep point per sweep sparsity and method.
func (p *Plan) units() int { return p.r.units() }

// units returns the number of work units of a run of the normalized r.
func (r *Recipe) units() int {
	if r.Prune == nil || r.Eval == nil {
		return 1
	}
	return 1 + len(r.Sweep)*len(r.sweepMethods())
}

// unit returns the sparsity and method of work unit k ≥ 1: the sweep's
// points in order, by sparsity and, within one, in the order of the
// methods.
func (p *Plan) unit(k int) (float64, string) { return p.r.unit(k) }

func (r *Recipe) unit(k int) (float64, string) {
	methods := r.sweepMethods()
	return r.Sweep[(k-1)/len(methods)], methods[(k-1)%len(methods)]
}

// sweepScratch is the temporary output of the sweep's points: named after
// the shard, so that shards sharing OUT's directory never share it.
func (p *Plan) sweepScratch() string {
	if sh := p.opts.Shard; sh.N != 0 {
		return p.scratch(fmt.Sprintf("sweep-%d-of-%d", sh.I, sh.N))
	}
	return p.scratch("sweep")
}

// findSparsity bisects over sparsities in [0, 0.99] for the highest one
// whose prune (dense, the recipe's method) passes every gate, assuming
// quality falls as sparsity grows; it sets the recipe's sparsity to it.
func (p *Plan) findSparsity(ctx context.Context, rep *report.Report) error {
	begin := time.Now()
	st := p.inner.Start("find-sparsity", 0, "points")
	try := func(s float64) (bool, error) {
		point, err := p.sweepPoint(ctx, p.r.Prune.Method, s)
		if err != nil {
			return false, fmt.Errorf("find-sparsity at %g: %w", s, err)
		}
		ok := true
		for _, g := range gates(p.r.Gates, point.PPLRatio, point.KLMean, point.Top1) {
			ok = ok && g.Passed
		}
		point.Passed = &ok
		rep.Sweep = append(rep.Sweep, point)
		st.Add(1)
		return ok, nil
	}
	lo, hi := 0, 99 // hundredths: lo passes (0% prunes nothing), hi is the bound
	if ok, err := try(0.99); err != nil {
		return err
	} else if ok {
		lo = 99
	}
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		ok, err := try(float64(mid) / 100)
		if err != nil {
			return err
		}
		if ok {
			lo = mid
		} else {
			hi = mid
		}
	}
	best := float64(lo) / 100
	rep.Best = &best
	p.r.Prune.Sparsity = &best
	p.method.Sparsity = best
	slices.SortFunc(rep.Sweep, func(a, b report.Point) int { return cmp.Compare(a.Sparsity, b.Sparsity) })
	p.stage("find-sparsity", begin, "highest sparsity passing every gate: %g (%d points)", best, len(rep.Sweep))
	return nil
}

// sweepPoint prunes the original at sparsity s with the prune method
// named method (the prune stage's other options), scores it and returns
// the point.
func (p *Plan) sweepPoint(ctx context.Context, method string, s float64) (report.Point, error) {
	o := p.methodOptions(algorithm(method), &s)
	if o.Format == sparsify.Bitmask24 {
		o.Format = sparsify.Bitmask // a sweep point is not 2:4; Job.Bytes says so too
	}
	job, err := sparsify.PlanCheckpoint(ctx, p.m, o)
	if err != nil {
		return report.Point{}, err
	}
	tmp, err := checkpoint.Create(p.sweepScratch(), checkpoint.OutputOptions{})
	if err != nil {
		return report.Point{}, err
	}
	defer tmp.Abort()
	man, err := job.Execute(ctx, tmp)
	if err != nil {
		return report.Point{}, err
	}
	if p.inputs == nil {
		p.inputs = man.Inputs
	}
	res, err := p.score(ctx, tmp.Staging())
	if err != nil {
		return report.Point{}, err
	}
	// Bytes at this sparsity in the recipe's store format.
	bytes := job.Bytes(sparsify.Format(p.r.Store.Format))
	return report.Point{Sparsity: s, Method: method, PPL: res.PPL, PPLRatio: res.PPL / res.KL.BasePPL, KLMean: res.KL.Mean, Top1: res.KL.Top1, Bytes: bytes}, nil
}
