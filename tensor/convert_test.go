package tensor

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

// Fixed seeds so that failures are reproducible; each test logs its seed.
const (
	seedF16   = 0x5eed_f16
	seedBF16  = 0x5eed_bf16
	seedCodec = 0x5eed_c0dec
)

func isNaN32(f float32) bool { return f != f }

// signBit32 reports whether the sign bit of f is set (also for NaN and -0).
func signBit32(f float32) bool { return math.Float32bits(f)&f32SignMask != 0 }

// isNaN16 reports whether h is an IEEE half NaN pattern.
func isNaN16(h uint16) bool { return h&f16ExpMask == f16ExpMask && h&f16MantMask != 0 }

// isNaNBF16 reports whether h is a bfloat16 NaN pattern.
func isNaNBF16(h uint16) bool { return h&0x7f80 == 0x7f80 && h&0x007f != 0 }

// checkF32ToF16 compares F32ToF16(f) with float16.Fromfloat32(f), which
// rounds to nearest with ties to even. Both turn a NaN into sign | 0x7e00 |
// top ten payload bits, so NaNs are compared bit for bit too; should the
// reference ever disagree on a NaN payload detail only NaN-ness and sign
// would matter, and those are checked separately first.
func checkF32ToF16(t *testing.T, f float32) bool {
	t.Helper()
	got := F32ToF16(f)
	want := float16.Fromfloat32(f).Bits()
	if isNaN32(f) {
		if !isNaN16(got) || got&f16SignMask != want&f16SignMask {
			t.Errorf("F32ToF16(NaN %#08x) = %#04x, want a NaN with sign of %#04x",
				math.Float32bits(f), got, want)
			return false
		}
	}
	if got != want {
		t.Errorf("F32ToF16(%g [%#08x]) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		return false
	}
	return true
}

func TestF16ToF32AllPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		got := F16ToF32(h)
		want := float16.Frombits(h).Float32()
		if isNaN16(h) {
			// Both quiet the NaN and shift its payload up, so the bits
			// agree; the spec only requires NaN-ness and sign.
			if !isNaN32(got) || signBit32(got) != (h&f16SignMask != 0) {
				t.Errorf("F16ToF32(%#04x) = %#08x, want NaN with sign %v",
					h, math.Float32bits(got), h&f16SignMask != 0)
			}
			if math.Float32bits(got)&f32MantMask>>13&0x1ff != uint32(h&0x1ff) {
				t.Errorf("F16ToF32(%#04x) = %#08x lost NaN payload", h, math.Float32bits(got))
			}
		}
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("F16ToF32(%#04x) = %g [%#08x], want %g [%#08x]",
				h, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
}

func TestF16RoundTrip(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		back := F32ToF16(F16ToF32(h))
		if isNaN16(h) {
			if !isNaN16(back) || back&f16SignMask != h&f16SignMask {
				t.Errorf("F32ToF16(F16ToF32(%#04x)) = %#04x, want NaN of same sign", h, back)
			}
			continue
		}
		if back != h {
			t.Errorf("F32ToF16(F16ToF32(%#04x)) = %#04x", h, back)
		}
	}
}

