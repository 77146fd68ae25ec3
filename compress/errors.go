package compress

import (
	"errors"
	"fmt"
)

// ErrInvalid reports a recipe or options that cannot run: a wrong key or
// type in the YAML, inconsistent stages, bad eval settings. Messages name
// the recipe file and line where there is one.
var ErrInvalid = errors.New("invalid recipe")

// ErrGateFailed is returned by Plan.Run, beside a complete report, when a
// fidelity gate failed; every file is written.
var ErrGateFailed = errors.New("fidelity gate failed")

// ErrEmpty reports a recipe with nothing to do: neither a prune nor an sae
// stage (it wraps ErrInvalid too).
var ErrEmpty = errors.New("nothing to do")

// invalidError is an ErrInvalid error that prints as its message alone.
type invalidError struct {
	msg   string
	cause error
}

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Is(target error) bool {
	return target == ErrInvalid || (e.cause != nil && target == e.cause)
}

func invalidf(format string, args ...any) error {
	return &invalidError{msg: fmt.Sprintf(format, args...)}
}
