//go:build amd64 && !purego

package model

// Cached-attention kernels (kvcache_amd64.s), used with the assembly GEMM
// kernels, which imply AVX2 and FMA.

//go:noescape
func scoresAVX2(out *float32, ldo int, kt *float32, ldk int, qt *float32, nd, nblk int, koff *[8]int)

//go:noescape
func pvHeadsAVX2(acc, v *float32, ldv int, p *float32, ldp, n int, voff *[8]int)

//go:noescape
func pvChunksAVX2(acc, v *float32, ldv int, p *float32, ldp, n int, voff *[8]int)

// haveAttnAsm reports whether the assembly cached-attention kernels exist.
const haveAttnAsm = true

// scoresAsm sets out[(b·8+l)·ldo + j] = Σ_{d<nd} kt[b·ldk + koff[j] + d·8 + l]·qt[d·8+j]
// for nblk blocks b of 8 keys l and eight heads j, one FMA chain per
// element. koff holds element offsets; it is turned into bytes.
func scoresAsm(out []float32, ldo int, kt []float32, ldk int, qt []float32, nd, nblk int, koff *[8]int) {
	hi := 0
	for j := range koff {
		hi = max(hi, koff[j])
		koff[j] *= 4
	}
	_ = out[(nblk*8-1)*ldo+7]
	_ = kt[(nblk-1)*ldk+hi+nd*8-1]
	_ = qt[nd*8-1]
	scoresAVX2(&out[0], ldo*4, &kt[0], ldk*4, &qt[0], nd, nblk, koff)
}

// pvAsm sets acc[j·8+i] = Σ_{k<n} v[k·ldv + voff[j] + i]·p[k·ldp + j·pj]
// for the eight accumulators j, one FMA chain per element: pj is 1
// (eight heads, pvHeadsAVX2) or 0 (eight chunks of one head,
// pvChunksAVX2). voff holds element offsets; it is turned into bytes.
func pvAsm(acc, v []float32, ldv int, p []float32, ldp, n int, voff *[8]int, pj int) {
	_ = acc[63]
	hi := 0
	for j := range voff {
		hi = max(hi, voff[j]+8)
		voff[j] *= 4
	}
	_ = v[(n-1)*ldv+hi-1]
	_ = p[(n-1)*ldp+7*pj]
	if pj == 1 {
		pvHeadsAVX2(&acc[0], &v[0], ldv*4, &p[0], ldp*4, n, voff)
	} else {
		pvChunksAVX2(&acc[0], &v[0], ldv*4, &p[0], ldp*4, n, voff)
	}
}
