package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"unsafe"
)

// IEEE 754 binary32 layout.
const (
	f32SignMask = 0x80000000
	f32ExpMask  = 0x7f800000
	f32MantMask = 0x007fffff
	f32QuietBit = 0x00400000
	f32Bias     = 127
)

// IEEE 754 binary16 layout.
const (
	f16SignMask = 0x8000
	f16ExpMask  = 0x7c00
	f16MantMask = 0x03ff
	f16QuietBit = 0x0200
	f16Bias     = 15
)

// F16ToF32 converts the IEEE 754 half-precision value with bit pattern h to
// float32. Every half value, including subnormals and ±0, is exactly
// representable as a float32, so the conversion is exact. ±Inf stay ±Inf; a
// NaN stays a NaN of the same sign with its payload shifted into the top
// payload bits, and is quieted as IEEE 754 (and x86 F16C) conversions do.
func F16ToF32(h uint16) float32 {
	sign := uint32(h&f16SignMask) << 16
	exp := uint32(h&f16ExpMask) >> 10
	mant := uint32(h & f16MantMask)

	switch exp {
	case 0x1f: // Inf or NaN
		if mant == 0 {
			return math.Float32frombits(sign | f32ExpMask)
		}
		return math.Float32frombits(sign | f32ExpMask | f32QuietBit | mant<<13)
	case 0: // ±0 or subnormal
		if mant == 0 {
			return math.Float32frombits(sign)
		}
		// Normalise: shift the leading one up to the implicit bit (bit 10).
		// The value is mant·2^-24, so the exponent drops by one per shift.
		shift := uint32(bits.LeadingZeros32(mant)) - 21
		mant = (mant << shift) & f16MantMask
		exp = f32Bias - f16Bias + 1 - shift
		return math.Float32frombits(sign | exp<<23 | mant<<13)
	}
	return math.Float32frombits(sign | (exp+f32Bias-f16Bias)<<23 | mant<<13)
}

// F32ToF16 converts f to the bit pattern of the nearest IEEE 754
// half-precision value, rounding ties to even. Values too large for a half
// round to ±Inf (as IEEE 754 prescribes, everything from 65520 up), values too
// small round to a subnormal or ±0 with the same round-to-nearest-even rule,
// and the sign of zero is kept. A NaN becomes a quiet NaN with the same sign
// and the top ten bits of the float32 payload; it never becomes an Inf.
func F32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & f16SignMask
	exp := int32(b&f32ExpMask) >> 23
	mant := b & f32MantMask

	if exp == 0xff { // Inf or NaN
		if mant == 0 {
			return sign | f16ExpMask
		}
		return sign | f16ExpMask | f16QuietBit | uint16(mant>>13)
	}

	e := exp - f32Bias + f16Bias // biased half exponent
	if e >= 0x1f {
		return sign | f16ExpMask
	}
	if e <= 0 {
		// Subnormal half (or zero): its unit is 2^-24 and the float32
		// value is (mant|implicit)·2^(exp-150), so the half mantissa is
		// the 24-bit significand shifted right by 126-exp = 14-e bits.
		// At 25 bits or more the value is below half a unit and rounds
		// to zero. Float32 subnormals (exp 0) always land here.
		shift := uint32(14 - e)
		if shift > 24 {
			return sign
		}
		return sign | uint16(roundShiftRNE(mant|0x00800000, shift))
	}
	// Normal half: keep the top 10 mantissa bits and round on the other 13.
	// A carry out of the mantissa correctly bumps the exponent, up to Inf.
	return sign | uint16(roundShiftRNE(uint32(e)<<23|mant, 13))
}

// roundShiftRNE returns x / 2^s rounded to nearest, ties to even, for
// 1 <= s <= 31.
func roundShiftRNE(x, s uint32) uint32 {
	q := x >> s
	r := x & (1<<s - 1)
	half := uint32(1) << (s - 1)
	if r > half || r == half && q&1 == 1 {
		q++
	}
	return q
}

// BF16ToF32 converts the bfloat16 value with bit pattern h to float32. A
// bfloat16 is the upper half of a float32, so the conversion is exact.
func BF16ToF32(h uint16) float32 {
	return math.Float32frombits(uint32(h) << 16)
}

// F32ToBF16 converts f to the bit pattern of the nearest bfloat16, rounding
// the discarded lower 16 bits to nearest with ties to even. Finite values
// beyond the largest bfloat16 round to ±Inf where round-to-nearest-even says
// so. A NaN stays a NaN of the same sign: its top payload bits are kept and
// the quiet bit is set, so it can never collapse into an Inf.
func F32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&f32ExpMask == f32ExpMask && b&f32MantMask != 0 {
		return uint16(b>>16) | 0x0040
	}
	// Adding 0x7fff rounds up exactly when the lower half exceeds 0x8000;
	// the extra lsb of the kept half breaks a tie towards even.
	b += 0x7fff + (b>>16)&1
	return uint16(b >> 16)
}

