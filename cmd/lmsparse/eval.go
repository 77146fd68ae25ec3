package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"
	"unicode/utf8"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/model"
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// evalOptions are the inputs of "lmsparse eval".
type evalOptions struct {
	Model     string
	Text      string
	Ctx       int
	Stride    int
	Base      string
	MaxTokens int
	Threads   int
	Tokenizer string
	JSON      bool
	Stream    string
}

func evalCommand() *command {
	return &command{
		name:    "eval",
		summary: "Measure perplexity, bits per byte and, against a base model, KL and top-1 agreement on held-out text",
		usage:   "eval MODEL --text FILE [--ctx N] [--stride N] [--base MODEL] [--max-tokens N] [--threads N] [--tokenizer PATH] [--stream auto|on|off] [--json]",
		details: `Tokenizes FILE with the model's tokenizer.json (special tokens added as its
post-processor and tokenizer_config.json say), runs lmsparse's own float32
forward pass over windows of --ctx tokens starting every --stride tokens, and
scores each token once, in the first window whose end passes it, when it has
at least one token of context in that window (the Hugging Face "perplexity of
fixed-length models" protocol; details in README.md). Prints tokens scored,
mean NLL, perplexity and bits per byte.

With --base (the uncompressed model, same vocabulary) it also prints
KL(base‖model) per scored position — mean, max and the 99/90/50th
percentiles — top-1 agreement, and ln(ppl/ppl_base), as llama.cpp's
perplexity tool does in its KL mode.

The default --ctx is min(max_position_embeddings, 512); --stride defaults
to --ctx. Text is read as bytes, unmodified. Invalid UTF-8 is replaced by
U+FFFD before tokenizing, one per maximal invalid sequence (as Python's
errors="replace" and tokenizers.js do; a warning says how many bytes), and
bits per byte counts the file's bytes. Progress goes to stderr only when it
is a terminal.

Memory: a checkpoint whose weights (as float32) exceed twice its largest
tensor plus 64 MiB is streamed (--stream auto): only the embeddings, the LM
head, norms and biases stay in memory, each block's projections are read
from the checkpoint when the block runs, and several windows go through the
model together so the weights are read once per batch. Peak memory then
follows the largest tensor, not the file. --stream on forces this, --stream
off keeps every weight in memory (faster for a single short window). The
numbers do not depend on it. ONNX models are always held in memory.`,
		examples: []string{
			"lmsparse eval ../shared/models/stories260k --text ../shared/text/tinystories/tinystories_sample.txt",
			"lmsparse eval ./pruned --base ./original --text wiki.test.raw --ctx 512 --stride 256 --json",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o evalOptions
			fs.StringVar(&o.Text, "text", "", "held-out text file (required)")
			fs.IntVar(&o.Ctx, "ctx", 0, "window length in tokens (default min(max positions, 512))")
			fs.IntVar(&o.Stride, "stride", 0, "distance between window starts (default --ctx)")
			fs.StringVar(&o.Base, "base", "", "base (uncompressed) model to compare against: KL, top-1, ppl ratio")
			fs.IntVar(&o.MaxTokens, "max-tokens", 0, "score only the first N tokens of the text (0: all)")
			fs.IntVar(&o.Threads, "threads", runtime.NumCPU(), "threads of the forward pass")
			fs.StringVar(&o.Tokenizer, "tokenizer", "", "tokenizer.json (or its directory) to use instead of the model's")
			fs.BoolVar(&o.JSON, "json", false, "print a JSON report")
			fs.StringVar(&o.Stream, "stream", "auto", "stream block weights from the checkpoint: auto (when larger than twice the largest tensor + 64 MiB), on or off")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) != 1 {
					return usageErrorf("eval: want exactly one MODEL argument, got %d (see 'lmsparse eval --help')", len(args))
				}
				o.Model = args[0]
				if o.Text == "" {
					return usageErrorf("eval: --text FILE is required")
				}
				if fs.Changed("ctx") && o.Ctx < 2 {
					return usageErrorf("eval: --ctx %d: a window needs at least 2 tokens", o.Ctx)
				}
				if fs.Changed("stride") && o.Stride <= 0 {
					return usageErrorf("eval: --stride %d: must be at least 1", o.Stride)
				}
				if o.MaxTokens < 0 {
					return usageErrorf("eval: --max-tokens %d: must not be negative", o.MaxTokens)
				}
				if o.Threads < 1 {
					return usageErrorf("eval: --threads %d: must be at least 1", o.Threads)
				}
				switch o.Stream {
				case "auto", "on", "off":
				default:
					return usageErrorf("eval: --stream %q: want auto, on or off", o.Stream)
				}
				return runEval(ctx, o, stdout, stderr)
			}
		},
	}
}