func TestF16Specials(t *testing.T) {
	for _, c := range []struct {
		h uint16
		f float32
	}{
		{0x0000, 0},
		{0x3c00, 1},
		{0xc000, -2},
		{0x7bff, 65504},
		{0xfbff, -65504},
		{0x0400, 1.0 / (1 << 14)},       // smallest normal
		{0x0001, 1.0 / (1 << 24)},       // smallest subnormal
		{0x03ff, 1023.0 / (1 << 24)},    // largest subnormal
		{0x8001, -1.0 / (1 << 24)},      // negative subnormal
		{0x3555, 0.333251953125},        // nearest half to 1/3
		{0x7c00, float32(math.Inf(1))},  // +Inf
		{0xfc00, float32(math.Inf(-1))}, // -Inf
	} {
		if got := F16ToF32(c.h); got != c.f {
			t.Errorf("F16ToF32(%#04x) = %g, want %g", c.h, got, c.f)
		}
		if got := F32ToF16(c.f); got != c.h {
			t.Errorf("F32ToF16(%g) = %#04x, want %#04x", c.f, got, c.h)
		}
	}
	if got := math.Float32bits(F16ToF32(0x8000)); got != 0x80000000 {
		t.Errorf("F16ToF32(0x8000) = %#08x, want -0", got)
	}
	if got := F32ToF16(float32(math.Copysign(0, -1))); got != 0x8000 {
		t.Errorf("F32ToF16(-0) = %#04x, want 0x8000", got)
	}
	// NaNs never turn into Inf, even when the payload lies below the
	// kept ten bits, and the sign survives.
	for _, b := range []uint32{0x7f800001, 0xff800001, 0x7fc00000, 0xffc00000, 0x7f801fff, 0x7fffffff} {
		got := F32ToF16(math.Float32frombits(b))
		if !isNaN16(got) || got&f16QuietBit == 0 || (got&f16SignMask != 0) != (b&f32SignMask != 0) {
			t.Errorf("F32ToF16(NaN %#08x) = %#04x, want quiet NaN of same sign", b, got)
		}
	}
	// Payload top bits are kept: 0x7fc0_2000 has payload bit 13 set.
	if got := F32ToF16(math.Float32frombits(0x7fc02000)); got != 0x7e01 {
		t.Errorf("F32ToF16(NaN 0x7fc02000) = %#04x, want 0x7e01", got)
	}
}

func TestF32ToF16AllHalfValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		checkF32ToF16(t, F16ToF32(uint16(i)))
	}
}

// TestF32ToF16Midpoints checks every midpoint between consecutive halves of
// the same sign (ties go to the even neighbour) and the float32 values just
// above and below it (they go to the nearer neighbour). The midpoint above
// 65504 is 65520, half way to the would-be next value 65536; it ties to the
// even "neighbour" 0x7c00, i.e. Inf.
func TestF32ToF16Midpoints(t *testing.T) {
	for lo := uint16(0); lo < 0x7c00; lo++ {
		hi := lo + 1
		a := float64(F16ToF32(lo))
		b := 65536.0 // value of 0x7c00 with the exponent range unbounded
		if hi != 0x7c00 {
			b = float64(F16ToF32(hi))
		}
		// 11-bit significands need 12 bits at the midpoint: exact in float32.
		mid := float32((a + b) / 2)
		if float64(mid) != (a+b)/2 {
			t.Fatalf("midpoint of %#04x and %#04x not exact in float32", lo, hi)
		}
		even := lo
		if lo&1 == 1 {
			even = hi
		}
		for _, sign := range []uint16{0, f16SignMask} {
			// m is the signed midpoint; away points from it away from zero.
			m, away := mid, float32(math.Inf(1))
			if sign != 0 {
				m, away = -mid, -away
			}
			for _, c := range []struct {
				f    float32
				want uint16
			}{
				{m, even | sign},
				{math.Nextafter32(m, 0), lo | sign},
				{math.Nextafter32(m, away), hi | sign},
			} {
				if got := F32ToF16(c.f); got != c.want {
					t.Errorf("F32ToF16(%g [%#08x]) = %#04x, want %#04x (between %#04x and %#04x)",
						c.f, math.Float32bits(c.f), got, c.want, lo|sign, hi|sign)
				}
				checkF32ToF16(t, c.f)
			}
		}
	}
}

