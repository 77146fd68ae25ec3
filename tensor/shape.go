package tensor

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// Shape lists the dimensions of a tensor, outermost first. A nil or empty
// Shape is a scalar with one element.
type Shape []int64

// MaxDims bounds the rank of a shape read from a file.
const MaxDims = 16

// Elems returns the number of elements, checking that no dimension is
// negative and that the product fits in an int64.
func (s Shape) Elems() (int64, error) {
	if len(s) > MaxDims {
		return 0, fmt.Errorf("%w: %d dimensions (at most %d)", ErrShape, len(s), MaxDims)
	}
	zero := false
	for _, d := range s {
		if d < 0 {
			return 0, fmt.Errorf("%w %v: negative dimension %d", ErrShape, s, d)
		}
		zero = zero || d == 0
	}
	if zero {
		return 0, nil // however large the other dimensions
	}
	n := int64(1)
	for _, d := range s {
		var err error
		if n, err = MulInt64(n, d); err != nil {
			return 0, fmt.Errorf("%w %v: element count overflows int64", ErrShape, s)
		}
	}
	return n, nil
}

// Bytes returns the number of bytes a tensor of this shape and dtype
// occupies, checking for overflow. It fails with ErrDType for a passthrough
// dtype, whose element size is unknown.
func (s Shape) Bytes(d DType) (int64, error) {
	n, err := s.Elems()
	if err != nil {
		return 0, err
	}
	size := d.Size()
	if size == 0 {
		return 0, fmt.Errorf("%w %q: element size unknown", ErrDType, string(d))
	}
	b, err := MulInt64(n, int64(size))
	if err != nil {
		return 0, fmt.Errorf("%w %v %s: byte count overflows int64", ErrShape, s, d)
	}
	return b, nil
}

// Rows2D returns rows and columns of a 2-D shape.
func (s Shape) Rows2D() (rows, cols int64, ok bool) {
	if len(s) != 2 {
		return 0, 0, false
	}
	return s[0], s[1], true
}

// Equal reports whether two shapes have the same dimensions.
func (s Shape) Equal(t Shape) bool {
	if len(s) != len(t) {
		return false
	}
	for i := range s {
		if s[i] != t[i] {
			return false
		}
	}
	return true
}

// Clone returns a copy of s.
func (s Shape) Clone() Shape { return append(Shape(nil), s...) }

// String formats the shape as "[512 64]".
func (s Shape) String() string {
	var b strings.Builder
	b.WriteByte('[')
	for i, d := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	b.WriteByte(']')
	return b.String()
}

// MulInt64 multiplies two non-negative int64 values, failing on overflow.
func MulInt64(a, b int64) (int64, error) {
	if a < 0 || b < 0 {
		return 0, fmt.Errorf("%w: negative operand", ErrShape)
	}
	hi, lo := bits.Mul64(uint64(a), uint64(b))
	if hi != 0 || lo > math.MaxInt64 {
		return 0, fmt.Errorf("%w: %d × %d overflows int64", ErrShape, a, b)
	}
	return int64(lo), nil
}

// AddInt64 adds two non-negative int64 values, failing on overflow.
func AddInt64(a, b int64) (int64, error) {
	if a < 0 || b < 0 || a > math.MaxInt64-b {
		return 0, fmt.Errorf("%w: %d + %d overflows int64", ErrShape, a, b)
	}
	return a + b, nil
}