// evalReport is the --json output (schema lmsparse.eval/v1).
type evalReport struct {
	Schema      string    `json:"schema"`
	Model       string    `json:"model"`
	Base        string    `json:"base,omitempty"`
	Text        string    `json:"text"`
	TextBytes   int64     `json:"text_bytes"`
	Tokenizer   string    `json:"tokenizer"`
	Tokens      int       `json:"tokens"`
	Ctx         int       `json:"ctx"`
	Stride      int       `json:"stride"`
	Windows     int       `json:"windows"`
	Scored      int       `json:"scored"`
	MeanNLL     float64   `json:"mean_nll"`
	PPL         float64   `json:"ppl"`
	BitsPerByte *float64  `json:"bits_per_byte"` // null when --max-tokens cut the text
	KL          *evalKL   `json:"kl,omitempty"`
	InvalidUTF8 int       `json:"invalid_utf8_bytes"`
	Threads     int       `json:"threads"`
	Seconds     float64   `json:"seconds"`
	TokensPerS  float64   `json:"tokens_per_second"`
	Kernel      string    `json:"kernel"`
	Streamed    bool      `json:"streamed"` // block weights read from the checkpoint per batch (--stream)
	FirstNLL    []float64 `json:"first_nll"`
}

type evalKL struct {
	Mean        float64 `json:"mean"`
	Max         float64 `json:"max"`
	P99         float64 `json:"p99"`
	P90         float64 `json:"p90"`
	P50         float64 `json:"p50"`
	Top1        float64 `json:"top1_agreement"`
	BasePPL     float64 `json:"base_ppl"`
	LogPPLRatio float64 `json:"ln_ppl_ratio"`
}

// loadEvalModel opens a checkpoint for the forward pass, streaming its
// block weights when it is large (model.Options.Stream "auto").
func loadEvalModel(path string, threads int) (*model.Model, error) {
	return loadEvalModelStream(path, threads, "auto")
}

// loadEvalModelStream is loadEvalModel with a model.Options.Stream mode.
func loadEvalModelStream(path string, threads int, stream string) (*model.Model, error) {
	lm, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	if lm.Config == nil {
		return nil, fmt.Errorf("%s: %w: eval needs config.json to know the architecture", path, checkpoint.ErrFormat)
	}
	// A pruned checkpoint stored as CSR or bitmask is evaluated directly.
	if _, err := lm.ExpandSparse(); err != nil {
		return nil, err
	}
	return model.Load(lm, model.Options{Threads: threads, Stream: stream})
}

// loadEvalLM opens a model for scoring: a safetensors checkpoint through
// lmsparse's forward pass (stream is its model.Options.Stream), or an ONNX
// model through the ONNX executor, which holds every weight in memory.
func loadEvalLM(path string, threads int, stream string) (model.LM, error) {
	file, ok := onnxPath(path)
	if !ok {
		return loadEvalModelStream(path, threads, stream)
	}
	om, err := onnx.Open(file)
	if err != nil {
		return nil, err
	}
	s, err := onnxrun.Load(om, onnxrun.Options{Threads: threads})
	if err != nil {
		return nil, err // names the file
	}
	return &onnxLM{s: s, threads: threads}, nil
}

// closeLM releases what a model holds open (a streaming model's
// checkpoint handle).
func closeLM(m model.LM) {
	if c, ok := m.(io.Closer); ok {
		c.Close()
	}
}

// onnxLM adapts an ONNX session to model.LM: each window's logits are
// computed at once and handed out in rows.
type onnxLM struct {
	s       *onnxrun.Session
	threads int
	buf     []float32
}

func (a *onnxLM) VocabSize() int { return a.s.VocabSize() }
func (a *onnxLM) Threads() int   { return a.threads }
func (a *onnxLM) Kernel() string { return "onnx executor" }

// MaxPositions is the export's context when the graph tells it (a position
// table's length); otherwise no limit is known and --ctx decides.
func (a *onnxLM) MaxPositions() int {
	if p := a.s.MaxPositions(); p > 0 {
		return p
	}
	return 1 << 20
}