func TestF32ToF16Edges(t *testing.T) {
	inf := float32(math.Inf(1))
	pow2 := func(e int) float32 { return float32(math.Ldexp(1, e)) }
	for _, c := range []struct {
		f    float32
		want uint16
	}{
		{65504, 0x7bff},
		{65519, 0x7bff},
		{math.Nextafter32(65520, 0), 0x7bff}, // just below the overflow threshold
		{65520, 0x7c00},                      // tie to even: rounds to Inf
		{65536, 0x7c00},
		{math.MaxFloat32, 0x7c00},
		{-math.MaxFloat32, 0xfc00},
		{inf, 0x7c00},
		{-inf, 0xfc00},
		{pow2(-14), 0x0400},                          // smallest normal
		{math.Nextafter32(pow2(-14), 0), 0x0400},     // rounds up into the normals
		{float32(2047 * math.Ldexp(1, -25)), 0x0400}, // midpoint 0x03ff/0x0400: tie to even
		{float32(2045 * math.Ldexp(1, -25)), 0x03fe}, // midpoint 0x03fe/0x03ff: tie to even
		{pow2(-24), 0x0001},                          // smallest subnormal
		{pow2(-25), 0x0000},                          // half of it: tie to even zero
		{-pow2(-25), 0x8000},                         // ... keeping the sign
		{math.Nextafter32(pow2(-25), 1), 0x0001},     // just above half: rounds up
		{math.Nextafter32(pow2(-25), 0), 0x0000},     // just below half
		{float32(3 * math.Ldexp(1, -25)), 0x0002},    // 1.5 units: tie to even 2
		{float32(5 * math.Ldexp(1, -25)), 0x0002},    // 2.5 units: tie to even 2
		{pow2(-26), 0x0000},                          // a quarter unit
		{pow2(-100), 0x0000},                         //
		{math.SmallestNonzeroFloat32, 0x0000},        // float32 subnormal
		{-math.SmallestNonzeroFloat32, 0x8000},       //
		{math.Float32frombits(0x007fffff), 0x0000},   // largest float32 subnormal
		{float32(1 + math.Ldexp(1, -11)), 0x3c00},    // 1 + half ulp: tie to even
		{float32(1 + 3*math.Ldexp(1, -11)), 0x3c02},  // 1 + 1.5 ulp: tie to even
		{2048 + 1, 0x6800},                           // ulp is 2 at 2048: tie to even
		{2048 + 3, 0x6802},                           //
		{float32(1 - math.Ldexp(1, -12)), 0x3c00},    // exponent boundary tie
		{math.Nextafter32(float32(1-math.Ldexp(1, -12)), 0), 0x3bff},
	} {
		if got := F32ToF16(c.f); got != c.want {
			t.Errorf("F32ToF16(%g [%#08x]) = %#04x, want %#04x", c.f, math.Float32bits(c.f), got, c.want)
		}
		checkF32ToF16(t, c.f)
	}
	// Exponents around both ends of the half range, every float32
	// exponent, a few mantissas each, both signs.
	for e := 0; e < 256; e++ {
		for _, m := range []uint32{0, 1, 0xfff, 0x1000, 0x1001, 0x2000, 0x3000, 0x7fffff, 0x400000, 0x7ff000} {
			for _, s := range []uint32{0, f32SignMask} {
				checkF32ToF16(t, math.Float32frombits(s|uint32(e)<<23|m))
			}
		}
	}
}

func TestF32ToF16Random(t *testing.T) {
	const n = 2_000_000
	t.Logf("seed %#x, %d float32 bit patterns", seedF16, n)
	r := rand.New(rand.NewPCG(seedF16, 0))
	fails := 0
	for i := 0; i < n && fails < 20; i++ {
		b := r.Uint32()
		if i&1 == 1 {
			// Half the samples confined to the float32 exponents that
			// land near or inside the half range (2^-26 .. 2^17).
			b = b&(f32SignMask|f32MantMask) | uint32(101+r.IntN(44))<<23
		}
		if !checkF32ToF16(t, math.Float32frombits(b)) {
			fails++
		}
	}
}

