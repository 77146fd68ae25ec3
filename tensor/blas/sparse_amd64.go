//go:build amd64 && !purego

package blas

// Sparse kernels and transposes in sparse_amd64.s; see Kernel.spBlock and
// Kernel.tr.

//go:noescape
func spBlockAVX512(np, ns int, seg *uint32, val *float32, off *uint16, a, tile *float32)

//go:noescape
func spBlockAVX2(np, ns int, seg *uint32, val *float32, off *uint16, a, tile *float32)

//go:noescape
func transpose16AVX512(dst *float32, ldd int, src *float32, lds int, rb, cb int)

//go:noescape
func transpose8AVX2(dst *float32, ldd int, src *float32, lds int, rb, cb int)

//go:noescape
func spFoldAVX2(tile, run *float32, n int)

// spFoldSliceAVX2 is spFold for a tile of 64×64 sums (n a multiple of 32).
func spFoldSliceAVX2(tile, run []float32) {
	if len(tile) > 0 {
		_ = run[len(tile)-1]
		spFoldAVX2(&tile[0], &run[0], len(tile))
	}
}

func spBlockSliceAVX512(np, ns int, seg []uint32, val []float32, off []uint16, a, tile []float32) {
	if np+ns > 0 {
		spBlockAVX512(np, ns, &seg[0], &val[0], &off[0], &a[0], &tile[0])
	}
}

func spBlockSliceAVX2(np, ns int, seg []uint32, val []float32, off []uint16, a, tile []float32) {
	if np+ns > 0 {
		spBlockAVX2(np, ns, &seg[0], &val[0], &off[0], &a[0], &tile[0])
	}
}