// F8E4M3ToF32 converts an OCP FP8 E4M3FN value (safetensors "F8_E4M3",
// torch.float8_e4m3fn) to float32, exactly. The format has a sign bit, four
// exponent bits with bias 7 and three mantissa bits. It has no infinities:
// S.1111.111 (0x7f, 0xff) is NaN and every other pattern is finite, the
// largest being 448. Exponent 0 encodes ±0 and the subnormals mantissa/8·2^-6.
func F8E4M3ToF32(b uint8) float32 {
	sign := uint32(b&0x80) << 24
	exp := uint32(b>>3) & 0x0f
	mant := uint32(b & 0x07)

	if exp == 0x0f && mant == 0x07 {
		return math.Float32frombits(sign | f32ExpMask | f32QuietBit)
	}
	if exp == 0 {
		// mant·2^-9 is exact in float32; rebuilding it from bits keeps the
		// sign of zero.
		v := float32(mant) * (1.0 / 512)
		return math.Float32frombits(sign | math.Float32bits(v))
	}
	return math.Float32frombits(sign | (exp+f32Bias-7)<<23 | mant<<20)
}

// F8E5M2ToF32 converts an FP8 E5M2 value (safetensors "F8_E5M2",
// torch.float8_e5m2) to float32, exactly. E5M2 is IEEE-like (bias 15, with
// ±Inf and NaN) and is bit for bit the upper byte of an IEEE half.
func F8E5M2ToF32(b uint8) float32 {
	return F16ToF32(uint16(b) << 8)
}

// DecodeF32 decodes len(dst) little-endian elements of dtype dt from src into
// dst. F32 is copied bit for bit; F16, BF16, F8_E4M3 and F8_E5M2 convert
// exactly; F64 rounds to the nearest float32 (ties to even). It returns an
// error wrapping [ErrDType] if dt is not one of these and an error if src
// does not hold exactly len(dst) elements.
func DecodeF32(dst []float32, src []byte, dt DType) error {
	if err := checkFloat(dt); err != nil {
		return err
	}
	if err := checkLen(len(dst), len(src), dt, "decode"); err != nil {
		return err
	}
	switch dt {
	case F32:
		decodeF32(dst, src)
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(src[8*i:])))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToF32(binary.LittleEndian.Uint16(src[2*i:]))
		}
	case F8_E4M3:
		for i := range dst {
			dst[i] = F8E4M3ToF32(src[i])
		}
	case F8_E5M2:
		for i := range dst {
			dst[i] = F8E5M2ToF32(src[i])
		}
	default:
		// Unreachable while checkFloat and this switch agree.
		return fmt.Errorf("%w %q: cannot decode to float32", ErrDType, string(dt))
	}
	return nil
}

// EncodeF32 encodes src into dst as little-endian elements of dtype dt. F32
// is copied bit for bit, F64 is exact, and F16 and BF16 round to nearest with
// ties to even (see [F32ToF16] and [F32ToBF16]). It returns an error wrapping
// [ErrDType] for any other dtype, including the FP8 types, and an error if
// dst is not exactly len(src) elements long.
func EncodeF32(dst []byte, src []float32, dt DType) error {
	switch dt {
	case F32, F64, F16, BF16:
	default:
		return fmt.Errorf("%w %q: cannot encode from float32", ErrDType, string(dt))
	}
	if err := checkLen(len(src), len(dst), dt, "encode"); err != nil {
		return err
	}
	switch dt {
	case F32:
		encodeF32(dst, src)
	case F64:
		for i, v := range src {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], F32ToBF16(v))
		}
	}
	return nil
}

// checkLen reports an error unless nbytes is exactly n elements of dt. It
// divides rather than multiplies so that no product can overflow.
func checkLen(n, nbytes int, dt DType, op string) error {
	size := dt.Size()
	if nbytes%size != 0 || nbytes/size != n {
		return fmt.Errorf("tensor: %s %s: %d bytes for %d elements, want %d bytes",
			op, dt, nbytes, n, n*size)
	}
	return nil
}

// LittleEndianHost reports whether the machine stores integers (and floats)
// least significant byte first, which lets F32 data be copied directly.
func LittleEndianHost() bool {
	x := uint16(1)
	return *(*byte)(unsafe.Pointer(&x)) == 1
}

// F32Bytes returns the memory of s viewed as bytes (no copy). Safetensors
// data is little-endian, so on a LittleEndianHost this is the F32 encoding.
func F32Bytes(s []float32) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s))), 4*len(s))
}

// decodeF32 copies little-endian float32 data from src (4·len(dst) bytes)
// into dst. On a little-endian host this is a plain memory copy; writing
// through a byte view of dst needs no alignment of src.
func decodeF32(dst []float32, src []byte) {
	if LittleEndianHost() {
		copy(F32Bytes(dst), src)
		return
	}
	decodeF32Portable(dst, src)
}

// decodeF32Portable is decodeF32 for any host byte order.
func decodeF32Portable(dst []float32, src []byte) {
	for i := range dst {
		dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(src[4*i:]))
	}
}

// encodeF32 writes src into dst (4·len(src) bytes) as little-endian float32.
func encodeF32(dst []byte, src []float32) {
	if LittleEndianHost() {
		copy(dst, F32Bytes(src))
		return
	}
	encodeF32Portable(dst, src)
}

// encodeF32Portable is encodeF32 for any host byte order.
func encodeF32Portable(dst []byte, src []float32) {
	for i, v := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
	}
}
