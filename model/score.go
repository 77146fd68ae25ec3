package model

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/lmsparse/lmsparse/internal/fastmath"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// ScoreOptions configures [Score].
type ScoreOptions struct {
	Ctx    int // window length in tokens, 2..MaxPositions
	Stride int // distance between window starts, 1..Ctx
	// TextBytes is the UTF-8 length of the text the ids encode, for
	// bits per byte; 0 leaves Result.BitsPerByte at 0.
	TextBytes int64
	// Base, when set, is the reference model: Score then also reports
	// KL(base‖model), top-1 agreement and the perplexity ratio. It must
	// share the model's vocabulary.
	Base LM
	// KeepNLL keeps every scored token's NLL in Result.NLL.
	KeepNLL bool
	// Progress, when set, is called after each window with the number of
	// windows done and the total.
	Progress func(done, total int)
	// Batch is the number of windows a *Model runs together, layer by
	// layer (each projection one matrix product over all their rows), so
	// that a streaming model reads its weights once per batch; a [BatchLM]
	// runs them as one batch when its Batch allows as many. 0 chooses:
	// when the model or the base streams (Options.Stream), as many windows
	// as keep each model's activations within [BatchMemory]; else what a
	// BatchLM asks for (within the same bound for a *Model beside it);
	// else 1. Results do not depend on it.
	Batch int
	// Shard, when its N is not 0, scores only shard I of N of the
	// protocol's windows (see [Shard]); the zero value scores them all.
	Shard Shard
}

// Shard is shard I (0 ≤ I < N) of N of the protocol's windows: of w
// windows, numbered 0 … w−1 in the order they start, it holds the
// contiguous range [⌊I·w/N⌋, ⌊(I+1)·w/N⌋). The N shards together hold
// every window exactly once, so every scored token is scored by exactly
// one shard; a shard is empty when N > w and I falls between two windows.
type Shard struct{ I, N int }

// Range returns the windows [first, end) of shard s when there are w
// windows; the zero Shard holds them all.
func (s Shard) Range(w int) (first, end int) {
	if s.N == 0 {
		return 0, w
	}
	return int(int64(s.I) * int64(w) / int64(s.N)), int(int64(s.I+1) * int64(w) / int64(s.N))
}

// Valid returns an error wrapping [ErrInput] unless s is the zero Shard
// or 0 ≤ I < N.
func (s Shard) Valid() error {
	if s == (Shard{}) || s.N >= 1 && s.I >= 0 && s.I < s.N {
		return nil
	}
	return fmt.Errorf("%w: shard %d/%d: want 0 ≤ i < n", ErrInput, s.I, s.N)
}

// PartLabels returns the label of part i of a sharded run in errors:
// names[i] (its file), else "partial i+1".
func PartLabels(names []string) func(i int) string {
	return func(i int) string {
		if i < len(names) {
			return names[i]
		}
		return "partial " + strconv.Itoa(i+1)
	}
}

// OrderShards checks that the parts of an n-way sharded run hold every
// shard 0…n−1 exactly once — shard(p) is part p's — and returns the parts
// in shard order. A shard given twice is an error
// naming both parts by label; a shard out of range one naming its part;
// missing shards are listed, at most ten, each as describe(shard) ("s/n"
// when describe is nil). The errors are plain: callers wrap them in their
// own kind.
func OrderShards[P any](parts []P, shard func(P) int, n int, label func(part int) string, describe func(shard int) string) ([]P, error) {
	if describe == nil {
		describe = func(s int) string { return fmt.Sprintf("%d/%d", s, n) }
	}
	order := make([]int, n)
	for s := range order {
		order[s] = -1
	}
	for i, p := range parts {
		s := shard(p)
		switch {
		case s < 0 || s >= n:
			return nil, fmt.Errorf("%s: shard %d/%d: want 0 ≤ i < n", label(i), s, n)
		case order[s] >= 0:
			return nil, fmt.Errorf("shard %d/%d given twice: %s and %s", s, n, label(order[s]), label(i))
		}
		order[s] = i
	}
	var missing []string
	count := 0
	for s, i := range order {
		if i < 0 {
			if count++; count <= 10 {
				missing = append(missing, describe(s))
			}
		}
	}
	if count > 10 {
		missing = append(missing, fmt.Sprintf("and %d more", count-10))
	}
	if count > 0 {
		return nil, fmt.Errorf("missing shard(s) %s of %d", strings.Join(missing, ", "), n)
	}
	out := make([]P, n)
	for s, i := range order {
		out[s] = parts[i]
	}
	return out, nil
}

