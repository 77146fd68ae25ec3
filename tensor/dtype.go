package tensor

import (
	"errors"
	"fmt"
)

// DType names an element type with the spelling used by safetensors
// ("F32", "BF16", "F8_E4M3", ...). Any other string is a valid DType too: it
// is carried through untouched ("passthrough") so that tensors of types this
// package does not know can still be copied byte for byte.
type DType string

// Element types known to lmsparse. Their sizes are fixed; see [DType.Size].
const (
	F64     DType = "F64"
	F32     DType = "F32"
	F16     DType = "F16"
	BF16    DType = "BF16"
	F8_E4M3 DType = "F8_E4M3" // OCP FP8 E4M3FN (torch.float8_e4m3fn): no infinities.
	F8_E5M2 DType = "F8_E5M2" // FP8 E5M2 (torch.float8_e5m2): IEEE-like.
	I64     DType = "I64"
	I32     DType = "I32"
	I16     DType = "I16"
	I8      DType = "I8"
	U64     DType = "U64"
	U32     DType = "U32"
	U16     DType = "U16"
	U8      DType = "U8"
	BOOL    DType = "BOOL"
)

// ErrDType reports an operation on a dtype that does not support it, such
// as decoding a passthrough dtype to float32.
var ErrDType = errors.New("unsupported dtype")

// ErrShape reports an invalid shape: a negative dimension or an element or
// byte count that does not fit in an int64.
var ErrShape = errors.New("invalid shape")

// Size returns the number of bytes per element, or 0 for a passthrough dtype
// whose size lmsparse does not know.
func (d DType) Size() int {
	switch d {
	case F64, I64, U64:
		return 8
	case F32, I32, U32:
		return 4
	case F16, BF16, I16, U16:
		return 2
	case F8_E4M3, F8_E5M2, I8, U8, BOOL:
		return 1
	}
	return 0
}

// Known reports whether d is one of the dtypes listed in this package.
func (d DType) Known() bool { return d.Size() != 0 }

// IsFloat reports whether d is a floating-point dtype lmsparse can decode to
// float32.
func (d DType) IsFloat() bool {
	switch d {
	case F64, F32, F16, BF16, F8_E4M3, F8_E5M2:
		return true
	}
	return false
}

// Valid reports whether d is a plausible dtype name: non-empty, at most 32
// bytes of ASCII letters, digits and underscores. Passthrough dtypes must be
// valid names so that they can be written back into a header verbatim.
func (d DType) Valid() bool {
	if len(d) == 0 || len(d) > 32 {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func (d DType) String() string { return string(d) }

// checkFloat returns an error wrapping ErrDType unless d can be decoded to float32.
func checkFloat(d DType) error {
	if !d.IsFloat() {
		return fmt.Errorf("%w %q: not a floating-point type", ErrDType, string(d))
	}
	return nil
}
