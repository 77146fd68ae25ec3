package main

import (
	"context"
	"fmt"
	"io"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// Compatibility shims over package eval for the callers of the functions
// that moved there (compress.go, sae.go, the tests); they keep the old
// signatures and messages until those callers use eval.Harness directly.

// evalReport is the --json output of eval (schema lmsparse.eval/v1).
type evalReport = eval.Report

// loadEvalModel opens a checkpoint for the forward pass, streaming its
// block weights when it is large (model.Options.Stream "auto").
func loadEvalModel(path string, threads int) (*model.Model, error) {
	lm, err := eval.Open(path, model.Options{Threads: threads})
	if err != nil {
		return nil, err
	}
	m, ok := lm.(*model.Model)
	if !ok {
		if c, ok := lm.(io.Closer); ok {
			c.Close()
		}
		return nil, fmt.Errorf("%s: %w: an ONNX model cannot be used here", path, checkpoint.ErrUnsupported)
	}
	return m, nil
}

// loadEvalText reads o.Text and the tokenizer: o.Tokenizer, or the
// tokenizer.json of o.Model.
func loadEvalText(o evalOptions) ([]byte, *tokenizer.Tokenizer, error) {
	text, err := eval.ReadText(o.Text)
	if err != nil {
		return nil, nil, evalError(err)
	}
	tok, err := eval.LoadTokenizer(o.Model, o.Tokenizer)
	if err != nil {
		return nil, nil, evalError(err)
	}
	return text.Data, tok, nil
}

// scoreText scores m — against base when it is not nil — on text tokenized
// by tok, with the windows of o (o.Ctx and o.Stride 0 take their defaults),
// and returns the report "lmsparse eval" prints; o.Model and o.Base only
// label it.
func scoreText(ctx context.Context, o evalOptions, m, base model.LM, text []byte, tok *tokenizer.Tokenizer, stderr io.Writer) (*evalReport, error) {
	t := eval.NewText(o.Text, text)
	h, err := eval.NewHarness(base, tok, t, eval.Options{Ctx: o.Ctx, Stride: o.Stride, MaxTokens: o.MaxTokens, BaseLabel: o.Base, Progress: newProgress(stderr, "eval", false, false).event})
	if err != nil {
		return nil, evalError(err)
	}
	warnInvalidUTF8(stderr, t)
	rep, err := h.Score(ctx, m, o.Model)
	if err != nil {
		return nil, evalError(err)
	}
	return rep, nil
}
