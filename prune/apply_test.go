package prune

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// zeroThresholdRef is the definition: one pass, ties counted down in
// index order.
func zeroThresholdRef(vals []float32, t Threshold) {
	ties := t.Ties
	for i, v := range vals {
		k := key(v)
		if k < t.Key || (k == t.Key && ties > 0) {
			if k == t.Key {
				ties--
			}
			vals[i] = 0
		}
	}
}

// checkZeroThreshold runs the fast path (assembly where available) and the
// pure-Go loops against the reference on a copy of vals each.
func checkZeroThreshold(t *testing.T, vals []float32, th Threshold) {
	t.Helper()
	want := append([]float32(nil), vals...)
	zeroThresholdRef(want, th)
	got := append([]float32(nil), vals...)
	zeroThreshold(got, th)
	goOnly := append([]float32(nil), vals...)
	zeroBelowGo(goOnly, th.Key) // no ties: compare with the ties-free reference
	wantNoTies := append([]float32(nil), vals...)
	zeroThresholdRef(wantNoTies, Threshold{Key: th.Key})
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("n=%d %+v: element %d = %#x, want %#x (input %#x)", len(vals), th, i, math.Float32bits(got[i]), math.Float32bits(want[i]), math.Float32bits(vals[i]))
		}
		if math.Float32bits(goOnly[i]) != math.Float32bits(wantNoTies[i]) {
			t.Fatalf("n=%d key %#x: Go loop element %d = %#x, want %#x", len(vals), th.Key, i, math.Float32bits(goOnly[i]), math.Float32bits(wantNoTies[i]))
		}
	}
	var eq int64
	for _, v := range vals {
		if key(v) == th.Key {
			eq++
		}
	}
	if c := countEqual(vals, th.Key); c != eq {
		t.Fatalf("n=%d: countEqual = %d, want %d", len(vals), c, eq)
	}
	checkCollect(t, vals, th.Key>>16)
}

// checkCollect compares collectBucketAsm and the scalar rest with a plain
// filter of the keys whose high half is bucket.
func checkCollect(t *testing.T, vals []float32, bucket uint32) {
	t.Helper()
	var want []uint32
	for _, v := range vals {
		if key(v)>>16 == bucket {
			want = append(want, key(v))
		}
	}
	keys, done := collectBucketAsm(vals, bucket, make([]uint32, len(vals)))
	got := append([]uint32(nil), keys...)
	for _, v := range vals[done:] {
		if key(v)>>16 == bucket {
			got = append(got, key(v))
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("n=%d bucket %#x: collected %d keys %x, want %d %x", len(vals), bucket, len(got), got, len(want), want)
	}
}

// tieHeavy returns n values drawn from a few magnitudes of both signs,
// zeros and -0 included, so thresholds land on many ties.
func tieHeavy(r *rand.Rand, n int) []float32 {
	pool := []float32{0, float32(math.Copysign(0, -1)), 0.5, -0.5, 1, -1, 1e-40, -1e-40, 2, float32(math.Inf(1)), float32(math.Inf(-1))}
	v := make([]float32, n)
	for i := range v {
		if r.IntN(4) == 0 {
			v[i] = float32(r.NormFloat64())
		} else {
			v[i] = pool[r.IntN(len(pool))]
		}
	}
	return v
}

// TestZeroThreshold covers lengths around the 16-lane blocks and the
// 4096-element tie blocks, misaligned starts, every key in the data and
// tie counts from 0 to all.
func TestZeroThreshold(t *testing.T) {
	seed := uint64(20261130)
	t.Logf("seed %d, AVX-512 kernels: %v", seed, zeroBelowAsm(make([]float32, 16), 0) > 0)
	r := rand.New(rand.NewPCG(seed, 7))
	for _, n := range []int{0, 1, 15, 16, 17, 31, 33, 100, 4095, 4096, 4097, 10000} {
		base := tieHeavy(r, n+3)
		for _, off := range []int{0, 1, 3} {
			vals := base[off : off+n]
			if n == 0 {
				checkZeroThreshold(t, vals, Threshold{})
				continue
			}
			for trial := 0; trial < 8; trial++ {
				k := key(vals[r.IntN(n)])
				eq := int64(0)
				for _, v := range vals {
					if key(v) == k {
						eq++
					}
				}
				ties := []int64{0, 1, eq / 2, eq}[trial%4]
				checkZeroThreshold(t, vals, Threshold{Key: k, Ties: ties})
			}
		}
	}
}

// FuzzApplyThreshold: the kernels against the reference on arbitrary bit
// patterns (NaN excluded, as selection rejects them), keys and ties.
func FuzzApplyThreshold(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0x80, 0x3f}, uint32(0x3f800000), uint16(1))
	f.Add(make([]byte, 4*37), uint32(0), uint16(5))
	f.Fuzz(func(t *testing.T, data []byte, k uint32, ties uint16) {
		vals := make([]float32, len(data)/4)
		for i := range vals {
			b := binary.LittleEndian.Uint32(data[4*i:])
			if b&^(1<<31) > 0x7f800000 {
				b &= 0xff800000 // NaN → ±Inf
			}
			vals[i] = math.Float32frombits(b)
		}
		k &^= 1 << 31
		k = min(k, 0x7f800000)
		checkZeroThreshold(t, vals, Threshold{Key: k, Ties: int64(ties)})
	})
}