// refBF16 is an independent reference for F32ToBF16 on non-NaN input: it
// takes the two bfloat16 neighbours of f (truncation and the next pattern
// away from zero), measures both distances exactly in float64 and picks the
// nearer one, the even one on a tie. Beyond the largest finite bfloat16 the
// upper neighbour 0x7f80 counts as 2^128, as IEEE 754 rounding with an
// unbounded exponent prescribes.
func refBF16(f float32) uint16 {
	b := math.Float32bits(f)
	lo := uint16(b >> 16)
	if b&0xffff == 0 {
		return lo
	}
	hi := lo + 1
	x := math.Abs(float64(f))
	vlo := math.Abs(float64(math.Float32frombits(uint32(lo) << 16)))
	vhi := math.Ldexp(1, 128)
	if hi&0x7fff != 0x7f80 {
		vhi = math.Abs(float64(math.Float32frombits(uint32(hi) << 16)))
	}
	dlo, dhi := x-vlo, vhi-x // exact: both operands share a binade or are adjacent
	switch {
	case dlo < dhi:
		return lo
	case dhi < dlo:
		return hi
	case lo&1 == 0:
		return lo
	default:
		return hi
	}
}

func checkF32ToBF16(t *testing.T, f float32) bool {
	t.Helper()
	got := F32ToBF16(f)
	if isNaN32(f) {
		if !isNaNBF16(got) || got&0x8000 != uint16(math.Float32bits(f)>>16)&0x8000 {
			t.Errorf("F32ToBF16(NaN %#08x) = %#04x, want NaN of same sign", math.Float32bits(f), got)
			return false
		}
		return true
	}
	if want := refBF16(f); got != want {
		t.Errorf("F32ToBF16(%g [%#08x]) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		return false
	}
	return true
}

func TestBF16AllPatterns(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := uint16(i)
		f := BF16ToF32(h)
		if math.Float32bits(f) != uint32(h)<<16 {
			t.Errorf("BF16ToF32(%#04x) = %#08x", h, math.Float32bits(f))
		}
		if isNaNBF16(h) {
			if !isNaN32(f) {
				t.Errorf("BF16ToF32(%#04x) = %g, want NaN", h, f)
			}
			// A quiet NaN keeps its bits; a signalling one gets quieted.
			if got := F32ToBF16(f); got != h|0x0040 {
				t.Errorf("F32ToBF16(BF16ToF32(%#04x)) = %#04x, want %#04x", h, got, h|0x0040)
			}
			continue
		}
		if got := F32ToBF16(f); got != h {
			t.Errorf("F32ToBF16(BF16ToF32(%#04x)) = %#04x", h, got)
		}
		// Every tie pattern and its neighbours, for every upper half.
		for _, low := range []uint32{1, 0x7fff, 0x8000, 0x8001, 0xffff} {
			checkF32ToBF16(t, math.Float32frombits(uint32(h)<<16|low))
		}
	}
}

func TestF32ToBF16Cases(t *testing.T) {
	for _, c := range []struct {
		b    uint32
		want uint16
	}{
		{0x3f800000, 0x3f80},
		{0x3f808000, 0x3f80}, // tie, even below
		{0x3f818000, 0x3f82}, // tie, even above
		{0x3f808001, 0x3f81},
		{0x3f807fff, 0x3f80},
		{0xbf808000, 0xbf80}, // negative tie
		{0xbf818000, 0xbf82},
		{0x7f7fffff, 0x7f80}, // MaxFloat32 overflows to Inf
		{0xff7fffff, 0xff80},
		{0x7f7f7fff, 0x7f7f}, // stays at the largest finite bfloat16
		{0x7f7f8000, 0x7f80}, // tie between 0x7f7f (odd) and Inf
		{0x7f800000, 0x7f80}, // +Inf
		{0xff800000, 0xff80}, // -Inf
		{0x00000000, 0x0000},
		{0x80000000, 0x8000},
		{0x00008000, 0x0000}, // subnormal tie to even zero
		{0x00018000, 0x0002},
		{0x00000001, 0x0000},
		{0x7fc00000, 0x7fc0}, // quiet NaN
		{0x7f800001, 0x7fc0}, // signalling NaN whose payload is all in the low half
		{0xff800001, 0xffc0},
		{0x7fffffff, 0x7fff}, // must not carry into the sign
	} {
		if got := F32ToBF16(math.Float32frombits(c.b)); got != c.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", c.b, got, c.want)
		}
		checkF32ToBF16(t, math.Float32frombits(c.b))
	}
}

