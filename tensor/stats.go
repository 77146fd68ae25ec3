package tensor

import (
	"encoding/binary"
	"fmt"
)

// Stats counts special values in tensor data: exact zeros (+0 and -0 for
// floats, all-zero bits for integers and BOOL), NaNs and infinities.
type Stats struct {
	Zeros, NaN, Inf int64
}

// Add counts the elements of b, little-endian data of dtype d whose length
// is a multiple of the element size, so a tensor can be scanned in chunks.
// It fails with ErrDType for a passthrough dtype.
func (s *Stats) Add(d DType, b []byte) error {
	size := d.Size()
	if size == 0 {
		return fmt.Errorf("%w %q: cannot scan values", ErrDType, string(d))
	}
	if len(b)%size != 0 {
		return fmt.Errorf("stats of %s: %d bytes is not a whole number of elements", d, len(b))
	}
	switch d {
	case F32:
		s.addF32(b)
	case F64:
		for i := 0; i+8 <= len(b); i += 8 {
			s.float(binary.LittleEndian.Uint64(b[i:]), 0x7fffffffffffffff, 0x7ff0000000000000)
		}
	case F16:
		for i := 0; i+2 <= len(b); i += 2 {
			s.float(uint64(binary.LittleEndian.Uint16(b[i:])), 0x7fff, 0x7c00)
		}
	case BF16:
		for i := 0; i+2 <= len(b); i += 2 {
			s.float(uint64(binary.LittleEndian.Uint16(b[i:])), 0x7fff, 0x7f80)
		}
	case F8_E5M2:
		for _, v := range b {
			s.float(uint64(v), 0x7f, 0x7c)
		}
	case F8_E4M3:
		// E4M3FN has no infinities; S.1111.111 is NaN.
		for _, v := range b {
			switch v & 0x7f {
			case 0:
				s.Zeros++
			case 0x7f:
				s.NaN++
			}
		}
	default:
		for i := 0; i < len(b); i += size {
			zero := true
			for _, c := range b[i : i+size] {
				if c != 0 {
					zero = false
					break
				}
			}
			if zero {
				s.Zeros++
			}
		}
	}
	return nil
}

// float classifies one IEEE value: abs masks off the sign, exp is the
// exponent field with all bits set.
// addF32 is the F32 case without branches (weights are scanned in bulk):
// with a = bits &^ sign, a−1 wraps to the top bit only for a = 0, and
// 0x7f7fffff−a does for the non-finite a > 0x7f7fffff (+Inf's bits are
// 0x7f800000, NaNs are above).
func (s *Stats) addF32(b []byte) {
	var zeros, special, inf uint32
	flush := func() {
		s.Zeros += int64(zeros)
		s.Inf += int64(inf)
		s.NaN += int64(special - inf)
		zeros, special, inf = 0, 0, 0
	}
	for len(b) >= 4 {
		chunk := b[:min(len(b), 1<<30)&^3] // 32-bit counters cannot wrap
		b = b[len(chunk):]
		for i := 0; i+4 <= len(chunk); i += 4 {
			a := binary.LittleEndian.Uint32(chunk[i:]) & 0x7fffffff
			zeros += (a - 1) >> 31
			special += (0x7f7fffff - a) >> 31
			inf += ((a ^ 0x7f800000) - 1) >> 31
		}
		flush()
	}
}

func (s *Stats) float(v, abs, exp uint64) {
	a := v & abs
	switch {
	case a == 0:
		s.Zeros++
	case a&exp == exp:
		if a == exp {
			s.Inf++
		} else {
			s.NaN++
		}
	}
}
