//go:build !amd64 || purego

package run

const vecExp = false

func expSubVec(x []float32, shift float32) float64 { panic("unreachable: no vector exp") }
