//go:build !amd64 || purego

package blas

func spRow(val []float32, col []int32, panel, out []float32) { spRowGo(val, col, panel, out) }

const hasSpAVX512 = false