func TestF32ToBF16Random(t *testing.T) {
	const n = 2_000_000
	t.Logf("seed %#x, %d float32 bit patterns", seedBF16, n)
	r := rand.New(rand.NewPCG(seedBF16, 0))
	fails := 0
	for i := 0; i < n && fails < 20; i++ {
		if !checkF32ToBF16(t, math.Float32frombits(r.Uint32())) {
			fails++
		}
	}
}

// refE4M3 computes an E4M3FN value from the format definition: sign,
// four exponent bits with bias 7, three mantissa bits, subnormals at
// exponent 0, S.1111.111 NaN and no infinities.
func refE4M3(b uint8) float64 {
	s, e, m := b>>7, int(b>>3&0xf), float64(b&7)
	if e == 15 && m == 7 {
		return math.NaN()
	}
	v := math.Ldexp(m/8, -6)
	if e > 0 {
		v = math.Ldexp(1+m/8, e-7)
	}
	if s == 1 {
		v = -v
	}
	return v
}

func TestF8E4M3AllPatterns(t *testing.T) {
	for i := 0; i < 256; i++ {
		b := uint8(i)
		got := F8E4M3ToF32(b)
		want := refE4M3(b)
		if math.IsNaN(want) {
			if !isNaN32(got) || signBit32(got) != (b&0x80 != 0) {
				t.Errorf("F8E4M3ToF32(%#02x) = %g, want NaN of same sign", b, got)
			}
			continue
		}
		if float64(got) != want || signBit32(got) != math.Signbit(want) {
			t.Errorf("F8E4M3ToF32(%#02x) = %g, want %g", b, got, want)
		}
		if math.IsInf(float64(got), 0) {
			t.Errorf("F8E4M3ToF32(%#02x) = %g: E4M3FN has no infinities", b, got)
		}
	}
	for _, c := range []struct {
		b    uint8
		want float32
	}{
		{0x7e, 448}, {0xfe, -448}, {0x01, 1.0 / 512}, {0x07, 7.0 / 512},
		{0x08, 1.0 / 64}, {0x38, 1}, {0x40, 2}, {0x3c, 1.5}, {0x78, 256}, {0x77, 240},
	} {
		if got := F8E4M3ToF32(c.b); got != c.want {
			t.Errorf("F8E4M3ToF32(%#02x) = %g, want %g", c.b, got, c.want)
		}
	}
	if got := math.Float32bits(F8E4M3ToF32(0x80)); got != 0x80000000 {
		t.Errorf("F8E4M3ToF32(0x80) = %#08x, want -0", got)
	}
	for _, b := range []uint8{0x7f, 0xff} {
		if got := F8E4M3ToF32(b); !isNaN32(got) {
			t.Errorf("F8E4M3ToF32(%#02x) = %g, want NaN", b, got)
		}
	}
}

func TestF8E5M2AllPatterns(t *testing.T) {
	for i := 0; i < 256; i++ {
		b := uint8(i)
		got := F8E5M2ToF32(b)
		want := float16.Frombits(uint16(b) << 8).Float32()
		if math.Float32bits(got) != math.Float32bits(want) {
			t.Errorf("F8E5M2ToF32(%#02x) = %g [%#08x], want %g [%#08x]",
				b, got, math.Float32bits(got), want, math.Float32bits(want))
		}
	}
	for _, c := range []struct {
		b    uint8
		want float32
	}{
		{0x3c, 1}, {0x7b, 57344}, {0x01, 1.0 / (1 << 16)}, {0x04, 1.0 / (1 << 14)},
		{0x7c, float32(math.Inf(1))}, {0xfc, float32(math.Inf(-1))},
	} {
		if got := F8E5M2ToF32(c.b); got != c.want {
			t.Errorf("F8E5M2ToF32(%#02x) = %g, want %g", c.b, got, c.want)
		}
	}
	for _, b := range []uint8{0x7d, 0x7e, 0x7f, 0xfd, 0xfe, 0xff} {
		if got := F8E5M2ToF32(b); !isNaN32(got) {
			t.Errorf("F8E5M2ToF32(%#02x) = %g, want NaN", b, got)
		}
	}
}

