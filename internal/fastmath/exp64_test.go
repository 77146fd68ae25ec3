package fastmath

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactExp returns e^x to 320 bits: the Taylor series of x/2¹² squared
// twelve times (the squarings lose about 12 bits of the 320).
func exactExp(x float64) *big.Float {
	const prec = 320
	y := new(big.Float).SetPrec(prec).SetFloat64(x)
	y.SetMantExp(y, -12)
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	n := new(big.Float).SetPrec(prec)
	for i := 1; i < 60; i++ {
		term.Mul(term, y)
		term.Quo(term, n.SetInt64(int64(i)))
		sum.Add(sum, term)
	}
	for range 12 {
		sum.Mul(sum, sum)
	}
	return sum
}

// ulpErr returns |got − exact| in units of the last place of exact's
// float64 (the subnormal spacing below the normal range), and whether
// exact is beyond the largest float64 (then got must be +Inf).
func ulpErr(got float64, exact *big.Float) (float64, bool) {
	if f, acc := exact.Float64(); math.IsInf(f, 1) && acc == big.Above {
		return 0, true
	}
	mant := new(big.Float)
	e := exact.MantExp(mant) // exact = mant·2^e, 0.5 ≤ mant < 1
	ulpExp := max(e-53, -1074)
	d := new(big.Float).SetPrec(320).SetFloat64(got)
	d.Sub(d, exact)
	d.Abs(d)
	d.SetMantExp(d, -ulpExp)
	r, _ := d.Float64()
	return r, false
}

func TestExpAccuracy(t *testing.T) {
	seed := uint64(19)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var xs []float64
	for range 4000 {
		xs = append(xs, -750+rng.Float64()*1465) // the whole range, past both ends
		xs = append(xs, -40*rng.Float64())       // log-sum-exp's terms
		xs = append(xs, (rng.Float64()-0.5)*1e-3)
		xs = append(xs, -708+rng.Float64()*-40) // into the subnormals
		xs = append(xs, 705+rng.Float64()*6)    // up to overflow
	}
	// Float32 logits minus a float32 maximum, as Score computes them.
	for range 4000 {
		a, b := float32(rng.NormFloat64()*8), float32(rng.NormFloat64()*8)
		xs = append(xs, float64(a)-float64(b))
	}
	xs = append(xs, 0, math.Copysign(0, -1), 1, -1, math.Ln2/2, -math.Ln2/2, math.Ln2, 709.78, 709.79, -708.39, -708.4,
		-744.44, -745.13, -745.14, -745.2, -746, -1000, 710, 720, math.SmallestNonzeroFloat64, -math.SmallestNonzeroFloat64)
	worst, worstX := 0.0, 0.0
	for _, x := range xs {
		got := Exp(x)
		e, inf := ulpErr(got, exactExp(x))
		if inf {
			if !math.IsInf(got, 1) {
				t.Errorf("Exp(%v) = %v, want +Inf", x, got)
			}
			continue
		}
		if e > worst {
			worst, worstX = e, x
		}
		if e > 2 {
			t.Errorf("Exp(%v) = %v: %.3f ulp from e^x (math.Exp %v)", x, got, e, math.Exp(x))
		}
	}
	t.Logf("%d inputs: worst %.3f ulp at x = %v", len(xs), worst, worstX)
	for _, c := range []struct{ x, want float64 }{{math.Inf(1), math.Inf(1)}, {math.Inf(-1), 0}, {-1e300, 0}, {1e300, math.Inf(1)}, {-math.MaxFloat64, 0}, {math.MaxFloat64, math.Inf(1)}} {
		if got := Exp(c.x); got != c.want {
			t.Errorf("Exp(%v) = %v, want %v", c.x, got, c.want)
		}
	}
	if got := Exp(math.NaN()); !math.IsNaN(got) {
		t.Errorf("Exp(NaN) = %v, want NaN", got)
	}
}

// refSumExp is SumExp's documented order, term by term with Exp.
func refSumExp(x []float32, shift float64) (float64, []float64) {
	var s [Lanes]float64
	terms := make([]float64, len(x))
	for i, v := range x {
		terms[i] = Exp(float64(v) - shift)
		s[i%Lanes] += terms[i]
	}
	return reduce(&s), terms
}

func randRow(rng *rand.Rand, n int, scale float64) []float32 {
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(rng.NormFloat64() * scale)
	}
	return x
}

