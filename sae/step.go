package sae

import (
	"math"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// batch is the scratch memory of one step over at most capRows rows.
// Per-row arrays have k (or auxK) slots per row, of which cnt[i] are used,
// in ascending latent order.
type batch struct {
	capRows, d, m, k, auxK int
	n                      int // rows in use

	x, xc  []float32    // [n, d] rows and rows − b_pre
	ap, wp *blas.Packed // packed xc (A operand) and W_enc (B operand)
	pre    []float32    // [n, m] W_enc·xc + b_enc

	idx  []int32   // [n, k] active latents
	val  []float32 // [n, k] their codes
	dpre []float32 // [n, k] dL/dpre at them
	cnt  []int32   // [n]

	auxIdx  []int32
	auxVal  []float32
	auxDpre []float32
	auxCnt  []int32
	dead    []int32 // dead latents, ascending

	xhat []float32 // [n, d] reconstruction
	gx   []float32 // [n, d] dL/dx̂
	gaux []float32 // [n, d] dL_aux/dê
	v    []float32 // [n, d] each row's share of dL/db_pre

	rowLoss []float64 // [n, 3]: squared error, Σz, auxiliary squared error

	// Per latent, the slots that use it in ascending row order:
	// pos[start[j]:start[j+1]] (main) and apos[astart[j]:astart[j+1]] (aux).
	start, pos, astart, apos []int32
}

func newBatch(rows, d, m, k, auxK int, kern *blas.Kernel) *batch {
	return &batch{capRows: rows, d: d, m: m, k: k, auxK: auxK,
		x: make([]float32, rows*d), xc: make([]float32, rows*d),
		ap:  blas.NewPacked(rows, d, kern.MR()),
		wp:  blas.NewPacked(m, d, kern.NR()),
		pre: make([]float32, rows*m),
		idx: make([]int32, rows*k), val: make([]float32, rows*k), dpre: make([]float32, rows*k), cnt: make([]int32, rows),
		auxIdx: make([]int32, rows*auxK), auxVal: make([]float32, rows*auxK), auxDpre: make([]float32, rows*auxK), auxCnt: make([]int32, rows),
		xhat: make([]float32, rows*d), gx: make([]float32, rows*d), gaux: make([]float32, rows*d), v: make([]float32, rows*d),
		rowLoss: make([]float64, 3*rows),
		start:   make([]int32, m+1), pos: make([]int32, rows*k), astart: make([]int32, m+1), apos: make([]int32, rows*auxK),
	}
}

// load copies the rows x[r] for r in rows into the batch.
func (b *batch) load(x []float32, rows []int, d int) {
	b.n = len(rows)
	for i, r := range rows {
		copy(b.x[i*d:(i+1)*d], x[r*d:(r+1)*d])
	}
}

// active returns the number of nonzero codes of the batch.
func (b *batch) active() int64 {
	var n int64
	for _, c := range b.cnt[:b.n] {
		n += int64(c)
	}
	return n
}

// losses are the terms of one step's loss, each averaged over the rows:
// mse = Σ‖x−x̂‖²/n, l1 = λ·Σz/n, aux = α·Σ‖e−ê‖²/n.
type losses struct{ mse, l1, aux float64 }

// encode computes b.pre = W_enc·(x − b_pre) + b_enc for the batch's rows.
func (t *trainer) encode(b *batch) {
	d, m, n := t.d, t.m, b.n
	blas.ParallelRows(t.threads, n, 64, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			xr, cr := b.x[i*d:(i+1)*d], b.xc[i*d:(i+1)*d]
			for c, v := range xr {
				cr[c] = v - t.p.bPre[c]
			}
		}
	})
	b.ap.Rows = n
	t.kern.Pack(b.ap, b.xc, d, 1, t.threads)
	t.kern.Pack(b.wp, t.p.wEnc, d, 1, t.threads)
	t.kern.Gemm(b.pre, m, b.ap, b.wp, n, m, d, t.threads)
	blas.ParallelRows(t.threads, n, 16, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			row := b.pre[i*m : (i+1)*m]
			for j, v := range t.p.bEnc {
				row[j] += v
			}
		}
	})
}