// randFloats returns n float32 values from r: random bit patterns
// including NaN, Inf, subnormals and zeros.
func randFloats(r *rand.Rand, n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = math.Float32frombits(r.Uint32())
	}
	v = append(v, 0, float32(math.Copysign(0, -1)), float32(math.Inf(1)), float32(math.Inf(-1)),
		float32(math.NaN()), math.MaxFloat32, math.SmallestNonzeroFloat32, 1, -1)
	return v
}

func sameBits(a, b []float32) (int, bool) {
	if len(a) != len(b) {
		return -1, false
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
			return i, false
		}
	}
	return 0, true
}

func TestDecodeEncodeF32(t *testing.T) {
	t.Logf("seed %#x", seedCodec)
	r := rand.New(rand.NewPCG(seedCodec, 1))
	src := randFloats(r, 10_001)

	// Reference encoding, built element by element.
	want := make([]byte, 4*len(src))
	for i, v := range src {
		binary.LittleEndian.PutUint32(want[4*i:], math.Float32bits(v))
	}
	enc := make([]byte, 4*len(src))
	if err := EncodeF32(enc, src, F32); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(enc, want) {
		t.Fatal("EncodeF32(F32) differs from binary.LittleEndian")
	}
	port := make([]byte, 4*len(src))
	encodeF32Portable(port, src)
	if !bytes.Equal(port, want) {
		t.Fatal("encodeF32Portable differs from binary.LittleEndian")
	}

	// Decode from an odd offset so the source is misaligned.
	buf := append([]byte{0xaa}, want...)[1:]
	dec := make([]float32, len(src))
	if err := DecodeF32(dec, buf, F32); err != nil {
		t.Fatal(err)
	}
	if i, ok := sameBits(dec, src); !ok {
		t.Fatalf("DecodeF32(F32) element %d = %#08x, want %#08x", i, math.Float32bits(dec[i]), math.Float32bits(src[i]))
	}
	decP := make([]float32, len(src))
	decodeF32Portable(decP, want)
	if i, ok := sameBits(decP, src); !ok {
		t.Fatalf("decodeF32Portable element %d differs", i)
	}
}

func TestDecodeEncodeF64(t *testing.T) {
	r := rand.New(rand.NewPCG(seedCodec, 2))
	// float32 → F64 → float32 is exact, NaN payloads included.
	src := randFloats(r, 10_000)
	enc := make([]byte, 8*len(src))
	if err := EncodeF32(enc, src, F64); err != nil {
		t.Fatal(err)
	}
	for i, v := range src {
		got := math.Float64frombits(binary.LittleEndian.Uint64(enc[8*i:]))
		if !(got == float64(v) || isNaN32(v) && math.IsNaN(got)) {
			t.Fatalf("EncodeF32(F64) element %d = %g, want %g", i, got, v)
		}
	}
	dec := make([]float32, len(src))
	if err := DecodeF32(dec, enc, F64); err != nil {
		t.Fatal(err)
	}
	for i := range src {
		if !(dec[i] == src[i] || isNaN32(dec[i]) && isNaN32(src[i])) ||
			signBit32(dec[i]) != signBit32(src[i]) {
			t.Fatalf("F64 round trip element %d = %g, want %g", i, dec[i], src[i])
		}
	}
	// Arbitrary float64 values round to nearest float32 (Go's conversion
	// is IEEE round-to-nearest-even), compared exactly.
	f64 := []float64{1.0 / 3, math.Pi, 1e300, -1e300, 1e-300, 65504.5, 1 + math.Ldexp(1, -24),
		1 + 3*math.Ldexp(1, -24), math.MaxFloat64, math.SmallestNonzeroFloat64}
	for i := 0; i < 1000; i++ {
		f64 = append(f64, math.Float64frombits(r.Uint64()))
	}
	raw := make([]byte, 8*len(f64))
	for i, v := range f64 {
		binary.LittleEndian.PutUint64(raw[8*i:], math.Float64bits(v))
	}
	dec = make([]float32, len(f64))
	if err := DecodeF32(dec, raw, F64); err != nil {
		t.Fatal(err)
	}
	for i, v := range f64 {
		want := float32(v)
		if math.Float32bits(dec[i]) != math.Float32bits(want) && !(math.IsNaN(v) && isNaN32(dec[i])) {
			t.Fatalf("DecodeF32(F64) element %d = %g, want %g", i, dec[i], want)
		}
	}
	// Spot checks of that rounding: ties to even at 1 + half an ulp.
	for _, c := range []struct {
		in   float64
		want float32
	}{
		{1 + math.Ldexp(1, -24), 1},
		{1 + 3*math.Ldexp(1, -24), 1 + float32(math.Ldexp(1, -22))},
		{1e300, float32(math.Inf(1))},
	} {
		binary.LittleEndian.PutUint64(raw, math.Float64bits(c.in))
		if err := DecodeF32(dec[:1], raw[:8], F64); err != nil {
			t.Fatal(err)
		}
		if dec[0] != c.want {
			t.Errorf("DecodeF32(F64 %g) = %g, want %g", c.in, dec[0], c.want)
		}
	}
}