// ParseShard parses "I/N" (decimal, 0 ≤ I < N) as a Shard; anything else
// is an error wrapping [ErrInput].
func ParseShard(s string) (Shard, error) {
	is, ns, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(is)
	n, err2 := strconv.Atoi(ns)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n || strconv.Itoa(i)+"/"+strconv.Itoa(n) != s {
		return Shard{}, fmt.Errorf("%w: shard %q: want I/N with 0 ≤ I < N, e.g. 0/4", ErrInput, s)
	}
	return Shard{I: i, N: n}, nil
}

// WindowCount returns the number of windows of the protocol over n ≥ 1
// tokens with 1 ≤ stride ≤ ctx, computed without listing them: the last
// window is the first whose begin + ctx reaches n.
func WindowCount(n, ctx, stride int) int {
	if n <= ctx {
		return 1
	}
	return (n-ctx+stride-1)/stride + 1
}

// BatchMemory bounds the activation memory per model of the windows
// [Score] runs together when ScoreOptions.Batch is 0 and a model streams:
// five windows of 512 tokens for GPT-2 small (about 11 MiB each, plus
// 9 MiB for the MLP whatever the batch),
// which makes reading the weights a few percent of a batch's time.
const BatchMemory = 64 << 20

// Result is the outcome of [Score].
type Result struct {
	Tokens  int // tokens in the input
	Scored  int // tokens scored (every token but the first when windows overlap)
	Windows int // windows of the protocol (forward passes of the model without a Shard)
	// FirstWindow is the index of the first window scored (0 without a
	// Shard); Sums has one entry per window scored, in window order.
	FirstWindow int
	Sums        []WindowSums
	NLLSum      float64 // Σ −ln p(token), nats
	MeanNLL     float64 // NLLSum / Scored
	PPL         float64 // exp(MeanNLL)
	BitsPerByte float64 // NLLSum / ln 2 / TextBytes; 0 without TextBytes
	// NLL and Pos list each scored token's NLL and absolute position in
	// increasing position order (with ScoreOptions.KeepNLL).
	NLL []float64
	Pos []int
	KL  *KLStats // comparison with ScoreOptions.Base, or nil
	// KLs is each scored position's KL(base‖model) in increasing position
	// order, with ScoreOptions.Base.
	KLs []float64
}

// WindowSums are the sums over one window's scored positions, each a
// float64 added in increasing position order starting from 0.
type WindowSums struct {
	Scored  int     // positions scored in the window
	NLL     float64 // Σ −ln p_model(token)
	BaseNLL float64 // Σ −ln p_base(token), with a base model
	KL      float64 // Σ KL(base‖model), with a base model
	Top1    int     // positions whose argmax logits agree, with a base model
}

// KLStats compares the model with a base model over the scored positions.
type KLStats struct {
	// KL(base‖model) = Σ_v p_base(v)·(ln p_base(v) − ln p_model(v)) per
	// scored position, in nats (rounding negatives clamped to 0): mean,
	// maximum and percentiles (linear interpolation between closest ranks).
	Mean, Max, P99, P90, P50 float64
	// Top1 is the share of scored positions whose argmax logits agree (ties
	// go to the lowest token id).
	Top1 float64
	// BaseNLLSum and BasePPL score the base model on the same tokens.
	BaseNLLSum, BasePPL float64
	// LogPPLRatio is ln(PPL/BasePPL) = (NLLSum − BaseNLLSum)/Scored.
	LogPPLRatio float64
}

// window is one forward pass of the protocol: tokens [begin, end), scoring
// positions [lo, end).
type window struct{ begin, end, lo int }

