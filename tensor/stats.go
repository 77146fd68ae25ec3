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
		s.addF32(b[s.addFast(b, 4, 0x7f800000):])
	case F64:
		for i := 0; i+8 <= len(b); i += 8 {
			s.float(binary.LittleEndian.Uint64(b[i:]), 0x7fffffffffffffff, 0x7ff0000000000000)
		}
	case F16:
		for i := s.addFast(b, 2, 0x7c00); i+2 <= len(b); i += 2 {
			s.float(uint64(binary.LittleEndian.Uint16(b[i:])), 0x7fff, 0x7c00)
		}
	case BF16:
		for i := s.addFast(b, 2, 0x7f80); i+2 <= len(b); i += 2 {
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
		chunk := b[:min(len(b), 1<<30)&^3] // 32-bit counters cannot wrap (2·words < 2^29)
		b = b[len(chunk):]
		// Two elements per 8-byte load, as 32-bit lanes of a uint64 (SWAR):
		// with a lane's magnitude a < 2^31, a + 0x7fffffff has bit 31 set
		// exactly when a != 0, and a + 0x00800000 exactly when a >=
		// 0x7f800000 (Inf or NaN); neither carries into the next lane. The
		// bits are summed per lane: each lane's sum stays below 2^32 as a
		// chunk holds fewer than 2^32 words.
		const (
			abs  = 0x7fffffff_7fffffff
			high = 0x80000000_80000000
			spec = 0x00800000_00800000
			infs = 0x7f800000_7f800000
		)
		var nz, sp, notInf, nz1, sp1, notInf1 uint64
		j := 0
		for ; j+16 <= len(chunk); j += 16 {
			w := chunk[j : j+16 : j+16]
			a := binary.LittleEndian.Uint64(w) & abs
			c := binary.LittleEndian.Uint64(w[8:]) & abs
			nz += (a + abs) & high >> 31
			nz1 += (c + abs) & high >> 31
			sp += (a + spec) & high >> 31
			sp1 += (c + spec) & high >> 31
			notInf += ((a ^ infs) + abs) & high >> 31
			notInf1 += ((c ^ infs) + abs) & high >> 31
		}
		nz, sp, notInf = nz+nz1, sp+sp1, notInf+notInf1
		for ; j+8 <= len(chunk); j += 8 {
			a := binary.LittleEndian.Uint64(chunk[j:]) & abs
			nz += (a + abs) & high >> 31
			sp += (a + spec) & high >> 31
			notInf += ((a ^ infs) + abs) & high >> 31
		}
		words := uint32(j / 8)
		zeros += 2*words - uint32(nz) - uint32(nz>>32)
		special += uint32(sp) + uint32(sp>>32)
		inf += 2*words - uint32(notInf) - uint32(notInf>>32)
		for ; j+4 <= len(chunk); j += 4 {
			a := binary.LittleEndian.Uint32(chunk[j:]) & 0x7fffffff
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