func TestSumExpBits(t *testing.T) {
	seed := uint64(20)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 2))
	for _, n := range []int{1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 512, 1000, 50257} {
		for _, scale := range []float64{1, 10, 400} {
			x := randRow(rng, n, scale)
			mx, _ := MaxIndex(x)
			for _, shift := range []float64{float64(mx), float64(mx) + 3.5, -20, 0} {
				want, terms := refSumExp(x, shift)
				if got := SumExp(x, shift, nil); math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("n %d scale %v shift %v: SumExp %v, want %v (bit for bit)", n, scale, shift, got, want)
				}
				out := make([]float64, n)
				if got := SumExp(x, shift, out); math.Float64bits(got) != math.Float64bits(want) {
					t.Fatalf("n %d: SumExp with out %v, want %v", n, got, want)
				}
				for i := range out {
					if math.Float64bits(out[i]) != math.Float64bits(terms[i]) {
						t.Fatalf("n %d: out[%d] = %v, want Exp(%v) = %v", n, i, out[i], float64(x[i])-shift, terms[i])
					}
				}
				// The pure-Go body gives the same bits.
				var s [Lanes]float64
				m := n &^ (Lanes - 1)
				sumExpGo(x[:m], shift, nil, &s)
				var sv [Lanes]float64
				if m > 0 {
					sumExpBody(x[:m], shift, nil, &sv)
				}
				if s != sv {
					t.Fatalf("n %d: vector partial sums %v, Go %v", n, sv, s)
				}
			}
		}
	}
}

func TestSumExpNonFinite(t *testing.T) {
	for _, n := range []int{5, 48, 50} {
		for _, pos := range []int{0, n / 2, n - 1} {
			for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(1))} {
				x := make([]float32, n)
				x[pos] = bad
				mx, _ := MaxIndex(x)
				if got := SumExp(x, float64(mx), nil); !math.IsNaN(got) && !math.IsInf(got, 0) {
					t.Errorf("n %d, %v at %d: SumExp %v, want NaN or Inf", n, bad, pos, got)
				}
			}
			x := make([]float32, n)
			x[pos] = float32(math.Inf(-1))
			want, _ := refSumExp(x, 0)
			if got := SumExp(x, 0, nil); got != want || got != float64(n-1) {
				t.Errorf("n %d, -Inf at %d: SumExp %v, want %v", n, pos, got, n-1)
			}
		}
	}
}

func TestDotDiffBits(t *testing.T) {
	seed := uint64(21)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 3))
	for _, n := range []int{1, 15, 16, 17, 64, 100, 50257} {
		p, q := randRow(rng, n, 5), randRow(rng, n, 5)
		w := make([]float64, n)
		for i := range w {
			w[i] = rng.Float64()
		}
		a, b := rng.NormFloat64(), rng.NormFloat64()
		var s [Lanes]float64
		for i := range p {
			s[i%Lanes] += w[i] * ((float64(p[i]) - a) - (float64(q[i]) - b))
		}
		want := reduce(&s)
		if got := DotDiff(w, p, q, a, b); math.Float64bits(got) != math.Float64bits(want) {
			t.Fatalf("n %d: DotDiff %v, want %v", n, got, want)
		}
	}
}

func TestMaxIndex(t *testing.T) {
	seed := uint64(22)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 4))
	scalar := func(x []float32) (float32, int) {
		mx, arg := x[0], 0
		for i, v := range x {
			if v > mx {
				mx, arg = v, i
			}
		}
		return mx, arg
	}
	for _, n := range []int{1, 2, 31, 32, 33, 64, 95, 96, 97, 512, 50257} {
		for trial := range 20 {
			x := make([]float32, n)
			for i := range x {
				x[i] = float32(rng.IntN(7) - 5) // many ties, all ≤ 1
			}
			switch trial % 4 {
			case 1: // one maximum at a random place
				x[rng.IntN(n)] = 3
			case 2: // -0 and +0 the maximum
				for i := range x {
					x[i] = -float32(rng.IntN(3))
				}
				x[rng.IntN(n)] = float32(math.Copysign(0, -1))
			case 3: // the maximum in the tail, or at the end
				x[n-1] = 9
			}
			gm, gi := MaxIndex(x)
			wm, wi := scalar(x)
			if gm != wm || gi != wi {
				t.Fatalf("n %d trial %d: MaxIndex (%v, %d), want (%v, %d)", n, trial, gm, gi, wm, wi)
			}
		}
	}
}

func BenchmarkLogSumExp(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	x := randRow(rng, 50257, 3)
	b.Run("fastmath", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			mx, _ := MaxIndex(x)
			_ = float64(mx) + math.Log(SumExp(x, float64(mx), nil))
		}
	})
	b.Run("math.Exp", func(b *testing.B) {
		b.SetBytes(int64(4 * len(x)))
		for b.Loop() {
			mx := x[0]
			for _, v := range x {
				mx = max32(mx, v)
			}
			var s float64
			for _, v := range x {
				s += math.Exp(float64(v) - float64(mx))
			}
			_ = float64(mx) + math.Log(s)
		}
	})
}