// windows lists the protocol's windows for n tokens.
func windows(n, ctx, stride int) []window {
	var ws []window
	prevEnd := 0
	for begin := 0; ; begin += stride {
		end := min(begin+ctx, n)
		ws = append(ws, window{begin, end, max(prevEnd, begin+1)})
		prevEnd = end
		if end == n {
			return ws
		}
	}
}

// LM is what Score needs of a model: its vocabulary, its positions, and
// logits for the positions of one window. *Model implements it; so can
// other runtimes (the ONNX executor, through an adapter).
type LM interface {
	VocabSize() int
	MaxPositions() int
	// Window runs the model over the token ids of one window and returns a
	// function that writes the logits of rows r0 … r0+rows-1, counted from
	// position from of the window, into out ([rows, vocab]). The function
	// is called with increasing r0 and is valid until the next Window.
	Window(ctx context.Context, ids []int, from int) (func(r0, rows int, out []float32), error)
}

// A BatchLM is an LM that runs several windows together, as one batch
// (package eval's adapter of the general ONNX executor): [Score] hands it
// the windows of a batch at once when Batch allows that many.
type BatchLM interface {
	LM
	// Batch returns how many windows of n tokens it runs together (1: one
	// at a time, through Window).
	Batch(n int) int
	// Windows runs wins, each with its first row froms[i] as Window takes
	// it, and returns per window the function Window would return; all
	// are valid until the next Window or Windows call. Each window's
	// logits must be the bits Window gives it.
	Windows(ctx context.Context, wins [][]int, froms []int) ([]func(r0, rows int, out []float32), error)
}

// batchWindows runs wins through l together when l is a BatchLM (not a
// *Model, which Score runs itself) whose Batch allows len(wins) windows of
// n tokens, and returns nil when each window is to go through Window.
func batchWindows(ctx context.Context, l LM, n int, wins [][]int, froms []int) ([]func(r0, rows int, out []float32), error) {
	bl, ok := l.(BatchLM)
	if !ok || asModel(l) != nil || len(wins) < 2 || bl.Batch(n) < len(wins) {
		return nil, nil
	}
	return bl.Windows(ctx, wins, froms)
}

// Window runs the layers over a window and returns the logits of its rows
// from position from on, computed in chunks as they are asked for.
func (m *Model) Window(ctx context.Context, ids []int, from int) (func(r0, rows int, out []float32), error) {
	fns, err := m.windows(ctx, new(pass), [][]int{ids}, []int{from})
	if err != nil {
		return nil, err
	}
	return fns[0], nil
}

// windows runs a batch of windows through the layers together (see
// hidden) and returns, per window, the function computing the logits of
// its rows from froms[w] on, as Window does; they are valid until p is
// used again.
func (m *Model) windows(ctx context.Context, p *pass, wins [][]int, froms []int) ([]func(r0, rows int, out []float32), error) {
	hs, err := m.hidden(ctx, p, wins, froms)
	if err != nil {
		return nil, err
	}
	D := m.cfg.HiddenSize
	fns := make([]func(r0, rows int, out []float32), len(hs))
	for i, h := range hs {
		fns[i] = func(r0, rows int, out []float32) { m.logits(&p.s, h[r0*D:], rows, out) }
	}
	return fns, nil
}

// batchSize is the number of windows of ctx tokens Score runs together
// when ScoreOptions.Batch is 0: when the model or the base streams, as
// many as keep each one's activations within BatchMemory (at least 1);
// else the larger Batch of a BatchLM among them, within the same bound
// for a *Model beside it; else 1.
func batchSize(m, base LM, ctx int) int {
	var ms []*Model
	streams := false
	want := 1
	for _, l := range []LM{m, base} {
		if mm := asModel(l); mm != nil {
			ms = append(ms, mm)
			streams = streams || mm.Streaming()
		} else if bl, ok := l.(BatchLM); ok {
			want = max(want, bl.Batch(ctx))
		}
	}
	if streams {
		want = 1 << 16
	}
	b := 1
	for ; b < want; b++ {
		for _, mm := range ms {
			if mm.passBytes((b+1)*ctx) > BatchMemory {
				return b
			}
		}
	}
	return b
}