func (a *onnxLM) Window(ctx context.Context, ids []int, from int) (func(r0, rows int, out []float32), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v := a.s.VocabSize()
	n := (len(ids) - from) * v
	if cap(a.buf) < n {
		a.buf = make([]float32, n)
	}
	a.buf = a.buf[:n]
	if err := a.s.LogitsFrom(ids, from, a.buf); err != nil {
		return nil, err
	}
	return func(r0, rows int, out []float32) { copy(out[:rows*v], a.buf[r0*v:(r0+rows)*v]) }, nil
}

// evalGCPercent is the garbage collector's target (GOGC) while eval runs,
// unless the environment sets GOGC: the forward pass reuses its buffers,
// so little garbage is made, and collecting it early keeps the peak near
// the live heap, which Go's default of 100 lets double on long runs (a
// 2 GB checkpoint over 80 windows: 0.43 GB peak instead of 0.51 GB, same
// speed).
const evalGCPercent = 25

func runEval(ctx context.Context, o evalOptions, stdout, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(evalGCPercent))
	}
	text, tok, err := loadEvalText(o)
	if err != nil {
		return err
	}
	if o.Stream == "" {
		o.Stream = "auto"
	}
	m, err := loadEvalLM(o.Model, o.Threads, o.Stream)
	if err != nil {
		return err
	}
	defer closeLM(m)
	var base model.LM // stays a nil interface without --base
	if o.Base != "" {
		if base, err = loadEvalLM(o.Base, o.Threads, o.Stream); err != nil {
			return err
		}
		defer closeLM(base)
	}
	rep, err := scoreText(ctx, o, m, base, text, tok, stderr)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printEval(stdout, rep)
}

// loadEvalText reads o.Text and the tokenizer: o.Tokenizer, or the
// tokenizer.json of o.Model.
func loadEvalText(o evalOptions) ([]byte, *tokenizer.Tokenizer, error) {
	text, err := os.ReadFile(o.Text)
	if err != nil {
		return nil, nil, err
	}
	if len(text) == 0 {
		return nil, nil, usageErrorf("eval: %s is empty: there is nothing to score", o.Text)
	}
	tokPath := o.Tokenizer
	if tokPath == "" {
		tokPath = o.Model
		if st, err := os.Stat(o.Model); err == nil && !st.IsDir() {
			tokPath = filepath.Dir(o.Model)
		}
		if _, err := os.Stat(filepath.Join(tokPath, "tokenizer.json")); errors.Is(err, fs.ErrNotExist) {
			return nil, nil, usageErrorf("eval: no tokenizer.json in %s (give one with --tokenizer)", tokPath)
		}
	}
	tok, err := tokenizer.Load(tokPath)
	if err != nil {
		return nil, nil, err
	}
	return text, tok, nil
}

