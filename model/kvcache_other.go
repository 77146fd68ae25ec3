//go:build !amd64 || purego

package model

// haveAttnAsm reports whether the assembly cached-attention kernels exist.
const haveAttnAsm = false

func scoresAsm(out []float32, ldo int, kt []float32, ldk int, qt []float32, nd, nblk int, koff *[8]int) {
	panic("model: no assembly attention kernels")
}

func pvAsm(acc, v []float32, ldv int, p []float32, ldp, n int, voff *[8]int, pj int) {
	panic("model: no assembly attention kernels")
}