// asModel returns the *Model behind an LM: the LM itself, or what an
// adapter's Unwrap method returns (package eval labels ONNX exports run on
// a Model that way); nil for any other LM.
func asModel(l LM) *Model {
	switch v := l.(type) {
	case *Model:
		return v
	case interface{ Unwrap() *Model }:
		return v.Unwrap()
	}
	return nil
}

// lmThreads returns the threads an LM works with (1 when it does not say).
func lmThreads(m LM) int {
	if t, ok := m.(interface{ Threads() int }); ok && t.Threads() > 0 {
		return t.Threads()
	}
	return 1
}

// Score computes the perplexity of ids under m with the sliding-window
// protocol described in the package documentation, and with
// ScoreOptions.Base also the KL divergence from the base model. Invalid
// arguments return errors wrapping [ErrInput]; non-finite logits return an
// error naming the position.
func Score(ctx context.Context, m LM, ids []int, o ScoreOptions) (*Result, error) {
	// A nil *Model inside the interface is no model (and no base).
	if mm, ok := m.(*Model); ok && mm == nil {
		m = nil
	}
	if b, ok := o.Base.(*Model); ok && b == nil {
		o.Base = nil
	}
	if m == nil {
		return nil, fmt.Errorf("%w: nil model", ErrInput)
	}
	if len(ids) < 2 {
		return nil, fmt.Errorf("%w: %d tokens; scoring needs at least 2", ErrInput, len(ids))
	}
	if o.Ctx < 2 || o.Ctx > m.MaxPositions() {
		return nil, fmt.Errorf("%w: context %d must be in [2, %d], the model's positions", ErrInput, o.Ctx, m.MaxPositions())
	}
	if o.Stride < 1 || o.Stride > o.Ctx {
		return nil, fmt.Errorf("%w: stride %d must be in [1, context %d]", ErrInput, o.Stride, o.Ctx)
	}
	if o.TextBytes < 0 {
		return nil, fmt.Errorf("%w: text length %d bytes is negative", ErrInput, o.TextBytes)
	}
	V := m.VocabSize()
	if b := o.Base; b != nil {
		if b.VocabSize() != V {
			return nil, fmt.Errorf("%w: base model vocabulary %d differs from the model's %d", ErrInput, b.VocabSize(), V)
		}
		if o.Ctx > b.MaxPositions() {
			return nil, fmt.Errorf("%w: context %d exceeds the base model's %d positions", ErrInput, o.Ctx, b.MaxPositions())
		}
	}
	for i, id := range ids {
		if id < 0 || id >= V {
			return nil, fmt.Errorf("%w: token id %d at position %d is outside the vocabulary [0, %d)", ErrInput, id, i, V)
		}
	}

	if err := o.Shard.Valid(); err != nil {
		return nil, err
	}
	N := len(ids)
	ws := windows(N, o.Ctx, o.Stride)
	first, last := o.Shard.Range(len(ws))
	sel := ws[first:last]
	nll := make([]float64, N) // by absolute position; scored positions only
	var kl, bnll []float64
	var agree []bool
	if o.Base != nil {
		kl = make([]float64, N)
		bnll = make([]float64, N)
		agree = make([]bool, N)
	}
	// Logits are computed logitChunk rows at a time, so memory stays at
	// logitChunk·vocab floats per model whatever the window length; 192
	// is a multiple of every kernel's A block (192, 96 and 64 rows).
	const logitChunk = 192
	var logits, blogits []float32
	threads := lmThreads(m)
	pbuf := make([][]float64, threads) // per worker: base exp terms
	batch := o.Batch
	if batch <= 0 {
		batch = batchSize(m, o.Base, o.Ctx)
	}
	mm, bm := asModel(m), asModel(o.Base)
	var mp, bp pass // activations of the batches of mm and bm
	for b0 := 0; b0 < len(sel); b0 += batch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		bws := sel[b0:min(b0+batch, len(sel))]
		wins, froms := make([][]int, len(bws)), make([]int, len(bws))
		for i, w := range bws {
			wins[i] = ids[w.begin:w.end]
			froms[i] = w.lo - 1 - w.begin // hidden row predicting position lo
		}
		// A *Model runs the batch layer by layer now; another LM runs each
		// window when its turn comes.
		var mlgs, blgs []func(r0, rows int, out []float32)
		var err error
		if mm != nil {
			if mlgs, err = mm.windows(ctx, &mp, wins, froms); err != nil {
				return nil, err
			}
		} else if mlgs, err = batchWindows(ctx, m, o.Ctx, wins, froms); err != nil {
			return nil, err
		}
		if bm != nil {
			if blgs, err = bm.windows(ctx, &bp, wins, froms); err != nil {
				return nil, fmt.Errorf("base model: %w", err)
			}
		} else if o.Base != nil {
			if blgs, err = batchWindows(ctx, o.Base, o.Ctx, wins, froms); err != nil {
				return nil, fmt.Errorf("base model: %w", err)
			}
		}
		for i, w := range bws {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			var lg, blg func(r0, rows int, out []float32)
			if mlgs != nil {
				lg = mlgs[i]
			} else if lg, err = m.Window(ctx, wins[i], froms[i]); err != nil {
				return nil, err
			}
			if blgs != nil {
				blg = blgs[i]
			} else if o.Base != nil {
				if blg, err = o.Base.Window(ctx, wins[i], froms[i]); err != nil {
					return nil, fmt.Errorf("base model: %w", err)
				}
			}
			// Position j (lo ≤ j < end) is predicted by hidden row j-lo.
			for r0 := 0; r0 < w.end-w.lo; r0 += logitChunk {
				rows := min(logitChunk, w.end-w.lo-r0)
				logits = grow(logits, rows*V)
				lg(r0, rows, logits)
				if o.Base != nil {
					blogits = grow(blogits, rows*V)
					blg(r0, rows, blogits)
				}
				blas.ParallelFor(threads, rows, func(worker, r int) {
					j := w.lo + r0 + r
					row := logits[r*V : (r+1)*V]
					lse, arg, _ := logSumExp(row, nil)
					nll[j] = lse - float64(row[ids[j]])
					if o.Base == nil {
						return
					}
					if pbuf[worker] == nil {
						pbuf[worker] = make([]float64, V)
					}
					brow := blogits[r*V : (r+1)*V]
					blse, barg, bsum := logSumExp(brow, pbuf[worker])
					bnll[j] = blse - float64(brow[ids[j]])
					agree[j] = arg == barg
					kl[j] = klRow(pbuf[worker], bsum, brow, row, blse, lse)
				})
			}
			if o.Progress != nil {
				o.Progress(b0+i+1, len(sel))
			}
		}
	}

	r := &Result{Tokens: N, Windows: len(ws), FirstWindow: first}
	sums := make([]WindowSums, 0, len(sel))
	var kls []float64
	for _, w := range sel {
		var s WindowSums
		for j := w.lo; j < w.end; j++ {
			if math.IsNaN(nll[j]) || math.IsInf(nll[j], 0) {
				return nil, &NonFiniteError{Pos: j}
			}
			s.Scored++
			s.NLL += nll[j]
			if o.KeepNLL {
				r.NLL = append(r.NLL, nll[j])
				r.Pos = append(r.Pos, j)
			}
			if o.Base != nil {
				if math.IsNaN(bnll[j]) || math.IsInf(bnll[j], 0) {
					return nil, &NonFiniteError{Pos: j, Base: true}
				}
				if math.IsNaN(kl[j]) {
					return nil, fmt.Errorf("model: KL divergence at position %d is NaN (NaN or Inf logits)", j)
				}
				s.BaseNLL += bnll[j]
				s.KL += kl[j]
				kls = append(kls, kl[j])
				if agree[j] {
					s.Top1++
				}
			}
		}
		sums = append(sums, s)
	}
	t := Totals(sums, kls, o.TextBytes, o.Base != nil)
	r.Scored, r.NLLSum, r.MeanNLL, r.PPL, r.BitsPerByte, r.KL = t.Scored, t.NLLSum, t.MeanNLL, t.PPL, t.BitsPerByte, t.KL
	r.Sums, r.KLs = sums, kls
	return r, nil
}