// scoreText scores m — against base when it is not nil — on text tokenized
// by tok, with the windows of o (o.Ctx and o.Stride 0 take their defaults),
// and returns the report "lmsparse eval" prints; o.Model and o.Base only
// label it.
func scoreText(ctx context.Context, o evalOptions, m, base model.LM, text []byte, tok *tokenizer.Tokenizer, stderr io.Writer) (*evalReport, error) {
	if base != nil && base.VocabSize() != m.VocabSize() {
		return nil, usageErrorf("eval: --base %s has a vocabulary of %d tokens but %s has %d: they cannot be compared", o.Base, base.VocabSize(), o.Model, m.VocabSize())
	}
	if o.Ctx == 0 {
		o.Ctx = min(m.MaxPositions(), 512)
	}
	if o.Ctx > m.MaxPositions() {
		return nil, usageErrorf("eval: --ctx %d is larger than the %d positions of %s", o.Ctx, m.MaxPositions(), o.Model)
	}
	if o.Stride == 0 {
		o.Stride = o.Ctx
	}
	if o.Stride > o.Ctx {
		return nil, usageErrorf("eval: --stride %d is larger than --ctx %d (tokens between windows would never be scored)", o.Stride, o.Ctx)
	}
	invalid := countInvalidUTF8(text)
	if invalid > 0 {
		fmt.Fprintf(stderr, "lmsparse: warning: %s has %d bytes of invalid UTF-8; they are tokenized as U+FFFD, one per invalid sequence\n", o.Text, invalid)
	}
	ids := tok.Encode(string(text))
	cut := o.MaxTokens > 0 && o.MaxTokens < len(ids)
	if cut {
		ids = ids[:o.MaxTokens]
	}
	if len(ids) < 2 {
		return nil, usageErrorf("eval: %s gives %d token(s); scoring needs at least 2", o.Text, len(ids))
	}
	for i, id := range ids {
		if id >= m.VocabSize() {
			return nil, usageErrorf("eval: the tokenizer gives id %d at position %d, outside the model's vocabulary of %d (wrong --tokenizer?)", id, i, m.VocabSize())
		}
	}
	so := model.ScoreOptions{Ctx: o.Ctx, Stride: o.Stride, Base: base, KeepNLL: true}
	if !cut {
		so.TextBytes = int64(len(text))
	}
	if isTerminal(stderr) {
		so.Progress = func(done, total int) {
			fmt.Fprintf(stderr, "\rlmsparse: eval: window %d/%d", done, total)
			if done == total {
				fmt.Fprintln(stderr)
			}
		}
	}
	start := time.Now()
	res, err := model.Score(ctx, m, ids, so)
	if err != nil {
		return nil, err
	}
	secs := time.Since(start).Seconds()
	rep := &evalReport{Schema: "lmsparse.eval/v1", Model: o.Model, Base: o.Base, Text: o.Text, TextBytes: int64(len(text)),
		Tokenizer: tok.Kind(), Tokens: res.Tokens, Ctx: o.Ctx, Stride: o.Stride, Windows: res.Windows, Scored: res.Scored,
		MeanNLL: res.MeanNLL, PPL: res.PPL, InvalidUTF8: invalid, Threads: o.Threads, Seconds: secs, Kernel: kernelOf(m),
		Streamed: streamed(m) || streamed(base)}
	if secs > 0 {
		rep.TokensPerS = float64(tokensProcessed(res.Tokens, o.Ctx, o.Stride)) / secs
	}
	if !cut {
		b := res.BitsPerByte
		rep.BitsPerByte = &b
	}
	rep.FirstNLL = res.NLL[:min(8, len(res.NLL))]
	if k := res.KL; k != nil {
		rep.KL = &evalKL{Mean: k.Mean, Max: k.Max, P99: k.P99, P90: k.P90, P50: k.P50, Top1: k.Top1,
			BasePPL: k.BasePPL, LogPPLRatio: k.LogPPLRatio}
	}
	return rep, nil
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

// tokensProcessed is the number of token positions the forward passes
// cover: the sum of the window lengths.
func tokensProcessed(n, ctx, stride int) int {
	total := 0
	for begin := 0; ; begin += stride {
		end := min(begin+ctx, n)
		total += end - begin
		if end == n {
			return total
		}
	}
}

func countInvalidUTF8(b []byte) int {
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			n++
		}
		b = b[size:]
	}
	return n
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func printEval(w io.Writer, r *evalReport) error {
	tab := &textTable{}
	tab.add("model", r.Model)
	tab.add("text", fmt.Sprintf("%s (%s bytes, %s tokens, tokenizer %s)", r.Text, commas(r.TextBytes), commas(int64(r.Tokens)), r.Tokenizer))
	tab.add("windows", fmt.Sprintf("%d of ctx %d, stride %d", r.Windows, r.Ctx, r.Stride))
	tab.add("scored", commas(int64(r.Scored)))
	tab.add("mean NLL", fmt.Sprintf("%.6f nats", r.MeanNLL))
	tab.add("perplexity", fmt.Sprintf("%.6f", r.PPL))
	if r.BitsPerByte != nil {
		tab.add("bits/byte", fmt.Sprintf("%.6f", *r.BitsPerByte))
	} else {
		tab.add("bits/byte", "- (--max-tokens cut the text)")
	}
	if k := r.KL; k != nil {
		tab.add("base", r.Base)
		tab.add("base perplexity", fmt.Sprintf("%.6f", k.BasePPL))
		tab.add("ln(ppl/base)", fmt.Sprintf("%.6f", k.LogPPLRatio))
		tab.add("KL mean", fmt.Sprintf("%.6g nats", k.Mean))
		tab.add("KL max", fmt.Sprintf("%.6g", k.Max))
		tab.add("KL p99/p90/p50", fmt.Sprintf("%.6g / %.6g / %.6g", k.P99, k.P90, k.P50))
		tab.add("top-1 agreement", fmt.Sprintf("%.4f%%", 100*k.Top1))
	}
	weights := ""
	if r.Streamed {
		weights = ", weights streamed"
	}
	tab.add("speed", fmt.Sprintf("%.0f tokens/s (%d threads, %s kernel%s, %.2f s)", r.TokensPerS, r.Threads, r.Kernel, weights, r.Seconds))
	return tab.write(w)
}
