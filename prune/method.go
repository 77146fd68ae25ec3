package prune

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ErrInvalid reports a pruning method or input that cannot be pruned: a
// sparsity outside [0, 1), a bad N:M pattern, a NaN weight.
var ErrInvalid = errors.New("invalid pruning")

// Scope says over which elements an unstructured threshold is chosen.
type Scope string

// Scopes of unstructured magnitude pruning.
const (
	ScopeTensor Scope = "tensor" // k = round(S·n) smallest in each tensor
	ScopeRow    Scope = "row"    // k = round(S·cols) smallest in each output row
	ScopeGlobal Scope = "global" // one threshold over all target tensors
)

// Structure names a structured mode.
type Structure string

// Structured modes: whole output rows or whole input columns.
const (
	StructNone Structure = ""
	StructRows Structure = "rows"
	StructCols Structure = "cols"
)

// Method is a pruning method. Exactly one of three families applies:
// N:M when M > 0; structured when Structured is set; otherwise
// unstructured magnitude pruning at Sparsity over Scope.
type Method struct {
	Sparsity   float64
	Scope      Scope
	N, M       int
	Structured Structure
}

// MaxM bounds the group size of an N:M pattern.
const MaxM = 1 << 16

// Validate checks the method.
func (m Method) Validate() error {
	if m.M > 0 || m.N > 0 {
		switch {
		case m.M <= 0:
			return fmt.Errorf("%w: pattern %d:%d: M must be at least 1", ErrInvalid, m.N, m.M)
		case m.M > MaxM:
			return fmt.Errorf("%w: pattern %d:%d: M is larger than %d", ErrInvalid, m.N, m.M, MaxM)
		case m.N < 0 || m.N > m.M:
			return fmt.Errorf("%w: pattern %d:%d: N must be between 0 and M", ErrInvalid, m.N, m.M)
		case m.Structured != StructNone:
			return fmt.Errorf("%w: an N:M pattern cannot be combined with structured pruning", ErrInvalid)
		}
		return nil
	}
	if math.IsNaN(m.Sparsity) || m.Sparsity < 0 || m.Sparsity >= 1 {
		return fmt.Errorf("%w: sparsity %g is outside [0, 1)", ErrInvalid, m.Sparsity)
	}
	switch m.Structured {
	case StructNone, StructRows, StructCols:
	default:
		return fmt.Errorf("%w: structured mode %q (want rows or cols)", ErrInvalid, m.Structured)
	}
	switch m.Scope {
	case ScopeTensor, ScopeRow, ScopeGlobal:
	case "":
		if m.Structured == StructNone {
			return fmt.Errorf("%w: no scope given", ErrInvalid)
		}
	default:
		return fmt.Errorf("%w: scope %q (want tensor, row or global)", ErrInvalid, m.Scope)
	}
	return nil
}

// IsNM reports whether m is an N:M pattern.
func (m Method) IsNM() bool { return m.M > 0 }

// String describes the method, e.g. "magnitude 50% per tensor", "2:4".
func (m Method) String() string {
	switch {
	case m.IsNM():
		return fmt.Sprintf("%d:%d", m.N, m.M)
	case m.Structured != StructNone:
		return fmt.Sprintf("structured %s %g%%", m.Structured, 100*m.Sparsity)
	}
	return fmt.Sprintf("magnitude %g%% per %s", 100*m.Sparsity, m.Scope)
}

// ParsePattern parses an N:M pattern such as "2:4" into a Method (not yet
// validated: see Method.Validate). Errors wrap ErrInvalid.
func ParsePattern(s string) (Method, error) {
	n, m, ok := strings.Cut(s, ":")
	ni, err1 := strconv.Atoi(n)
	mi, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil {
		return Method{}, fmt.Errorf("%w: want N:M, e.g. 2:4", ErrInvalid)
	}
	if mi == 0 {
		return Method{}, fmt.Errorf("%w: M must be at least 1", ErrInvalid)
	}
	return Method{N: ni, M: mi}, nil
}

// Reason is err's message without the ErrInvalid prefix.
func Reason(err error) string {
	return strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
}
