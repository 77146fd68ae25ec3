package fastmath

import "math"

// Constants of [Exp]: the clamp bounds, log₂e, ln 2 split as in fdlibm
// (ln2Hi has 32 significant bits, so k·ln2Hi is exact for |k| < 2²¹), and
// the Taylor coefficients 1/n! of the degree-13 polynomial, whose
// truncation error on |r| ≤ ln2/2 is below 5e-18 relative.
const (
	expLo  = -746.0 // e^-746 < 2^-1075: rounds to 0
	expHi  = 710.0  // e^710 > MaxFloat64: +Inf
	log2e  = 1.44269504088896338700e+00
	ln2Hi  = 6.93147180369123816490e-01
	ln2Lo  = 1.90821492927058770002e-10
	expC2  = 1.0 / 2
	expC3  = 1.0 / 6
	expC4  = 1.0 / 24
	expC5  = 1.0 / 120
	expC6  = 1.0 / 720
	expC7  = 1.0 / 5040
	expC8  = 1.0 / 40320
	expC9  = 1.0 / 362880
	expC10 = 1.0 / 3628800
	expC11 = 1.0 / 39916800
	expC12 = 1.0 / 479001600
	expC13 = 1.0 / 6227020800
)

// Exp returns e^x in float64, within 2 ulp of the exact value (under 1
// ulp over the tests' inputs), with Exp(NaN) = NaN, Exp(+Inf) = +Inf,
// Exp(−Inf) = 0, and results that underflow rounded once into the
// subnormals. It is the scalar form of the vector kernels of [SumExp]:
// the same operations in the same order (with fused multiply-adds), so
// every lane of those kernels returns exactly Exp's bits.
//
// The scheme: clamp x to [−746, 710] (NaN passes), k = round-to-even(x·log₂e),
// r = x − k·ln 2 by two fused multiply-adds, e^r = 1 + (r + r²·q(r)) with
// q the Taylor polynomial of degree 11, and the result (e^r·2^⌊k/2⌋)·2^(k−⌊k/2⌋),
// two scalings that each stay in the normal range.
func Exp(x float64) float64 {
	if x != x {
		return x
	}
	x = max(x, expLo)
	x = min(x, expHi)
	k := math.RoundToEven(float64(x * log2e))
	r := math.FMA(-k, ln2Hi, x)
	r = math.FMA(-k, ln2Lo, r)
	q := math.FMA(expC13, r, expC12)
	q = math.FMA(q, r, expC11)
	q = math.FMA(q, r, expC10)
	q = math.FMA(q, r, expC9)
	q = math.FMA(q, r, expC8)
	q = math.FMA(q, r, expC7)
	q = math.FMA(q, r, expC6)
	q = math.FMA(q, r, expC5)
	q = math.FMA(q, r, expC4)
	q = math.FMA(q, r, expC3)
	q = math.FMA(q, r, expC2)
	u := 1 + math.FMA(float64(r*r), q, r)
	ki := int32(k)
	k1 := ki >> 1
	k2 := ki - k1
	u = float64(u * math.Float64frombits(uint64(k1+1023)<<52))
	return float64(u * math.Float64frombits(uint64(k2+1023)<<52))
}

// Lanes is the number of partial sums of [SumExp] and [DotDiff]: element i
// is added to partial sum i mod Lanes.
const Lanes = 16

// SumExp returns Σ e^(x[i] − shift) over x, each term [Exp] of
// float64(x[i]) − shift, in float64 and in a fixed order, whatever the
// CPU: term i is added, in increasing i, to partial sum i mod 16 (each
// starting from 0), and the partial sums are added pairwise (s[l] +=
// s[l+8], then +4, +2, +1). With out non-nil (len(out) ≥ len(x)) it also
// stores the terms in out.
func SumExp(x []float32, shift float64, out []float64) float64 {
	var s [Lanes]float64
	n := len(x) &^ (Lanes - 1)
	if out != nil {
		out = out[:len(x)]
	}
	if n > 0 {
		sumExpBody(x[:n], shift, out, &s)
	}
	for i := n; i < len(x); i++ {
		e := Exp(float64(x[i]) - shift)
		if out != nil {
			out[i] = e
		}
		s[i%Lanes] += e
	}
	return reduce(&s)
}

// DotDiff returns Σ w[i]·((p[i] − a) − (q[i] − b)) over p, in float64 and
// in the fixed order of [SumExp]; the subtractions are float64. With w the
// probabilities of logits p and a, b the log-sum-exps of p and q it is
// KL(softmax p ‖ softmax q). len(w) and len(q) must be at least len(p).
func DotDiff(w []float64, p, q []float32, a, b float64) float64 {
	var s [Lanes]float64
	w, q = w[:len(p)], q[:len(p)]
	n := len(p) &^ (Lanes - 1)
	if n > 0 {
		dotDiffBody(w[:n], p[:n], q[:n], a, b, &s)
	}
	for i := n; i < len(p); i++ {
		s[i%Lanes] += float64(w[i] * ((float64(p[i]) - a) - (float64(q[i]) - b)))
	}
	return reduce(&s)
}

func reduce(s *[Lanes]float64) float64 {
	for h := Lanes / 2; h > 0; h /= 2 {
		for l := range h {
			s[l] += s[l+h]
		}
	}
	return s[0]
}

// MaxIndex returns the maximum of x (len(x) ≥ 1) and the index of its
// first occurrence, as the loop "m = x[0]; for each v: if v > m, take v"
// finds them (−0 and +0 are equal). With a NaN in x the result is
// unspecified (an exp of x − max is NaN anyway).
func MaxIndex(x []float32) (float32, int) {
	n := len(x) &^ 31
	mx := x[0]
	if n > 0 {
		mx = maxBody(x[:n])
	}
	for _, v := range x[n:] {
		mx = max32(mx, v)
	}
	if n > 0 {
		if i := indexBody(x[:n], mx); i >= 0 {
			return mx, i
		}
	}
	for j, v := range x[n:] {
		if v == mx {
			return mx, n + j
		}
	}
	return mx, 0
}

func max32(a, b float32) float32 {
	if b > a {
		return b
	}
	return a
}

// Pure-Go bodies, the fallbacks of the vector kernels.

func sumExpGo(x []float32, shift float64, out []float64, s *[Lanes]float64) {
	for i, v := range x {
		e := Exp(float64(v) - shift)
		if out != nil {
			out[i] = e
		}
		s[i%Lanes] += e
	}
}

func dotDiffGo(w []float64, p, q []float32, a, b float64, s *[Lanes]float64) {
	for i, v := range p {
		s[i%Lanes] += float64(w[i] * ((float64(v) - a) - (float64(q[i]) - b)))
	}
}

// maxGo returns the maximum of x (len(x) ≥ 1).
func maxGo(x []float32) float32 {
	mx := x[0]
	for _, v := range x {
		mx = max32(mx, v)
	}
	return mx
}

// indexGo returns the first i with x[i] == v, or −1.
func indexGo(x []float32, v float32) int {
	for i, u := range x {
		if u == v {
			return i
		}
	}
	return -1
}
