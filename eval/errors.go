package eval

import (
	"errors"
	"fmt"
)

var (
	// ErrInput reports an input eval refuses: an empty or oversized text,
	// too few tokens, a window setting the text or a model rules out,
	// models of different vocabularies, a missing tokenizer. Every error of
	// this package about its inputs wraps it ([WindowError], [VocabError]
	// and [TokenError] included); errors of package model, tokenizer,
	// checkpoint and onnx pass through unchanged.
	ErrInput = errors.New("invalid input")
	// ErrNoTokenizer reports a model path without a tokenizer.json beside
	// it (see [LoadTokenizer]); it also matches ErrInput.
	ErrNoTokenizer = errors.New("no tokenizer.json")
)

// inputError is an input eval refuses; it prints as its message alone and
// matches ErrInput and, when set, a more specific sentinel.
type inputError struct {
	msg  string
	kind error
}

func (e *inputError) Error() string { return e.msg }

func (e *inputError) Is(target error) bool {
	return target == ErrInput || (e.kind != nil && target == e.kind)
}

func inputErrorf(format string, args ...any) error {
	return &inputError{msg: fmt.Sprintf(format, args...)}
}

// A WindowError is a window setting that cannot be used: a context longer
// than a model's positions (Positions > 0), or a stride longer than the
// context (Positions == 0). It matches [ErrInput].
type WindowError struct {
	Ctx, Stride int
	// Positions is the model's number of positions when Ctx exceeds it.
	Positions int
	// Model labels the model whose positions Ctx exceeds.
	Model string
}

func (e *WindowError) Error() string {
	if e.Positions > 0 {
		return fmt.Sprintf("ctx %d is larger than the %d positions of %s", e.Ctx, e.Positions, e.Model)
	}
	return fmt.Sprintf("stride %d is larger than ctx %d (tokens between windows would never be scored)", e.Stride, e.Ctx)
}

// Is reports whether target is ErrInput.
func (e *WindowError) Is(target error) bool { return target == ErrInput }

// A VocabError is a model whose vocabulary differs from the base model's:
// the two cannot be compared. It matches [ErrInput].
type VocabError struct {
	Model     string // the model's label
	Vocab     int    // its vocabulary size
	Base      string // the base model's label (Options.BaseLabel)
	BaseVocab int    // its vocabulary size
}

func (e *VocabError) Error() string {
	return fmt.Sprintf("base %s has a vocabulary of %d tokens but %s has %d: they cannot be compared", e.Base, e.BaseVocab, e.Model, e.Vocab)
}

// Is reports whether target is ErrInput.
func (e *VocabError) Is(target error) bool { return target == ErrInput }

// A TokenError is a token id of the tokenizer outside a model's vocabulary:
// the tokenizer does not belong to the model. It matches [ErrInput].
type TokenError struct {
	ID, Pos int    // the token id and its position in the text's tokens
	Vocab   int    // the model's vocabulary size
	Model   string // the model's label
}

func (e *TokenError) Error() string {
	return fmt.Sprintf("the tokenizer gives id %d at position %d, outside the model's vocabulary of %d", e.ID, e.Pos, e.Vocab)
}

// Is reports whether target is ErrInput.
func (e *TokenError) Is(target error) bool { return target == ErrInput }
