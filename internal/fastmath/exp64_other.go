//go:build !amd64 || purego

package fastmath

func sumExpBody(x []float32, shift float64, out []float64, s *[Lanes]float64) {
	sumExpGo(x, shift, out, s)
}

func dotDiffBody(w []float64, p, q []float32, a, b float64, s *[Lanes]float64) {
	dotDiffGo(w, p, q, a, b, s)
}

func maxBody(x []float32) float32 { return maxGo(x) }

func indexBody(x []float32, v float32) int { return indexGo(x, v) }