// Totals computes a Result's totals — Scored, NLLSum, MeanNLL, PPL,
// BitsPerByte (with textBytes > 0) and, with base, KL — from the sums of
// consecutive windows in window order and the KL values of their scored
// positions (any order). It is the one place [Score] and a merge of shards
// compute them, so shards merged in window order give the very bits of one
// run: every total is the float64 sum of the windows' sums, added in window
// order starting from 0. With no scored position the means are 0.
func Totals(sums []WindowSums, kls []float64, textBytes int64, base bool) *Result {
	r := &Result{}
	var bsum, klsum float64
	var agreeN int
	for _, s := range sums {
		r.Scored += s.Scored
		r.NLLSum += s.NLL
		bsum += s.BaseNLL
		klsum += s.KL
		agreeN += s.Top1
	}
	if r.Scored == 0 {
		return r
	}
	r.MeanNLL = r.NLLSum / float64(r.Scored)
	r.PPL = math.Exp(r.MeanNLL)
	if textBytes > 0 {
		r.BitsPerByte = r.NLLSum / math.Ln2 / float64(textBytes)
	}
	if base {
		k := &KLStats{
			Top1:        float64(agreeN) / float64(r.Scored),
			BaseNLLSum:  bsum,
			BasePPL:     math.Exp(bsum / float64(r.Scored)),
			LogPPLRatio: (r.NLLSum - bsum) / float64(r.Scored),
			Mean:        klsum / float64(r.Scored),
		}
		if len(kls) > 0 {
			sorted := slices.Clone(kls)
			slices.Sort(sorted)
			k.Max = sorted[len(sorted)-1]
			k.P99 = percentile(sorted, 99)
			k.P90 = percentile(sorted, 90)
			k.P50 = percentile(sorted, 50)
		}
		r.KL = k
	}
	return r
}

