// Package fastmath holds the elementary functions the forward, backward
// and scoring passes share:
//
//   - Expf, a float32 exp accurate to a few ulp that is several times
//     faster than math.Exp through float64;
//   - Exp, a float64 exp within 2 ulp (Cody–Waite reduction with fused
//     multiply-adds, a degree-13 Taylor polynomial, scaling in two steps
//     so that results round once into the subnormals), and the vector
//     loops built on it for log-softmax over a vocabulary: SumExp
//     (Σ e^(x−shift), optionally keeping the terms), MaxIndex (maximum
//     and first argmax) and DotDiff (the KL sum).
//
// SumExp and DotDiff add their terms in one fixed order, 16 partial sums
// (term i to partial sum i mod 16) combined pairwise, and their AVX-512,
// AVX2+FMA and pure-Go bodies compute every term with the same operations,
// so results are the same bits whatever the CPU's vector width, the
// thread count or how the caller splits the work between calls. The
// vector bodies are chosen at run time from the CPU's features
// (golang.org/x/sys/cpu); the purego build tag keeps the Go ones.
package fastmath
