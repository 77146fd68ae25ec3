//go:build amd64 && !purego

package fastmath

import "golang.org/x/sys/cpu"

// The kernels of exp64_amd64.s: AVX2+FMA ones, used when the CPU has both,
// and sumExpAVX512 instead of sumExpAVX2 with AVX-512F. Each takes whole
// blocks (16 elements for sumExp and dotDiff, 32 for max and index) and
// the Go wrappers finish the rest.

//go:noescape
func sumExpAVX2(x *float32, n int, shift float64, out *float64, s *[Lanes]float64)

//go:noescape
func sumExpAVX512(x *float32, n int, shift float64, out *float64, s *[Lanes]float64)

//go:noescape
func dotDiffAVX2(w *float64, p, q *float32, n int, a, b float64, s *[Lanes]float64)

//go:noescape
func maxAVX2(x *float32, n int) float32

//go:noescape
func indexAVX2(x *float32, n int, v float32) int

var (
	useAVX2   = cpu.X86.HasAVX2 && cpu.X86.HasFMA
	useAVX512 = useAVX2 && cpu.X86.HasAVX512F
)

func sumExpBody(x []float32, shift float64, out []float64, s *[Lanes]float64) {
	if !useAVX2 {
		sumExpGo(x, shift, out, s)
		return
	}
	var o *float64
	if out != nil {
		o = &out[:len(x)][0]
	}
	if useAVX512 {
		sumExpAVX512(&x[0], len(x)&^(Lanes-1), shift, o, s)
		return
	}
	sumExpAVX2(&x[0], len(x)&^(Lanes-1), shift, o, s)
}

func dotDiffBody(w []float64, p, q []float32, a, b float64, s *[Lanes]float64) {
	if !useAVX2 {
		dotDiffGo(w, p, q, a, b, s)
		return
	}
	n := len(p) &^ (Lanes - 1)
	_, _ = w[n-1], q[n-1]
	dotDiffAVX2(&w[0], &p[0], &q[0], n, a, b, s)
}

func maxBody(x []float32) float32 {
	if !useAVX2 || len(x) < 32 {
		return maxGo(x)
	}
	n := len(x) &^ 31
	mx := maxAVX2(&x[0], n)
	for _, v := range x[n:] {
		mx = max32(mx, v)
	}
	return mx
}

func indexBody(x []float32, v float32) int {
	n := 0
	if useAVX2 {
		n = len(x) &^ 31
		if n > 0 {
			if i := indexAVX2(&x[0], n, v); i >= 0 {
				return i
			}
		}
	}
	if i := indexGo(x[n:], v); i >= 0 {
		return n + i
	}
	return -1
}
