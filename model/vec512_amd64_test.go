//go:build amd64 && !purego

package model

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// skipNoAVX512 skips the test or benchmark unless the CPU has the AVX-512
// kernel.
func skipNoAVX512(t testing.TB) {
	for _, kr := range kernels() {
		if kr.Name() == "avx512" {
			return
		}
	}
	t.Skip("no AVX-512 kernel on this CPU")
}

// TestSoftmaxAVX512Bits checks that the AVX-512 column softmax gives the
// AVX2 one's results bit for bit, masked (-Inf) and extreme scores
// included.
func TestSoftmaxAVX512Bits(t *testing.T) {
	skipNoAVX512(t)
	seed := uint64(512)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	for _, w := range []int{16, 32, 48, 8, 24} {
		for _, rows := range []int{1, 2, 7, 64, 513} {
			s := make([]float32, rows*w)
			for i := range s {
				switch rng.IntN(20) {
				case 0:
					s[i] = float32(math.Inf(-1))
				case 1:
					s[i] = float32(rng.NormFloat64() * 1e3)
				default:
					s[i] = float32(rng.NormFloat64() * 10)
				}
			}
			for _, scale := range []float32{1, 0.35355339} {
				a, b := slices.Clone(s), slices.Clone(s)
				sa, sb := make([]float64, w), make([]float64, w)
				softmaxColsAVX2(a, rows, w, scale, sa)
				softmaxColsAVX512(b, rows, w, scale, sb)
				for i := range a {
					if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
						t.Fatalf("w %d rows %d scale %v: element %d: AVX-512 %v, AVX2 %v", w, rows, scale, i, b[i], a[i])
					}
				}
				for c := range sa {
					if math.Float64bits(sa[c]) != math.Float64bits(sb[c]) {
						t.Fatalf("w %d rows %d: sum[%d]: AVX-512 %v, AVX2 %v", w, rows, c, sb[c], sa[c])
					}
				}
			}
		}
	}
}

// TestActivationsAVX512Bits checks that the AVX-512 gelu and silu·u give
// the AVX2 ones' results bit for bit, over lengths with every kind of tail
// and values out to where exp saturates.
func TestActivationsAVX512Bits(t *testing.T) {
	skipNoAVX512(t)
	seed := uint64(513)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 9))
	for _, n := range []int{1, 7, 8, 15, 16, 17, 24, 31, 33, 1000, 3072} {
		x, u := make([]float32, n), make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64() * 3)
			if rng.IntN(10) == 0 {
				x[i] = float32(rng.NormFloat64() * 100)
			}
			u[i] = float32(rng.NormFloat64())
		}
		a, b := slices.Clone(x), slices.Clone(x)
		geluSliceAVX2(a)
		geluSliceAVX512(b)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("gelu n %d: element %d (x %v): AVX-512 %v, AVX2 %v", n, i, x[i], b[i], a[i])
			}
		}
		a, b = slices.Clone(x), slices.Clone(x)
		siluMulSliceAVX2(a, u)
		siluMulSliceAVX512(b, u)
		for i := range a {
			if math.Float32bits(a[i]) != math.Float32bits(b[i]) {
				t.Fatalf("silu·u n %d: element %d (x %v): AVX-512 %v, AVX2 %v", n, i, x[i], b[i], a[i])
			}
		}
	}
}

func BenchmarkSoftmaxCols(b *testing.B) {
	skipNoAVX512(b)
	rng := rand.New(rand.NewPCG(1, 1))
	const rows, w = 512, 32
	s0 := make([]float32, rows*w)
	for i := range s0 {
		s0[i] = float32(rng.NormFloat64() * 3)
	}
	s, sum := make([]float32, rows*w), make([]float64, w)
	for _, k := range []struct {
		name string
		f    func([]float32, int, int, float32, []float64)
	}{{"avx2", softmaxColsAVX2}, {"avx512", softmaxColsAVX512}} {
		b.Run(k.name, func(b *testing.B) {
			for b.Loop() {
				copy(s, s0)
				k.f(s, rows, w, 0.35, sum)
			}
		})
	}
}
