package train

import (
	"context"
	"fmt"
	"math"

	"github.com/lmsparse/lmsparse/internal/fastmath"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// Loss is the loss of one batch: Total = (1−α)·CE + α·KL, each the mean
// over the batch's B·(T−1) next-token predictions.
type Loss struct {
	Total float64 `json:"loss"`
	CE    float64 `json:"ce"`
	KL    float64 `json:"kl,omitempty"`
}

// headChunkBytes bounds the logits of one chunk of rows.
const headChunkBytes = 64 << 20

// head computes the logits of every predicting row of the windows from
// w.hf, the loss against the next tokens (and the teacher's logits when
// alpha > 0), sets w.dh to the loss's gradient with respect to w.hf and,
// when grad is set, adds the head's gradient. Row t of a window predicts
// token t+1; the last row predicts nothing.
func (n *Net) headLoss(ctx context.Context, p *mm, w *work, ids [][]int, teacher model.LM, alpha float64, grad bool) (Loss, error) {
	D, V := n.cfg.HiddenSize, n.cfg.VocabSize
	B, T := w.B, w.T
	th := p.threads
	kr := p.kr
	hb := p.pack(&w.headB, rowMajor(n.head, D), V, D, kr.NR()) // logits = hf·headᵀ
	var ht *blas.Packed
	if grad {
		ht = p.pack(&w.headT, colMajor(n.head, D), D, V, kr.NR()) // dh = dlogits·head: B = headᵀ [D, V]
	}
	chunk := max(1, min(T-1, headChunkBytes/4/V))
	w.logits = grow(w.logits, chunk*V)
	logits := w.logits
	var tl []float32
	if alpha > 0 {
		w.tl = grow(w.tl, chunk*V)
		tl = w.tl
	}
	N := float64(B * (T - 1))
	ce := make([]float64, chunk)
	kl := make([]float64, chunk)
	var sumCE, sumKL float64
	clear(w.dh)
	for b := range B {
		var tfn func(r0, rows int, out []float32)
		if alpha > 0 {
			var err error
			if tfn, err = teacher.Window(ctx, ids[b], 0); err != nil {
				return Loss{}, fmt.Errorf("teacher: %w", err)
			}
		}
		for c0 := 0; c0 < T-1; c0 += chunk {
			if err := ctx.Err(); err != nil {
				return Loss{}, err
			}
			rows := min(chunk, T-1-c0)
			r0 := b*T + c0
			hf := n.hfRows(w, r0)
			pa := p.pack(&p.pa, rowMajor(hf, D), rows, D, kr.MR())
			kr.Gemm(logits, V, pa, hb, rows, V, D, th)
			if tfn != nil {
				tfn(c0, rows, tl)
			}
			blas.ParallelRows(th, rows, 4, func(lo, hi int) {
				for i := lo; i < hi; i++ {
					z := logits[i*V : (i+1)*V]
					var t []float32
					if tl != nil {
						t = tl[i*V : (i+1)*V]
					}
					ce[i], kl[i] = rowLoss(z, t, ids[b][c0+i+1], alpha, N)
				}
			})
			for i := range rows {
				sumCE += ce[i]
				sumKL += kl[i]
			}
			if !grad {
				continue
			}
			// dh rows = dlogits·head; dHead += dlogitsᵀ·hf.
			pd := p.pack(&p.pa, rowMajor(logits, V), rows, V, kr.MR())
			kr.Gemm(w.dh[r0*D:], D, pd, ht, rows, D, V, th)
			p.gemm(n.gHead, D, colMajor(logits, V), colMajor(hf, D), V, D, rows, true)
		}
	}
	l := Loss{CE: sumCE / N, KL: sumKL / N}
	l.Total = (1-alpha)*l.CE + alpha*l.KL
	return l, nil
}

func (n *Net) hfRows(w *work, r0 int) []float32 { return w.hf[r0*n.cfg.HiddenSize:] }

// rowLoss returns one row's cross-entropy against target and KL(teacher ‖
// student) (0 without t), and replaces z by the gradient of the row's
// share of the batch loss, ((1−α)·(p − onehot) + α·(p − p_t))/N, and t
// by the teacher's probabilities. Sums are in float64; each exponential
// is one float32 exp.
func rowLoss(z, t []float32, target int, alpha, N float64) (ce, kl float64) {
	var tPlogP, tDotZ float64 // Σ p_t·log p_t, Σ p_t·z
	if t != nil {
		tmx := maxf(t)
		var sum, sx float64
		for v, tv := range t {
			e := fastmath.Expf(tv - tmx)
			t[v] = e
			sum += float64(e)
			sx += float64(e) * float64(tv-tmx)
		}
		tPlogP = sx/sum - math.Log(sum)
		inv := float32(1 / sum)
		for v := range t {
			t[v] *= inv
		}
		for v, zv := range z {
			tDotZ += float64(t[v]) * float64(zv)
		}
	}
	mx := maxf(z)
	zt := float64(z[target])
	var sum float64
	for v, zv := range z {
		e := fastmath.Expf(zv - mx)
		z[v] = e
		sum += float64(e)
	}
	lse := float64(mx) + math.Log(sum)
	ce = lse - zt
	if t != nil {
		kl = tPlogP - tDotZ + lse
	}
	inv := 1 / sum
	for v, e := range z {
		ps := float64(e) * inv
		g := (1 - alpha) * ps
		if t != nil {
			g += alpha * (ps - float64(t[v]))
		}
		z[v] = float32(g / N)
	}
	z[target] -= float32((1 - alpha) / N)
	return ce, kl
}

func maxf(x []float32) float32 {
	mx := float32(math.Inf(-1))
	for _, v := range x {
		mx = max(mx, v)
	}
	return mx
}

// grow returns b with length n, reallocated only when too short.
func grow(b []float32, n int) []float32 {
	if cap(b) < n {
		return make([]float32, n)
	}
	return b[:n]
}