// testHalfCodec checks EncodeF32 and DecodeF32 for a 16-bit dtype against
// the scalar conversions, and that every representable value round-trips.
func testHalfCodec(t *testing.T, dt DType, toF32 func(uint16) float32, fromF32 func(float32) uint16, isNaN func(uint16) bool) {
	// All 65536 patterns decode like the scalar function and re-encode to
	// themselves (NaNs: to a NaN).
	raw := make([]byte, 2<<16)
	for i := 0; i < 1<<16; i++ {
		binary.LittleEndian.PutUint16(raw[2*i:], uint16(i))
	}
	dec := make([]float32, 1<<16)
	if err := DecodeF32(dec, raw, dt); err != nil {
		t.Fatal(err)
	}
	for i := range dec {
		if math.Float32bits(dec[i]) != math.Float32bits(toF32(uint16(i))) {
			t.Fatalf("DecodeF32(%s) element %#04x = %g, want %g", dt, i, dec[i], toF32(uint16(i)))
		}
	}
	enc := make([]byte, len(raw))
	if err := EncodeF32(enc, dec, dt); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1<<16; i++ {
		got := binary.LittleEndian.Uint16(enc[2*i:])
		if got != uint16(i) && !(isNaN(uint16(i)) && isNaN(got)) {
			t.Fatalf("%s round trip of %#04x gave %#04x", dt, i, got)
		}
	}
	// Arbitrary float32 values encode like the scalar function.
	r := rand.New(rand.NewPCG(seedCodec, 3))
	src := randFloats(r, 10_000)
	enc = make([]byte, 2*len(src))
	if err := EncodeF32(enc, src, dt); err != nil {
		t.Fatal(err)
	}
	for i, v := range src {
		if got, want := binary.LittleEndian.Uint16(enc[2*i:]), fromF32(v); got != want {
			t.Fatalf("EncodeF32(%s) element %d (%#08x) = %#04x, want %#04x", dt, i, math.Float32bits(v), got, want)
		}
	}
}

func TestDecodeEncodeF16(t *testing.T) {
	testHalfCodec(t, F16, F16ToF32, F32ToF16, isNaN16)
	// Byte order: 1.0 is 0x3c00, stored 00 3c.
	dst := make([]byte, 2)
	if err := EncodeF32(dst, []float32{1}, F16); err != nil || !bytes.Equal(dst, []byte{0x00, 0x3c}) {
		t.Errorf("EncodeF32(F16, 1) = % x, %v; want 00 3c", dst, err)
	}
}

