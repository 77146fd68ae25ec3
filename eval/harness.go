package eval

import (
	"context"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// Schema is the schema of [Report] in JSON.
const Schema = "lmsparse.eval/v1"

// DefaultCtx is the longest default window: Options.Ctx 0 takes the
// model's positions, at most DefaultCtx.
const DefaultCtx = 512

// GCPercent is the garbage collector's target (GOGC) the CLI sets while
// it evaluates or prunes, unless the environment sets GOGC: the forward
// pass reuses its buffers, so little garbage is made, and collecting it
// early keeps the peak near the live heap, which Go's default of 100 lets
// double on long runs (a 2 GB checkpoint over 80 windows: 0.43 GB peak
// instead of 0.51 GB, same speed).
const GCPercent = 25

// Options configures a [Harness]. The zero value scores the whole text in
// windows of min(positions, [DefaultCtx]) tokens, one after the other.
type Options struct {
	// Ctx is the window length in tokens, at least 2; 0 takes
	// min(positions, DefaultCtx), the positions being the base model's, or
	// without a base each scored model's own.
	Ctx int
	// Stride is the distance between window starts, 1..Ctx; 0 takes Ctx.
	Stride int
	// MaxTokens scores only the first MaxTokens tokens of the text; 0 scores
	// them all. A text cut this way has no bits per byte.
	MaxTokens int
	// BaseLabel names the base model in reports and errors (its path).
	BaseLabel string
	// Progress, when set, receives the windows of each Score as they are
	// done: stage "eval", unit "windows".
	Progress progress.Func
	// KeepNLL keeps every scored token's NLL and position in Report.NLL
	// and Report.Pos (the first eight NLLs are always in Report.FirstNLL).
	KeepNLL bool
}

// Report is what [Harness.Score] measured, and the JSON document of
// schema lmsparse.eval/v1 ("lmsparse eval --json").
type Report struct {
	Schema    string  `json:"schema"` // Schema
	Model     string  `json:"model"`  // the label given to Score
	Base      string  `json:"base,omitempty"`
	Text      string  `json:"text"`       // Text.Path
	TextBytes int64   `json:"text_bytes"` // len(Text.Data)
	Tokenizer string  `json:"tokenizer"`  // the tokenizer's kind
	Tokens    int     `json:"tokens"`     // tokens scored over (after MaxTokens)
	Ctx       int     `json:"ctx"`
	Stride    int     `json:"stride"`
	Windows   int     `json:"windows"` // forward passes
	Scored    int     `json:"scored"`  // tokens scored
	MeanNLL   float64 `json:"mean_nll"`
	PPL       float64 `json:"ppl"`
	// BitsPerByte is nil when Options.MaxTokens cut the text.
	BitsPerByte *float64 `json:"bits_per_byte"`
	KL          *KL      `json:"kl,omitempty"` // against the base model, or nil
	InvalidUTF8 int      `json:"invalid_utf8_bytes"`
	Threads     int      `json:"threads"` // of the model's forward pass (0: unknown)
	Seconds     float64  `json:"seconds"`
	TokensPerS  float64  `json:"tokens_per_second"` // token positions of all windows per second
	Kernel      string   `json:"kernel"`
	// Streamed reports that the model or the base read their block
	// weights from the checkpoint per batch (model.Options.Stream).
	Streamed bool      `json:"streamed"`
	FirstNLL []float64 `json:"first_nll"` // NLL of the first (up to) 8 scored tokens
	// NLL and Pos are every scored token's NLL and position, with
	// Options.KeepNLL.
	NLL []float64 `json:"-"`
	Pos []int     `json:"-"`
}

// KL compares the model with the base model over the scored positions
// (see model.KLStats).
type KL struct {
	Mean        float64 `json:"mean"` // KL(base‖model) per position, nats
	Max         float64 `json:"max"`
	P99         float64 `json:"p99"`
	P90         float64 `json:"p90"`
	P50         float64 `json:"p50"`
	Top1        float64 `json:"top1_agreement"`
	BasePPL     float64 `json:"base_ppl"`
	LogPPLRatio float64 `json:"ln_ppl_ratio"` // ln(PPL/BasePPL)
	// BaseNLLSum is the base model's NLL summed over the scored tokens
	// (its bits per byte is BaseNLLSum / ln 2 / text bytes).
	BaseNLLSum float64 `json:"-"`
}

// A Harness scores models on one text, tokenized once, against one base
// model: build it once and call Score for every candidate. It is not safe
// for concurrent use.
type Harness struct {
	base        model.LM
	text        *Text
	kind        string // tokenizer kind
	ids         []int
	cut         bool // MaxTokens cut the text
	opts        Options
	ctx, stride int // resolved; 0 when each scored model decides
}

// NewHarness tokenizes text with tok and prepares to score models against
// base; base may be nil (no KL, no top-1). It checks the options, that
// the text gives at least 2 tokens and, with a base, the window against the
// base's positions. Invalid input returns errors wrapping [ErrInput].
func NewHarness(base model.LM, tok *tokenizer.Tokenizer, text *Text, opts Options) (*Harness, error) {
	if base != nil {
		if mm, ok := base.(*model.Model); ok && mm == nil {
			base = nil // a nil *Model in the interface is no base
		}
	}
	switch {
	case tok == nil:
		return nil, inputErrorf("no tokenizer")
	case text == nil:
		return nil, inputErrorf("no text")
	case len(text.Data) == 0:
		return nil, inputErrorf("%s is empty: there is nothing to score", text.Path)
	case opts.Ctx < 0 || opts.Ctx == 1:
		return nil, inputErrorf("ctx %d: a window needs at least 2 tokens", opts.Ctx)
	case opts.Stride < 0:
		return nil, inputErrorf("stride %d: must be at least 1 (or 0 for ctx)", opts.Stride)
	case opts.MaxTokens < 0:
		return nil, inputErrorf("max tokens %d: must not be negative", opts.MaxTokens)
	}
	h := &Harness{base: base, text: text, kind: tok.Kind(), opts: opts}
	if base != nil {
		var err error
		if h.ctx, h.stride, err = window(opts, base, opts.BaseLabel); err != nil {
			return nil, err
		}
	} else if opts.Ctx > 0 && opts.Stride > opts.Ctx {
		return nil, &WindowError{Ctx: opts.Ctx, Stride: opts.Stride}
	}
	var err error
	if h.ids, err = tok.EncodeLimited(string(text.Data), true, opts.MaxTokens); err != nil {
		return nil, inputErrorf("%s: %v", text.Path, err)
	}
	if opts.MaxTokens > 0 && opts.MaxTokens < len(h.ids) {
		h.ids, h.cut = h.ids[:opts.MaxTokens], true
	}
	if len(h.ids) < 2 {
		return nil, inputErrorf("%s gives %d token(s); scoring needs at least 2", text.Path, len(h.ids))
	}
	return h, nil
}

// window resolves the window settings of o for model m (labelled label)
// and checks them against its positions.
func window(o Options, m model.LM, label string) (ctx, stride int, err error) {
	ctx, stride = o.Ctx, o.Stride
	if ctx == 0 {
		ctx = min(m.MaxPositions(), DefaultCtx)
	}
	if ctx > m.MaxPositions() {
		return 0, 0, &WindowError{Ctx: ctx, Stride: stride, Positions: m.MaxPositions(), Model: label}
	}
	if stride == 0 {
		stride = ctx
	}
	if stride > ctx {
		return 0, 0, &WindowError{Ctx: ctx, Stride: stride}
	}
	return ctx, stride, nil
}

// Ctx returns the window length, or 0 when Options.Ctx is 0 and there is
// no base model: each scored model then takes its own default.
func (h *Harness) Ctx() int { return h.ctx }

// Stride returns the distance between window starts, or 0 as Ctx.
func (h *Harness) Stride() int { return h.stride }

// Tokens returns the token ids scored (after Options.MaxTokens); the
// caller must not modify them.
func (h *Harness) Tokens() []int { return h.ids }

// Base returns the base model (nil without one).
func (h *Harness) Base() model.LM { return h.base }

// Score scores m on the text — against the base model when there is one —
// with the sliding-window protocol of package model, and returns the
// report; label names m in it (its path). A model whose vocabulary
// differs from the base's returns a [VocabError], a window it rules out a
// [WindowError], a token id outside its vocabulary a [TokenError]; the
// forward pass's own errors pass through.
func (h *Harness) Score(ctx context.Context, m model.LM, label string) (*Report, error) {
	run, err := h.run(ctx, m, label, model.Shard{})
	if err != nil {
		return nil, err
	}
	res := run.res
	rep := newReport(run.id, res, res.NLL, run.perf, run.seconds, run.positions)
	if h.opts.KeepNLL {
		rep.NLL, rep.Pos = res.NLL, res.Pos
	} else {
		rep.FirstNLL = slices.Clone(rep.FirstNLL) // let the rest go
	}
	return rep, nil
}

// run scores shard of the windows of m (all of them with the zero Shard).
func (h *Harness) run(ctx context.Context, m model.LM, label string, shard model.Shard) (*scored, error) {
	if mm, ok := m.(*model.Model); m == nil || ok && mm == nil {
		return nil, inputErrorf("no model to score")
	}
	if h.base != nil && h.base.VocabSize() != m.VocabSize() {
		return nil, &VocabError{Model: label, Vocab: m.VocabSize(), Base: h.opts.BaseLabel, BaseVocab: h.base.VocabSize()}
	}
	o := h.opts
	if h.ctx > 0 { // resolved against the base
		o.Ctx, o.Stride = h.ctx, h.stride
	}
	wctx, stride, err := window(o, m, label)
	if err != nil {
		return nil, err
	}
	for i, id := range h.ids {
		if id >= m.VocabSize() {
			return nil, &TokenError{ID: id, Pos: i, Vocab: m.VocabSize(), Model: label}
		}
	}
	so := model.ScoreOptions{Ctx: wctx, Stride: stride, Base: h.base, KeepNLL: true, Shard: shard}
	if !h.cut {
		so.TextBytes = int64(len(h.text.Data))
	}
	first, last := shard.Range(model.WindowCount(len(h.ids), wctx, stride))
	st := h.opts.Progress.Start("eval", int64(last-first), "windows")
	if st != nil {
		so.Progress = func(done, _ int) { st.Set(int64(done), "") }
	}
	start := time.Now()
	res, err := model.Score(ctx, m, h.ids, so)
	if err != nil {
		var nf *model.NonFiniteError
		if errors.As(err, &nf) {
			who := label
			if nf.Base {
				who = h.opts.BaseLabel
			}
			return nil, explainNonFinite(ctx, err, who)
		}
		return nil, err
	}
	run := &scored{res: res, seconds: time.Since(start).Seconds(), positions: windowPositions(len(h.ids), wctx, stride, first, last),
		perf: perf{Threads: threadsOf(m), Kernel: kernelOf(m), Streamed: streamed(m) || streamed(h.base)},
		id: RunID{Model: label, Text: h.text.Path, TextBytes: int64(len(h.text.Data)), InvalidUTF8: h.text.InvalidUTF8,
			Tokenizer: h.kind, Tokens: len(h.ids), MaxTokens: h.opts.MaxTokens, Cut: h.cut, Ctx: wctx, Stride: stride, Windows: res.Windows}}
	if h.base != nil {
		run.id.Base = h.opts.BaseLabel
	}
	st.Finish("")
	return run, nil
}

// scored is what one Score of a Harness measured, whole or a shard.
type scored struct {
	id        RunID
	res       *model.Result
	perf      perf
	seconds   float64
	positions int // token positions of the windows run
}

// perf says how a run computed, for the report.
type perf struct {
	Threads  int
	Kernel   string
	Streamed bool
}

// newReport builds the report of a run identified by id whose totals are
// res (see model.Totals), whose first scored NLLs are firstNLL, and which
// ran positions token positions in seconds: the one place both
// [Harness.Score] and [Merge] build it.
func newReport(id RunID, res *model.Result, firstNLL []float64, p perf, seconds float64, positions int) *Report {
	rep := &Report{Schema: Schema, Model: id.Model, Base: id.Base, Text: id.Text, TextBytes: id.TextBytes,
		Tokenizer: id.Tokenizer, Tokens: id.Tokens, Ctx: id.Ctx, Stride: id.Stride, Windows: id.Windows, Scored: res.Scored,
		MeanNLL: res.MeanNLL, PPL: res.PPL, InvalidUTF8: id.InvalidUTF8, Threads: p.Threads, Seconds: seconds,
		Kernel: p.Kernel, Streamed: p.Streamed, FirstNLL: firstNLL[:min(8, len(firstNLL))]}
	if seconds > 0 {
		rep.TokensPerS = float64(positions) / seconds
	}
	if !id.Cut {
		b := res.BitsPerByte
		rep.BitsPerByte = &b
	}
	if k := res.KL; k != nil {
		rep.KL = &KL{Mean: k.Mean, Max: k.Max, P99: k.P99, P90: k.P90, P50: k.P50, Top1: k.Top1,
			BasePPL: k.BasePPL, LogPPLRatio: k.LogPPLRatio, BaseNLLSum: k.BaseNLLSum}
	}
	return rep
}

// Compare opens the model at modelPath and, unless basePath is empty, the
// base model at basePath (both with [Open] and mopts), scores the model on
// text tokenized by tok against the base, closes both and returns the
// report, labelled with the paths (Options.BaseLabel, when empty, becomes
// basePath).
func Compare(ctx context.Context, modelPath, basePath string, text *Text, tok *tokenizer.Tokenizer, opts Options, mopts model.Options) (*Report, error) {
	var rep *Report
	err := withModels(modelPath, basePath, text, tok, opts, mopts, func(h *Harness, m model.LM) (err error) {
		rep, err = h.Score(ctx, m, modelPath)
		return err
	})
	return rep, err
}

// closeLM releases what a model holds open (a streaming model's
// checkpoint handle).
func closeLM(m model.LM) {
	if c, ok := m.(io.Closer); ok {
		c.Close()
	}
}

// threadsOf returns the threads of m's forward pass (0 when it does not
// say).
func threadsOf(m model.LM) int {
	if t, ok := m.(interface{ Threads() int }); ok {
		return t.Threads()
	}
	return 0
}

// kernelOf names the compute kernel of m for the report.
func kernelOf(m model.LM) string {
	if k, ok := m.(interface{ Kernel() string }); ok {
		return k.Kernel()
	}
	return "unknown"
}

// streamed reports whether m reads its weights from the checkpoint per
// batch.
func streamed(m model.LM) bool {
	s, ok := m.(interface{ Streaming() bool })
	return ok && s.Streaming()
}

// windowPositions returns the token positions that windows [first, last)
// of the protocol over n tokens cover (the sum of their lengths).
func windowPositions(n, ctx, stride, first, last int) int {
	positions := 0
	for w := first; w < last; w++ {
		begin := w * stride
		positions += min(begin+ctx, n) - begin
	}
	return positions
}

// explainNonFinite turns a non-finite log-probability of the model at path
// into an error naming the first tensor holding a NaN or an infinity (an
// input error: the checkpoint is broken), when path is a checkpoint that
// has one; otherwise err is returned as it is.
func explainNonFinite(ctx context.Context, err error, path string) error {
	if path == "" {
		return err
	}
	if _, ok := checkpoint.ONNXPath(path); ok {
		return err
	}
	m, oerr := checkpoint.Open(path)
	if oerr != nil {
		return err
	}
	defer m.Close()
	buf := make([]byte, 1<<20)
	for _, name := range m.Names() {
		if ctx.Err() != nil {
			return err
		}
		info, _ := m.Tensor(name)
		if !info.DType.IsFloat() {
			continue
		}
		st, serr := m.Stats(name, buf)
		if serr == nil && st.NaN+st.Inf > 0 {
			return inputErrorf("%s: tensor %q holds %d NaN and %d infinite values (%v)", info.File, name, st.NaN, st.Inf, err)
		}
	}
	return err
}
