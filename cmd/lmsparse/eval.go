package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/model"
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
	Shard     string // "i/n"
	Partial   string
}

func evalCommand() *command {
	return &command{
		name:     "eval",
		arg:      "MODEL",
		positive: []string{"stride"},
		summary:  "Measure perplexity, bits per byte and, against a base model, KL and top-1 agreement on held-out text",
		usage:    "eval MODEL --text FILE [--ctx N] [--stride N] [--base MODEL] [--max-tokens N] [--threads N] [--tokenizer PATH] [--stream auto|on|off] [--json | --shard I/N --partial OUT.json]",
		details:  help("eval"),
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
			fs.StringVar(&o.Shard, "shard", "", "score only shard I of N (0 ≤ I < N) of the windows; needs --partial")
			fs.StringVar(&o.Partial, "partial", "", "write the shard's partial results to this JSON file, for merge-eval")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				o.Model = args[0]
				if o.Text == "" {
					return usageErrorf("eval: --text FILE is required")
				}
				if fs.Changed("ctx") && o.Ctx < 2 {
					return usageErrorf("eval: --ctx %d: a window needs at least 2 tokens", o.Ctx)
				}
				if o.MaxTokens < 0 {
					return usageErrorf("eval: --max-tokens %d: must not be negative", o.MaxTokens)
				}
				if o.Base != "" {
					if err := checkPath("eval", "base", "the base model", o.Base); err != nil {
						return err
					}
				}
				switch o.Stream {
				case "auto", "on", "off":
				default:
					return usageErrorf("eval: --stream %q: want auto, on or off", o.Stream)
				}
				if (o.Shard == "") != (o.Partial == "") || o.Shard != "" && o.JSON {
					return usageErrorf("eval: --shard I/N and --partial OUT.json go together, without --json")
				} else if o.Partial != "" {
					if err := checkPath("eval", "partial", "its directory", filepath.Dir(o.Partial)); err != nil {
						return err
					}
				}
				return runEval(ctx, o, stdout, stderr)
			}
		},
	}
}

func runEval(ctx context.Context, o evalOptions, stdout, stderr io.Writer) error {
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(eval.GCPercent))
	}
	tok, err := eval.LoadTokenizer(o.Model, o.Tokenizer)
	if err != nil {
		return evalError(err)
	}
	text, err := eval.ReadTextTokens(o.Text, tok, o.MaxTokens)
	if err != nil {
		return evalError(err)
	}
	warnInvalidUTF8(stderr, text)
	show := newProgress(stderr, "eval", false, false)
	opts := eval.Options{Ctx: o.Ctx, Stride: o.Stride, MaxTokens: o.MaxTokens, Progress: show.event}
	mopts := model.Options{Threads: o.Threads, Stream: o.Stream}
	if o.Shard != "" {
		sh, err := model.ParseShard(o.Shard)
		if err != nil {
			return usageErrorf("eval: --shard %q: want I/N with 0 ≤ I < N, e.g. 0/4", o.Shard)
		}
		p, err := eval.CompareShard(ctx, o.Model, o.Base, text, tok, opts, mopts, sh)
		show.close()
		if err == nil {
			err = eval.WritePartial(o.Partial, p)
		}
		if err != nil {
			return evalError(err)
		}
		_, err = fmt.Fprintf(stdout, "%s → %s\n", p, o.Partial)
		return err
	}
	rep, err := eval.Compare(ctx, o.Model, o.Base, text, tok, opts, mopts)
	show.close()
	if err != nil {
		return evalError(err)
	}
	return rep.Write(stdout, o.JSON)
}

// evalError phrases the errors of package eval about its inputs in terms
// of eval's flags, as usage errors (exit 2); other errors pass through.
func evalError(err error) error {
	var (
		we *eval.WindowError
		ve *eval.VocabError
		te *eval.TokenError
	)
	switch {
	case errors.As(err, &we) && we.Positions > 0:
		return usageErrorf("eval: --ctx %d is larger than the %d positions of %s", we.Ctx, we.Positions, we.Model)
	case errors.As(err, &we):
		return usageErrorf("eval: --stride %d is larger than --ctx %d (tokens between windows would never be scored)", we.Stride, we.Ctx)
	case errors.As(err, &ve):
		return usageErrorf("eval: --base %s has a vocabulary of %d tokens but %s has %d: they cannot be compared", ve.Base, ve.BaseVocab, ve.Model, ve.Vocab)
	case errors.As(err, &te):
		return usageErrorf("eval: %v (wrong --tokenizer?)", te)
	case errors.Is(err, eval.ErrNoTokenizer):
		return usageErrorf("eval: %v (give one with --tokenizer)", err)
	case errors.Is(err, eval.ErrInput):
		return fmt.Errorf("eval: %w", err)
	}
	return err
}

// warnInvalidUTF8 warns on stderr that text has invalid UTF-8.
func warnInvalidUTF8(stderr io.Writer, text *eval.Text) {
	if text.InvalidUTF8 > 0 {
		fmt.Fprintf(stderr, "lmsparse: warning: %s has %d bytes of invalid UTF-8; they are tokenized as U+FFFD, one per invalid sequence\n", text.Path, text.InvalidUTF8)
	}
}