// forwardBackward runs the batch forward and writes the gradient of
//
//	L = (1/n)·Σ_i ‖x_i − x̂_i‖² + λ·(1/n)·Σ_i Σ_j z_ij + α·(1/n)·Σ_i ‖e_i − ê_i‖²
//
// to t.g, where x̂_i = Σ_j z_ij·W_dec[j] + b_pre, e_i = x_i − x̂_i is held
// constant (no gradient flows through it) and ê_i = Σ_j a_ij·W_dec[j] is
// the reconstruction of e_i from the auxiliary codes a_i: the ReLU of the
// auxK largest pre-activations among the dead latents. The TopK (or ReLU)
// selection is piecewise constant, so the gradient reaches a
// pre-activation only where its code is nonzero.
func (t *trainer) forwardBackward(b *batch, dead []bool) losses {
	d, m, n, k := t.d, t.m, b.n, b.k
	t.encode(b)
	b.dead = b.dead[:0]
	if t.auxK > 0 && t.auxCoef > 0 {
		for j, dd := range dead {
			if dd {
				b.dead = append(b.dead, int32(j))
			}
		}
	}
	inv := 1 / float32(n)
	blas.ParallelRows(t.threads, n, 8, func(lo, hi int) {
		heap := make([]int32, max(k, b.auxK))
		for i := lo; i < hi; i++ {
			t.rowForwardBackward(b, i, inv, heap)
		}
	})

	// Per-latent gradients, each latent summing its rows in order.
	b.index()
	gwd, gwe, gbe := t.g.wDec, t.g.wEnc, t.g.bEnc
	const chunk = 16
	blas.ParallelFor(t.threads, (m+chunk-1)/chunk, func(_, c int) {
		for j := c * chunk; j < min((c+1)*chunk, m); j++ {
			wd, we := gwd[j*d:(j+1)*d], gwe[j*d:(j+1)*d]
			clear(wd)
			clear(we)
			var be float32
			for _, p := range b.pos[b.start[j]:b.start[j+1]] {
				i := int(p) / k
				z, dp := b.val[p], b.dpre[p]
				axpy(wd, z, b.gx[i*d:(i+1)*d])
				axpy(we, dp, b.xc[i*d:(i+1)*d])
				be += dp
			}
			for _, p := range b.apos[b.astart[j]:b.astart[j+1]] {
				i := int(p) / b.auxK
				a, dp := b.auxVal[p], b.auxDpre[p]
				axpy(wd, a, b.gaux[i*d:(i+1)*d])
				axpy(we, dp, b.xc[i*d:(i+1)*d])
				be += dp
			}
			gbe[j] = be
		}
	})
	// dL/db_pre: column sums of v in row order.
	blas.ParallelRows(t.threads, d, 16, func(lo, hi int) {
		for c := lo; c < hi; c++ {
			var s float32
			for i := 0; i < n; i++ {
				s += b.v[i*d+c]
			}
			t.g.bPre[c] = s
		}
	})
	var l losses
	for i := 0; i < n; i++ {
		l.mse += b.rowLoss[3*i]
		l.l1 += b.rowLoss[3*i+1]
		l.aux += b.rowLoss[3*i+2]
	}
	l.mse /= float64(n)
	l.l1 *= float64(t.l1) / float64(n)
	l.aux *= float64(t.auxCoef) / float64(n)
	return l
}

// rowForwardBackward does the work of row i: selecting its codes,
// reconstructing it, its losses and the gradients that belong to the row
// (dL/dx̂, dL/dpre at the active slots, the row's share of dL/db_pre).
func (t *trainer) rowForwardBackward(b *batch, i int, inv float32, heap []int32) {
	d, m, k := t.d, t.m, b.k
	pre := b.pre[i*m : (i+1)*m]
	idx, val := b.idx[i*k:(i+1)*k], b.val[i*k:(i+1)*k]
	var cnt int
	if t.l1 > 0 {
		for j, v := range pre {
			if v > 0 {
				idx[cnt], val[cnt] = int32(j), v
				cnt++
			}
		}
	} else {
		sel := topK(pre, nil, k, heap)
		for _, j := range sel {
			if v := pre[j]; v > 0 {
				idx[cnt], val[cnt] = j, v
				cnt++
			}
		}
	}
	b.cnt[i] = int32(cnt)

	x, xhat, gx := b.x[i*d:(i+1)*d], b.xhat[i*d:(i+1)*d], b.gx[i*d:(i+1)*d]
	copy(xhat, t.p.bPre)
	var sumZ float64
	for s := 0; s < cnt; s++ {
		axpy(xhat, val[s], t.p.wDec[int(idx[s])*d:int(idx[s]+1)*d])
		sumZ += float64(val[s])
	}
	var se float64
	for c := range gx {
		r := xhat[c] - x[c]
		se += float64(r) * float64(r)
		gx[c] = 2 * inv * r
	}
	b.rowLoss[3*i], b.rowLoss[3*i+1], b.rowLoss[3*i+2] = se, sumZ, 0

	v := b.v[i*d : (i+1)*d]
	copy(v, gx)
	dpre := b.dpre[i*k : (i+1)*k]
	l1 := t.l1 * inv
	for s := 0; s < cnt; s++ {
		j := int(idx[s])
		dp := dot(gx, t.p.wDec[j*d:(j+1)*d]) + l1
		dpre[s] = dp
		axpy(v, -dp, t.p.wEnc[j*d:(j+1)*d])
	}

	// Auxiliary loss on the residual with the dead latents.
	b.auxCnt[i] = 0
	if len(b.dead) == 0 {
		return
	}
	ka := b.auxK
	aIdx, aVal, aDpre := b.auxIdx[i*ka:(i+1)*ka], b.auxVal[i*ka:(i+1)*ka], b.auxDpre[i*ka:(i+1)*ka]
	var acnt int
	for _, j := range topK(pre, b.dead, min(ka, len(b.dead)), heap) {
		if a := pre[j]; a > 0 {
			aIdx[acnt], aVal[acnt] = j, a
			acnt++
		}
	}
	b.auxCnt[i] = int32(acnt)
	if acnt == 0 {
		return
	}
	// diff = ê − e = ê + (x̂ − x); gaux = 2α/n·diff.
	ga := b.gaux[i*d : (i+1)*d]
	for c := range ga {
		ga[c] = xhat[c] - x[c]
	}
	for s := 0; s < acnt; s++ {
		axpy(ga, aVal[s], t.p.wDec[int(aIdx[s])*d:int(aIdx[s]+1)*d])
	}
	var ae float64
	scale := 2 * t.auxCoef * inv
	for c, r := range ga {
		ae += float64(r) * float64(r)
		ga[c] = scale * r
	}
	b.rowLoss[3*i+2] = ae
	for s := 0; s < acnt; s++ {
		j := int(aIdx[s])
		dp := dot(ga, t.p.wDec[j*d:(j+1)*d])
		aDpre[s] = dp
		axpy(v, -dp, t.p.wEnc[j*d:(j+1)*d])
	}
}

