package tensor

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

func TestStats(t *testing.T) {
	f32 := []float32{0, float32(math.Copysign(0, -1)), 1, float32(math.NaN()), float32(math.Inf(-1)), 3, float32(math.Inf(1)), 1e-45}
	b := make([]byte, 4*len(f32))
	if err := EncodeF32(b, f32, F32); err != nil {
		t.Fatal(err)
	}
	for _, dt := range []DType{F32, F64, F16, BF16} {
		enc := make([]byte, len(f32)*dt.Size())
		if err := EncodeF32(enc, f32, dt); err != nil {
			t.Fatal(err)
		}
		var s Stats
		// scan in two chunks to check chunking
		half := len(enc) / 2
		if err := s.Add(dt, enc[:half]); err != nil {
			t.Fatal(err)
		}
		s.Add(dt, enc[half:])
		wantZeros := int64(2)
		if dt == F16 || dt == BF16 {
			// 1e-45, the smallest float32 subnormal, rounds to zero in both.
			wantZeros = 3
		}
		if s.Zeros != wantZeros || s.NaN != 1 || s.Inf != 2 {
			t.Errorf("%s: %+v, want zeros %d, 1 NaN, 2 Inf", dt, s, wantZeros)
		}
	}
	var s Stats
	s.Add(F8_E4M3, []byte{0x00, 0x80, 0x7f, 0xff, 0x7e, 0x01})
	if s != (Stats{Zeros: 2, NaN: 2}) {
		t.Errorf("F8_E4M3: %+v", s)
	}
	s = Stats{}
	s.Add(F8_E5M2, []byte{0x00, 0x80, 0x7c, 0xfc, 0x7d, 0x01})
	if s != (Stats{Zeros: 2, NaN: 1, Inf: 2}) {
		t.Errorf("F8_E5M2: %+v", s)
	}
	s = Stats{}
	ints := make([]byte, 16)
	binary.LittleEndian.PutUint32(ints[4:], 7)
	binary.LittleEndian.PutUint32(ints[12:], 1<<31)
	s.Add(I32, ints)
	if s != (Stats{Zeros: 2}) {
		t.Errorf("I32: %+v", s)
	}
	if err := s.Add(DType("F4"), []byte{1}); err == nil {
		t.Error("passthrough dtype scanned")
	}
	if err := s.Add(F32, []byte{1, 2}); err == nil {
		t.Error("partial element accepted")
	}
}

// TestStatsF32Branchless compares the F32 fast path with the generic
// classification on every interesting bit pattern and seeded random ones.
func TestStatsF32Branchless(t *testing.T) {
	var words []uint32
	for _, w := range []uint32{0, 1, 0x007fffff, 0x00800000, 0x3f800000, 0x7f7fffff, 0x7f800000, 0x7f800001, 0x7fc00000, 0x7fffffff} {
		words = append(words, w, w|1<<31)
	}
	seed := uint64(20261130)
	t.Logf("seed %d", seed)
	x := seed
	for i := 0; i < 10000; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		words = append(words, uint32(x))
	}
	b := make([]byte, 4*len(words))
	var want Stats
	for i, w := range words {
		binary.LittleEndian.PutUint32(b[4*i:], w)
		want.float(uint64(w), 0x7fffffff, 0x7f800000)
	}
	var got Stats
	if err := got.Add(F32, b); err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("F32 stats %+v, want %+v", got, want)
	}
}

// TestStatsKernels checks Stats.Add (the AVX-512 scans where the CPU has
// them, and the portable code for the tails) against a plain
// classification of every element, on seeded random bits rich in zeros,
// infinities and NaNs, at every length up to 200 elements and a long one,
// from unaligned starts.
func TestStatsKernels(t *testing.T) {
	seed := uint64(20261207)
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	type kind struct {
		dt       DType
		abs, inf uint32
		size     int
		special  []uint32
	}
	for _, k := range []kind{
		{F32, 0x7fffffff, 0x7f800000, 4, []uint32{0, 0x80000000, 0x7f800000, 0xff800000, 0x7fc00000, 0xffffffff, 0x7f800001, 1, 0x7f7fffff}},
		{F16, 0x7fff, 0x7c00, 2, []uint32{0, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0xffff, 0x7c01, 1, 0x7bff}},
		{BF16, 0x7fff, 0x7f80, 2, []uint32{0, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0xffff, 0x7f81, 1, 0x7f7f}},
	} {
		lengths := []int{1000003}
		for n := 0; n <= 200; n++ {
			lengths = append(lengths, n)
		}
		for _, n := range lengths {
			skip := r.IntN(4)
			buf := make([]byte, skip+n*k.size)
			b := buf[skip:]
			var want Stats
			for i := range n {
				v := r.Uint32()
				if r.IntN(3) == 0 {
					v = k.special[r.IntN(len(k.special))]
				}
				if k.size == 2 {
					v &= 0xffff
					binary.LittleEndian.PutUint16(b[2*i:], uint16(v))
				} else {
					binary.LittleEndian.PutUint32(b[4*i:], v)
				}
				switch a := v & k.abs; {
				case a == 0:
					want.Zeros++
				case a == k.inf:
					want.Inf++
				case a > k.inf:
					want.NaN++
				}
			}
			var got Stats
			if err := got.Add(k.dt, b); err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Fatalf("%s, %d elements from offset %d: %+v, want %+v", k.dt, n, skip, got, want)
			}
		}
	}
}

// BenchmarkStats counts 256 KiB of F32 and BF16 values, in cache as
// prune has them (it counts each piece of an untouched tensor it has just
// read into the writer's buffer). With -tags purego: the portable code.
func BenchmarkStats(b *testing.B) {
	for _, dt := range []DType{F32, BF16} {
		buf := make([]byte, 256<<10)
		for i := range buf {
			buf[i] = byte(i * 13)
		}
		b.Run(string(dt), func(b *testing.B) {
			b.SetBytes(int64(len(buf)))
			var s Stats
			for b.Loop() {
				s.Add(dt, buf)
			}
		})
	}
}