func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}

// logSumExp returns ln Σ exp(row) and the index of the first maximum
// (internal/fastmath: a vectorised float64 exp within 2 ulp, summed in a
// fixed order, so the result does not depend on the CPU or the threads).
// With e non-nil it also leaves exp(row[i] − max) in e and returns their
// sum, the softmax denominator.
func logSumExp(row []float32, e []float64) (lse float64, arg int, sum float64) {
	mx, arg := fastmath.MaxIndex(row)
	m64 := float64(mx)
	sum = fastmath.SumExp(row, m64, e)
	return m64 + math.Log(sum), arg, sum
}

// klRow returns KL(p‖q) = Σ p_i·(ln p_i − ln q_i) for the softmax
// distributions of logits p and q, given the terms e and their sum from
// p's [logSumExp] (p_i = e_i/sum) and both log-sum-exps, in float64,
// clamping rounding negatives to 0.
func klRow(e []float64, sum float64, p, q []float32, plse, qlse float64) float64 {
	// ln p_i − ln q_i = (p_i − plse) − (q_i − qlse).
	return max(fastmath.DotDiff(e, p, q, plse, qlse)/sum, 0)
}

// percentile returns the p-th percentile of sorted values by linear
// interpolation between closest ranks: position p/100·(n−1) of the sorted
// list (NumPy's default method).
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 1 {
		return sorted[0]
	}
	pos := p / 100 * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	if lo >= len(sorted)-1 {
		return sorted[len(sorted)-1]
	}
	f := pos - float64(lo)
	return sorted[lo] + f*(sorted[lo+1]-sorted[lo])
}

// NonFiniteError is a log-probability that is NaN or infinite: the logits
// at Pos (of the base model when Base) are not finite, usually because a
// weight is. Callers that know the checkpoint name the tensor.
type NonFiniteError struct {
	Pos  int
	Base bool
}

func (e *NonFiniteError) Error() string {
	who := "model: "
	if e.Base {
		who = "model: base model: "
	}
	return fmt.Sprintf("%snon-finite log-probability at position %d (NaN or Inf logits)", who, e.Pos)
}