// index builds, per latent, the list of slots using it, in row order.
func (b *batch) index() {
	build := func(start, pos []int32, idx []int32, cnt []int32, slots int) {
		clear(start)
		for i := 0; i < b.n; i++ {
			for _, j := range idx[i*slots : i*slots+int(cnt[i])] {
				start[j+1]++
			}
		}
		for j := 0; j < b.m; j++ {
			start[j+1] += start[j]
		}
		next := make([]int32, b.m)
		copy(next, start[:b.m])
		for i := 0; i < b.n; i++ {
			for s, j := range idx[i*slots : i*slots+int(cnt[i])] {
				pos[next[j]] = int32(i*slots + s)
				next[j]++
			}
		}
	}
	build(b.start, b.pos, b.idx, b.cnt, b.k)
	if b.auxK > 0 {
		build(b.astart, b.apos, b.auxIdx, b.auxCnt, b.auxK)
	} else {
		clear(b.astart)
	}
}

// Adam's constants.
const (
	beta1   = 0.9
	beta2   = 0.999
	adamEps = 1e-8
)

// update takes one Adam step with t.g: the decoder gradient loses its
// component along each decoder row first, and the decoder rows are
// renormalised to unit length after.
func (t *trainer) update() {
	d, m := t.d, t.m
	blas.ParallelRows(t.threads, m, 64, func(lo, hi int) {
		for j := lo; j < hi; j++ {
			w, g := t.p.wDec[j*d:(j+1)*d], t.g.wDec[j*d:(j+1)*d]
			axpy(g, -dot(g, w), w)
		}
	})
	t.steps++
	bc1 := 1 - math.Pow(beta1, float64(t.steps))
	bc2 := 1 - math.Pow(beta2, float64(t.steps))
	lr := float32(t.opt.LR / bc1)
	isq := 1 / math.Sqrt(bc2)
	ps, gs, m1s, m2s := t.p.slices(), t.g.slices(), t.m1.slices(), t.m2.slices()
	for a := range ps {
		p, g, m1, m2 := ps[a], gs[a], m1s[a], m2s[a]
		blas.ParallelRows(t.threads, len(p), 4096, func(lo, hi int) {
			for i := lo; i < hi; i++ {
				gi := g[i]
				mi := beta1*m1[i] + (1-beta1)*gi
				vi := beta2*m2[i] + (1-beta2)*gi*gi
				m1[i], m2[i] = mi, vi
				p[i] -= lr * mi / (float32(math.Sqrt(float64(vi))*isq) + adamEps)
			}
		})
	}
	blas.ParallelRows(t.threads, m, 64, func(lo, hi int) {
		normalizeRows(t.p.wDec[lo*d:hi*d], hi-lo, d)
	})
}

// axpy sets y += a·x.
func axpy(y []float32, a float32, x []float32) {
	x = x[:len(y)]
	i := 0
	for ; i+4 <= len(y); i += 4 {
		yy := y[i : i+4 : i+4]
		xx := x[i : i+4 : i+4]
		yy[0] += a * xx[0]
		yy[1] += a * xx[1]
		yy[2] += a * xx[2]
		yy[3] += a * xx[3]
	}
	for ; i < len(y); i++ {
		y[i] += a * x[i]
	}
}

// dot returns Σ x[i]·y[i], summed in float32 in index order.
func dot(x, y []float32) float32 {
	y = y[:len(x)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(x); i += 4 {
		s0 += x[i] * y[i]
		s1 += x[i+1] * y[i+1]
		s2 += x[i+2] * y[i+2]
		s3 += x[i+3] * y[i+3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}