// BenchmarkZeroThreshold applies a 50% threshold to a 768×3072 tensor of
// normal values (the tie at a random index) with the kernels and with the
// one-pass reference; each iteration first restores the input.
func BenchmarkZeroThreshold(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	src := make([]float32, 768*3072)
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	var rx radix
	th := rx.selectK(src, int64(len(src)/2))
	vals := make([]float32, len(src))
	for _, c := range []struct {
		name string
		fn   func([]float32, Threshold)
	}{{"kernel", zeroThreshold}, {"reference", zeroThresholdRef}, {"copy-only", func([]float32, Threshold) {}}} {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(4 * len(src)))
			for b.Loop() {
				copy(vals, src)
				c.fn(vals, th)
			}
		})
	}
}

// TestSampledSelect compares sampledSelect with the two-pass radix
// selection on slices long enough for it: normal weights at several
// sparsities, tie-heavy values, an odd length, a sample that misses the
// k-th key (every sampled element huge: the bracket misses and it must
// decline), and a NaN.
func TestSampledSelect(t *testing.T) {
	if !hasAVX512() {
		t.Skip("no AVX-512: sampledSelect always declines")
	}
	seed := uint64(20261207)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	normal := make([]float32, sampledMin+12345)
	for i := range normal {
		normal[i] = float32(rng.NormFloat64() * 0.02)
	}
	var r, ref radix
	for _, c := range []struct {
		name string
		vals []float32
	}{{"normal", normal}, {"tie-heavy", tieHeavy(rng, sampledMin+7)}} {
		for _, sp := range []float64{0.001, 0.1, 0.5, 0.9, 0.999} {
			k := RoundHalfEven(sp, int64(len(c.vals)))
			got, nan, ok := r.sampledSelect(c.vals, k)
			want := ref.selectK(c.vals, k)
			if nan || !ok || got != want {
				t.Errorf("%s, k=%d: sampledSelect = %+v (nan %v, ok %v), want %+v", c.name, k, got, nan, ok, want)
			}
		}
	}
	// Every sampled element (stride len/sampleSize) huge, the rest small:
	// the sample's bracket lies above the median.
	skewed := slices.Clone(normal)
	stride := len(skewed) / sampleSize
	for i := 0; i < sampleSize; i++ {
		skewed[i*stride] = 1000 + float32(i)
	}
	if _, _, ok := r.sampledSelect(skewed, int64(len(skewed)/2)); ok {
		t.Error("skewed sample: sampledSelect did not decline")
	}
	m := Method{Sparsity: 0.5, Scope: ScopeTensor}
	var s Selector
	p, err := s.NewPlan(m, &Matrix{Name: "skewed", Vals: skewed, Rows: 1, Cols: len(skewed)})
	if err != nil {
		t.Fatal(err)
	}
	if want := ref.selectK(skewed, RoundHalfEven(0.5, int64(len(skewed)))); p.tensor != want {
		t.Errorf("skewed: plan %+v, want %+v", p.tensor, want)
	}
	withNaN := slices.Clone(normal)
	withNaN[len(withNaN)-3] = float32(math.NaN())
	if _, nan, ok := r.sampledSelect(withNaN, int64(len(withNaN)/2)); !nan || ok {
		t.Errorf("NaN: nan %v, ok %v", nan, ok)
	}
	if _, err := s.NewPlan(m, &Matrix{Name: "nan", Vals: withNaN, Rows: 1, Cols: len(withNaN)}); !errors.Is(err, ErrInvalid) {
		t.Errorf("NaN: NewPlan error %v, want ErrInvalid", err)
	}
}

// TestChunkApplier applies tensor-scope plans chunk by chunk, in random
// chunk lengths, and compares the bits and the counts with ApplyCount on
// the whole tensor: normal and tie-heavy values (zeros, -0, infinities),
// sparsities from none to all.
func TestChunkApplier(t *testing.T) {
	seed := uint64(20261208)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 5))
	var s Selector
	for trial := 0; trial < 60; trial++ {
		n := 1 + rng.IntN(20000)
		if trial%10 == 9 {
			n = sampledMin + rng.IntN(5000)
		}
		vals := tieHeavy(rng, n)
		if trial%2 == 0 {
			for i := range vals {
				vals[i] = float32(rng.NormFloat64())
			}
		}
		sp := []float64{0, 0.1, 0.5, 0.9, 0.999}[trial%5]
		p, err := s.NewPlan(Method{Sparsity: sp, Scope: ScopeTensor}, &Matrix{Name: "w", Vals: vals, Rows: 1, Cols: n})
		if err != nil {
			t.Fatal(err)
		}
		want := slices.Clone(vals)
		wp, ws, wn := p.ApplyCount(want)
		a := p.ChunkApplier()
		if a == nil {
			t.Fatal("no ChunkApplier for a tensor-scope plan")
		}
		got := slices.Clone(vals)
		for lo := 0; lo < n; {
			hi := min(n, lo+1+rng.IntN(3000))
			a.Apply(got[lo:hi])
			lo = hi
		}
		for i := range got {
			if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
				t.Fatalf("trial %d (n %d, sparsity %v): index %d: %v, ApplyCount %v", trial, n, sp, i, got[i], want[i])
			}
		}
		if gp, gs, gn := a.Counts(); gp != wp || gs != ws || gn != wn {
			t.Fatalf("trial %d: Counts = %d, %d, %d; ApplyCount %d, %d, %d", trial, gp, gs, gn, wp, ws, wn)
		}
	}
	var rs Selector
	rp, err := rs.NewPlan(Method{Sparsity: 0.5, Scope: ScopeRow}, &Matrix{Name: "w", Vals: make([]float32, 8), Rows: 2, Cols: 4})
	if err != nil {
		t.Fatal(err)
	}
	if rp.ChunkApplier() != nil {
		t.Error("a row-scope plan has a ChunkApplier")
	}
}