func TestDecodeEncodeBF16(t *testing.T) {
	testHalfCodec(t, BF16, BF16ToF32, F32ToBF16, isNaNBF16)
	dst := make([]byte, 2)
	if err := EncodeF32(dst, []float32{1}, BF16); err != nil || !bytes.Equal(dst, []byte{0x80, 0x3f}) {
		t.Errorf("EncodeF32(BF16, 1) = % x, %v; want 80 3f", dst, err)
	}
}

func TestDecodeF8(t *testing.T) {
	raw := make([]byte, 256)
	for i := range raw {
		raw[i] = byte(i)
	}
	for _, c := range []struct {
		dt DType
		f  func(uint8) float32
	}{
		{F8_E4M3, F8E4M3ToF32},
		{F8_E5M2, F8E5M2ToF32},
	} {
		dec := make([]float32, 256)
		if err := DecodeF32(dec, raw, c.dt); err != nil {
			t.Fatal(err)
		}
		for i, v := range dec {
			if math.Float32bits(v) != math.Float32bits(c.f(uint8(i))) {
				t.Errorf("DecodeF32(%s) element %#02x = %g, want %g", c.dt, i, v, c.f(uint8(i)))
			}
		}
		// Encoding to FP8 is not supported.
		if err := EncodeF32(make([]byte, 1), []float32{1}, c.dt); !errors.Is(err, ErrDType) {
			t.Errorf("EncodeF32(%s) error = %v, want ErrDType", c.dt, err)
		}
	}
}

func TestDecodeEncodeLength(t *testing.T) {
	for _, dt := range []DType{F64, F32, F16, BF16, F8_E4M3, F8_E5M2} {
		size := dt.Size()
		for _, n := range []int{0, 1, 3, 8} {
			dst := make([]float32, n)
			if err := DecodeF32(dst, make([]byte, n*size), dt); err != nil {
				t.Errorf("DecodeF32(%s, %d elements) = %v", dt, n, err)
			}
			for _, nb := range []int{n*size + 1, n*size + size, n*size - 1, n*size - size} {
				if nb < 0 {
					continue
				}
				err := DecodeF32(dst, make([]byte, nb), dt)
				if err == nil || errors.Is(err, ErrDType) {
					t.Errorf("DecodeF32(%s, %d elements, %d bytes) error = %v, want length error", dt, n, nb, err)
				}
			}
		}
	}
	for _, dt := range []DType{F64, F32, F16, BF16} {
		size := dt.Size()
		for _, n := range []int{0, 1, 3, 8} {
			src := make([]float32, n)
			if err := EncodeF32(make([]byte, n*size), src, dt); err != nil {
				t.Errorf("EncodeF32(%s, %d elements) = %v", dt, n, err)
			}
			for _, nb := range []int{n*size + 1, n*size + size, n*size - 1, n*size - size} {
				if nb < 0 {
					continue
				}
				err := EncodeF32(make([]byte, nb), src, dt)
				if err == nil || errors.Is(err, ErrDType) {
					t.Errorf("EncodeF32(%s, %d elements, %d bytes) error = %v, want length error", dt, n, nb, err)
				}
			}
		}
	}
	// A failed call leaves dst alone.
	dst := []float32{42}
	_ = DecodeF32(dst, []byte{1, 2, 3}, F32)
	if dst[0] != 42 {
		t.Errorf("DecodeF32 wrote to dst despite a length error")
	}
}

func TestDecodeEncodeUnsupported(t *testing.T) {
	for _, dt := range []DType{I64, I32, I16, I8, U64, U32, U16, U8, BOOL, "Q4_K", "", "f32"} {
		size := max(dt.Size(), 1)
		err := DecodeF32(make([]float32, 2), make([]byte, 2*size), dt)
		if !errors.Is(err, ErrDType) {
			t.Errorf("DecodeF32(%q) error = %v, want ErrDType", dt, err)
		}
		err = EncodeF32(make([]byte, 2*size), make([]float32, 2), dt)
		if !errors.Is(err, ErrDType) {
			t.Errorf("EncodeF32(%q) error = %v, want ErrDType", dt, err)
		}
	}
}
