package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/model"
	onnxrun "github.com/lmsparse/lmsparse/onnx/run"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/sae"
	"github.com/lmsparse/lmsparse/shrink"
	"github.com/lmsparse/lmsparse/sparsify"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tokenizer"
	"github.com/lmsparse/lmsparse/train"
)

// Process exit codes.
const (
	exitOK      = 0 // success
	exitFailure = 1 // runtime failure: I/O error, out of disk, interrupted
	exitBadArgs = 2 // bad usage or bad input file
	exitGate    = 3 // the run succeeded but a fidelity gate failed
)

var (
	// errUsage marks a command line that cannot run: unknown flag,
	// missing argument, invalid value.
	errUsage = errors.New("usage")
)

// exitCodes is the one table from errors to exit codes; the first match
// wins, and an error matching nothing is a runtime failure.
var exitCodes = []struct {
	err  error
	code int
}{
	{compress.ErrGateFailed, exitGate},
	{compress.ErrInvalid, exitBadArgs},
	{sparsify.ErrInvalid, exitBadArgs},
	{shrink.ErrInvalid, exitBadArgs},
	{train.ErrInvalid, exitBadArgs},
	{errUsage, exitBadArgs},
	{safetensors.ErrFormat, exitBadArgs},
	{checkpoint.ErrFormat, exitBadArgs},
	{checkpoint.ErrUnsupported, exitBadArgs},
	{checkpoint.ErrOutput, exitBadArgs},
	{tensor.ErrShape, exitBadArgs},
	{prune.ErrInvalid, exitBadArgs},
	{sae.ErrInvalid, exitBadArgs},
	{sparse.ErrFormat, exitBadArgs},
	{model.ErrInput, exitBadArgs},
	{eval.ErrInput, exitBadArgs},
	{tokenizer.ErrFormat, exitBadArgs},
	{tokenizer.ErrUnsupported, exitBadArgs},
	{report.ErrFormat, exitBadArgs},
	{onnx.ErrFormat, exitBadArgs},
	{onnx.ErrUnsupported, exitBadArgs},
	{onnx.ErrTooLarge, exitBadArgs},
	{onnxrun.ErrUnsupported, exitBadArgs},
	{onnxrun.ErrInvalid, exitBadArgs},
	{onnxrun.ErrInput, exitBadArgs},
	{tensor.ErrDType, exitBadArgs},
	{fs.ErrNotExist, exitBadArgs},
}

func exitCode(err error) int {
	for _, e := range exitCodes {
		if errors.Is(err, e.err) {
			return e.code
		}
	}
	return exitFailure
}

// usageError is a bad command line; it prints as its message alone.
type usageError struct{ msg string }

func (e *usageError) Error() string        { return e.msg }
func (e *usageError) Is(target error) bool { return target == errUsage }

func usageErrorf(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// checkPath is a usage error naming the flag when path, given as --flag
// (what), cannot be opened.
func checkPath(verb, flag, what, path string) error {
	if _, err := os.Stat(path); err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return usageErrorf("%s: --%s %s (%s): %v", verb, flag, path, what, err)
	}
	return nil
}
