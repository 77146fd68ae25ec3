//go:build !amd64 || purego

package run

const vecExp = false

func expSubVec(x []float32, shift float32) float64 { panic("unreachable: no vector exp") }

func scaleMaskVec(dst, src []float32, k float32, div bool, m []float32) (int, float32, bool) {
	panic("unreachable: no vector kernels")
}

func mulF64Vec(x []float32, f float64) int { panic("unreachable: no vector kernels") }
