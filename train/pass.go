package train

import (
	"math"

	"github.com/lmsparse/lmsparse/internal/fastmath"
	"github.com/lmsparse/lmsparse/tensor/blas"
)

// acts are one block's activations, kept from the forward pass for the
// backward pass (the "whole-window activations per layer" choice: see the
// package documentation, "Memory").
type acts struct {
	x   []float32 // block input, the residual stream [R, D]
	h1  []float32 // input norm output [R, D]
	qkv []float32 // q|k|v after bias and RoPE [R, qkvDim]
	p   []float32 // attention probabilities [B·H, T, T]
	att []float32 // attention output [R, H·hd]
	x2  []float32 // residual stream after attention [R, D]
	h2  []float32 // post-attention norm output [R, D]
	up  []float32 // MLP first projection (+bias), before the activation [R, upDim]
	act []float32 // MLP activation output [R, I]
}

// work is the memory of a pass over B windows of T tokens, reused from
// step to step while the shape stays.
type work struct {
	B, T   int
	layers []acts
	xf     []float32 // final residual [R, D]
	hf     []float32 // final norm output [R, D]
	tmp    []float32 // [R, D] projection output
	// backward
	dx, dx2, dh []float32 // [R, D]
	dAct        []float32 // [R, I]
	dUp         []float32 // [R, upDim]
	dAtt        []float32 // [R, H·hd]
	dQKV        []float32 // [R, qkvDim]
	cos, sin    []float32 // RoPE tables [T, hd/2]
	// head: the packed LM head (both layouts) and a chunk of logits and
	// of teacher logits
	headB, headT blas.Packed
	logits, tl   []float32
	heads        []*headWork
}

// headWork is one attention worker's memory.
type headWork struct {
	mm       mm
	s, ds    []float32 // [T, T]
	sum      []float64
	rowDotDP []float64
}

func (n *Net) dims() (D, H, KV, hd, qkvDim, I, upDim int) {
	c := &n.cfg
	D, H, KV, hd, I = c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim, c.IntermediateSize
	qkvDim = (H + 2*KV) * hd
	upDim = I
	if !n.gpt2 {
		upDim = 2 * I
	}
	return
}

func (n *Net) newWork(B, T, threads int) *work {
	D, H, _, hd, qkvDim, I, upDim := n.dims()
	R := B * T
	f := func(k int) []float32 { return make([]float32, k) }
	w := &work{B: B, T: T, layers: make([]acts, len(n.layers))}
	for l := range w.layers {
		w.layers[l] = acts{x: f(R * D), h1: f(R * D), qkv: f(R * qkvDim), p: f(B * H * T * T), att: f(R * H * hd),
			x2: f(R * D), h2: f(R * D), up: f(R * upDim), act: f(R * I)}
	}
	w.xf, w.hf, w.tmp = f(R*D), f(R*D), f(R*D)
	w.dx, w.dx2, w.dh = f(R*D), f(R*D), f(R*D)
	w.dAct, w.dUp, w.dAtt, w.dQKV = f(R*I), f(R*upDim), f(R*H*hd), f(R*qkvDim)
	if !n.gpt2 {
		half := hd / 2
		w.cos, w.sin = f(T*half), f(T*half)
		for t := range T {
			for i, fr := range n.invFreq {
				s, c := math.Sincos(float64(t) * fr)
				w.cos[t*half+i], w.sin[t*half+i] = float32(c), float32(s)
			}
		}
	}
	w.heads = make([]*headWork, blas.Threads(threads))
	for i := range w.heads {
		w.heads[i] = &headWork{s: f(T * T), ds: f(T * T), sum: make([]float64, T), rowDotDP: make([]float64, T)}
	}
	return w
}

// bytes returns the activation memory of a pass of B windows of T tokens.
func (n *Net) workBytes(B, T, threads int) int64 {
	D, H, _, hd, qkvDim, I, upDim := n.dims()
	R := int64(B * T)
	per := R*int64(4*D+qkvDim+H*hd+upDim+I) + int64(B*H)*int64(T)*int64(T)
	total := per*int64(len(n.layers)) + R*int64(6*D+I+upDim+H*hd+qkvDim) + int64(blas.Threads(threads))*2*int64(T)*int64(T)
	return total * 4
}

// forward runs the blocks over the windows (ids [B][T]), keeping their
// activations in w, and leaves the final norm's output in w.hf.
func (n *Net) forward(p *mm, w *work, ids [][]int) {
	D := n.cfg.HiddenSize
	B, T := w.B, w.T
	th := p.threads
	x0 := w.layers[0].x
	blas.ParallelRows(th, B*T, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x0[r*D : (r+1)*D]
			copy(row, n.embed[ids[r/T][r%T]*D:])
			if n.wpe != nil {
				pos := n.wpe[(r%T)*D:]
				for i := range row {
					row[i] += pos[i]
				}
			}
		}
	})
	for l := range n.layers {
		next := w.xf
		if l+1 < len(n.layers) {
			next = w.layers[l+1].x
		}
		n.blockForward(p, w, &n.layers[l], &w.layers[l], next)
	}
	n.norm(th, w.hf, w.xf, n.nfw, n.nfb, B*T)
}

func (n *Net) blockForward(p *mm, w *work, L *layer, a *acts, out []float32) {
	_, H, KV, _, _, I, upDim := n.dims()
	R := w.B * w.T
	th := p.threads
	n.norm(th, a.h1, a.x, L.n1w, L.n1b, R)
	L.qkv.forward(p, a.qkv, a.h1, R)
	if !n.gpt2 {
		n.rope(th, w, a.qkv, R, H+KV, false)
	}
	n.attention(p, w, a)
	L.o.forward(p, w.tmp, a.att, R)
	addInto(th, a.x2, a.x, w.tmp)
	n.norm(th, a.h2, a.x2, L.n2w, L.n2b, R)
	L.up.forward(p, a.up, a.h2, R)
	gelu := n.cfg.Activation == "gelu"
	blas.ParallelRows(th, R, 8, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			u, o := a.up[r*upDim:(r+1)*upDim], a.act[r*I:(r+1)*I]
			switch {
			case !n.gpt2:
				for i, g := range u[:I] {
					o[i] = g / (1 + fastmath.Expf(-g)) * u[I+i]
				}
			case gelu:
				for i, v := range u {
					o[i] = float32(0.5 * float64(v) * (1 + math.Erf(float64(v)/math.Sqrt2)))
				}
			default:
				for i, v := range u {
					o[i] = v / (1 + fastmath.Expf(-2*geluC*(v+0.044715*v*v*v)))
				}
			}
		}
	})
	L.down.forward(p, w.tmp, a.act, R)
	addInto(th, out, a.x2, w.tmp)

}

const geluC = 0.7978845608028654 // √(2/π)

// addInto sets dst = a + b.
func addInto(threads int, dst, a, b []float32) {
	blas.ParallelRows(threads, len(dst)/1024+1, 1, func(lo, hi int) {
		for i := lo * 1024; i < min(hi*1024, len(dst)); i++ {
			dst[i] = a[i] + b[i]
		}
	})
}

// norm applies the input norm (RMSNorm, or LayerNorm when b is set) to
// each row of x.
func (n *Net) norm(threads int, out, x, wt, b []float32, rows int) {
	D := n.cfg.HiddenSize
	eps := n.cfg.NormEps
	blas.ParallelRows(threads, rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			xr, or := x[r*D:(r+1)*D], out[r*D:(r+1)*D]
			if b == nil {
				var ss float64
				for _, v := range xr {
					ss += float64(v) * float64(v)
				}
				inv := float32(1 / math.Sqrt(ss/float64(D)+eps))
				for i, v := range xr {
					or[i] = (v * inv) * wt[i]
				}
				continue
			}
			mean, inv := meanInv(xr, eps)
			for i, v := range xr {
				or[i] = float32((float64(v)-mean)*inv)*wt[i] + b[i]
			}
		}
	})
}

func meanInv(x []float32, eps float64) (mean, inv float64) {
	var s float64
	for _, v := range x {
		s += float64(v)
	}
	mean = s / float64(len(x))
	var ss float64
	for _, v := range x {
		d := float64(v) - mean
		ss += d * d
	}
	return mean, 1 / math.Sqrt(ss/float64(len(x))+eps)
}

// normBackward adds to dx the gradient through the norm of x given dy,
// and to gw (and gb) the weight (and bias) gradients.
func (n *Net) normBackward(threads int, dx, dy, x, wt, b, gw, gb []float32, rows int) {
	D := n.cfg.HiddenSize
	eps := n.cfg.NormEps
	chunks := (rows + sumChunk - 1) / sumChunk
	pw := make([]float64, chunks*D)
	var pb []float64
	if b != nil {
		pb = make([]float64, chunks*D)
	}
	blas.ParallelFor(threads, chunks, func(_, c int) {
		sw := pw[c*D : (c+1)*D]
		for r := c * sumChunk; r < min(rows, (c+1)*sumChunk); r++ {
			xr, dyr, dxr := x[r*D:(r+1)*D], dy[r*D:(r+1)*D], dx[r*D:(r+1)*D]
			if b == nil {
				var ss float64
				for _, v := range xr {
					ss += float64(v) * float64(v)
				}
				inv := 1 / math.Sqrt(ss/float64(D)+eps)
				// y = x·inv·w: dx = inv·(dy⊙w) − x·inv³/D·Σ(dy⊙w⊙x).
				var dot float64
				for i, v := range xr {
					g := float64(dyr[i]) * float64(wt[i])
					dot += g * float64(v)
					sw[i] += float64(dyr[i]) * float64(v) * inv
				}
				k := dot * inv * inv * inv / float64(D)
				for i, v := range xr {
					dxr[i] += float32(inv*float64(dyr[i])*float64(wt[i]) - float64(v)*k)
				}
				continue
			}
			sb := pb[c*D : (c+1)*D]
			mean, inv := meanInv(xr, eps)
			// xhat = (x−μ)·inv, y = xhat·w + b:
			// dx = inv·(g − mean(g) − xhat·mean(g⊙xhat)), g = dy⊙w.
			var sg, sgx float64
			for i, v := range xr {
				xh := (float64(v) - mean) * inv
				g := float64(dyr[i]) * float64(wt[i])
				sg += g
				sgx += g * xh
				sw[i] += float64(dyr[i]) * xh
				sb[i] += float64(dyr[i])
			}
			sg /= float64(D)
			sgx /= float64(D)
			for i, v := range xr {
				xh := (float64(v) - mean) * inv
				g := float64(dyr[i]) * float64(wt[i])
				dxr[i] += float32(inv * (g - sg - xh*sgx))
			}
		}
	})
	for i := range D {
		var s, sb float64
		for c := range chunks {
			s += pw[c*D+i]
			if pb != nil {
				sb += pb[c*D+i]
			}
		}
		gw[i] += float32(s)
		if gb != nil {
			gb[i] += float32(sb)
		}
	}
}

// rope rotates the first heads head vectors of each row of v ([R, ld])
// by their position (inverse: by minus it), Hugging Face's rotate-half.
func (n *Net) rope(threads int, w *work, v []float32, rows, heads int, inverse bool) {
	_, _, _, hd, ld, _, _ := n.dims()
	half := hd / 2
	T := w.T
	blas.ParallelRows(threads, rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			t := r % T
			cs, sn := w.cos[t*half:(t+1)*half], w.sin[t*half:(t+1)*half]
			row := v[r*ld:]
			for h := range heads {
				x := row[h*hd : (h+1)*hd]
				a, b := x[:half], x[half:hd]
				for i, c := range cs {
					s := sn[i]
					if inverse {
						s = -s
					}
					x0, x1 := a[i], b[i]
					a[i] = x0*c - x1*s
					b[i] = x1*c + x0*s
				}
			}
		}
	})
}

// attention runs causal attention over each window and head: it keeps the
// probabilities in a.p and writes the output to a.att.
func (n *Net) attention(p *mm, w *work, a *acts) {
	_, H, KV, hd, ld, _, _ := n.dims()
	T, B := w.T, w.B
	qDim := H * hd
	kOff, vOff := H*hd, (H+KV)*hd
	group := H / KV
	scale := float32(1 / math.Sqrt(float64(hd)))
	negInf := float32(math.Inf(-1))
	blas.ParallelFor(p.threads, B*H, func(wk, j int) {
		hw := w.heads[wk]
		hw.mm.kr, hw.mm.threads = p.kr, 1
		b, h := j/H, j%H
		g := h / group
		base := b * T * ld
		k := rowMajor(a.qkv[base+kOff+g*hd:], ld)
		P := a.p[j*T*T : (j+1)*T*T]
		// Query blocks see only the keys up to their last query: the
		// products skip the masked part beyond each block.
		for q0 := 0; q0 < T; q0 += attnBlock {
			q1 := min(q0+attnBlock, T)
			hw.mm.gemm(P[q0*T:], T, rowMajor(a.qkv[base+q0*ld+h*hd:], ld), k, q1-q0, q1, hd, false)
			for i := q0; i < q1; i++ {
				row := P[i*T : (i+1)*T]
				mx := negInf
				for _, v := range row[:i+1] {
					mx = max(mx, v*scale)
				}
				var sum float64
				for jj, v := range row[:i+1] {
					e := fastmath.Expf(v*scale - mx)
					row[jj] = e
					sum += float64(e)
				}
				inv := float32(1 / sum)
				for jj := range row[:i+1] {
					row[jj] *= inv
				}
				clear(row[i+1:])
			}
			// O = P·V: B operand Vᵀ, element (d, t) at V[t*ld+d].
			hw.mm.gemm(a.att[(b*T+q0)*qDim+h*hd:], qDim, rowMajor(P[q0*T:], T), colMajor(a.qkv[base+vOff+g*hd:], ld), q1-q0, hd, q1, false)
		}
	})
}

// attnBlock is the number of queries whose attention products run
// together (the causal mask skips the keys after a block's last query).
const attnBlock = 128

// attentionBackward sets w.dQKV (before the inverse RoPE) from w.dAtt.
func (n *Net) attentionBackward(p *mm, w *work, a *acts) {
	_, H, KV, hd, ld, _, _ := n.dims()
	T, B := w.T, w.B
	qDim := H * hd
	kOff, vOff := H*hd, (H+KV)*hd
	group := H / KV
	scale := 1 / math.Sqrt(float64(hd))
	blas.ParallelFor(p.threads, B*KV, func(wk, j int) {
		hw := w.heads[wk]
		hw.mm.kr, hw.mm.threads = p.kr, 1
		b, g := j/KV, j%KV
		base := b * T * ld
		K := a.qkv[base+kOff+g*hd:]
		V := a.qkv[base+vOff+g*hd:]
		dK := w.dQKV[base+kOff+g*hd:]
		dV := w.dQKV[base+vOff+g*hd:]
		for t := range T {
			clear(dK[t*ld : t*ld+hd])
			clear(dV[t*ld : t*ld+hd])
		}
		for hh := range group {
			h := g*group + hh
			P := a.p[(b*H+h)*T*T : (b*H+h+1)*T*T]
			Q := a.qkv[base+h*hd:]
			dO := w.dAtt[b*T*qDim+h*hd:]
			dP, dS := hw.s, hw.ds
			for q0 := 0; q0 < T; q0 += attnBlock {
				q1 := min(q0+attnBlock, T)
				rows := q1 - q0
				// dP = dO·Vᵀ over the keys the block sees.
				hw.mm.gemm(dP[q0*T:], T, rowMajor(dO[q0*qDim:], qDim), rowMajor(V, ld), rows, q1, hd, false)
				// dS = P⊙(dP − Σ_j P·dP)·scale.
				for i := q0; i < q1; i++ {
					pr, dpr, dsr := P[i*T:(i+1)*T], dP[i*T:(i+1)*T], dS[i*T:(i+1)*T]
					var dot float64
					for jj, v := range pr[:i+1] {
						dot += float64(v) * float64(dpr[jj])
					}
					for jj, v := range pr[:i+1] {
						dsr[jj] = float32(float64(v) * (float64(dpr[jj]) - dot) * scale)
					}
					clear(dsr[i+1 : q1])
				}
				// dQ = dS·K: B operand Kᵀ, element (d, t) at K[t*ld+d].
				hw.mm.gemm(w.dQKV[base+q0*ld+h*hd:], ld, rowMajor(dS[q0*T:], T), colMajor(K, ld), rows, hd, q1, false)
				// dK += dSᵀ·Q, dV += Pᵀ·dO over the block's queries.
				hw.mm.gemm(dK, ld, colMajor(dS[q0*T:], T), colMajor(Q[q0*ld:], ld), q1, hd, rows, true)
				hw.mm.gemm(dV, ld, colMajor(P[q0*T:], T), colMajor(dO[q0*qDim:], qDim), q1, hd, rows, true)
			}
		}
	})
}

// backward propagates w.dh (the gradient of the loss with respect to the
// final norm's output, [R, D]) through the blocks to every parameter
// gradient (added to G).
func (n *Net) backward(p *mm, w *work, ids [][]int) {
	D, H, KV, _, _, I, upDim := n.dims()
	B, T := w.B, w.T
	R := B * T
	th := p.threads
	clear(w.dx)
	n.normBackward(th, w.dx, w.dh, w.xf, n.nfw, n.nfb, n.gnfw, n.gnfb, R)
	gelu := n.cfg.Activation == "gelu"
	for l := len(n.layers) - 1; l >= 0; l-- {
		L, a := &n.layers[l], &w.layers[l]
		// MLP: x3 = x2 + down(act(up(norm2(x2)))).
		L.down.backward(p, w.dAct, w.dx, a.act, R)
		blas.ParallelRows(th, R, 8, func(lo, hi int) {
			for r := lo; r < hi; r++ {
				u, da, du := a.up[r*upDim:(r+1)*upDim], w.dAct[r*I:(r+1)*I], w.dUp[r*upDim:(r+1)*upDim]
				switch {
				case !n.gpt2:
					for i, g := range u[:I] {
						s := 1 / (1 + fastmath.Expf(-g))
						du[i] = da[i] * u[I+i] * s * (1 + g*(1-s))
						du[I+i] = da[i] * g * s
					}
				case gelu:
					for i, v := range u {
						x := float64(v)
						cdf := 0.5 * (1 + math.Erf(x/math.Sqrt2))
						pdf := math.Exp(-0.5*x*x) / math.Sqrt(2*math.Pi)
						du[i] = da[i] * float32(cdf+x*pdf)
					}
				default:
					for i, v := range u {
						s := 1 / (1 + fastmath.Expf(-2*geluC*(v+0.044715*v*v*v)))
						du[i] = da[i] * (s + v*s*(1-s)*2*geluC*(1+3*0.044715*v*v))
					}
				}
			}
		})
		L.up.backward(p, w.dh, w.dUp, a.h2, R)
		copy(w.dx2, w.dx)
		n.normBackward(th, w.dx2, w.dh, a.x2, L.n2w, L.n2b, L.n2gw, L.n2gb, R)
		// Attention: x2 = x + o(attn(qkv(norm1(x)))).
		L.o.backward(p, w.dAtt, w.dx2, a.att, R)
		n.attentionBackward(p, w, a)
		if !n.gpt2 {
			n.rope(th, w, w.dQKV, R, H+KV, true)
		}
		L.qkv.backward(p, w.dh, w.dQKV, a.h1, R)
		copy(w.dx, w.dx2)
		n.normBackward(th, w.dx, w.dh, a.x, L.n1w, L.n1b, L.n1gw, L.n1gb, R)
	}
	// Embeddings: scatter the rows in order (deterministic).
	for r := range R {
		dr := w.dx[r*D : (r+1)*D]
		ge := n.gEmbed[ids[r/T][r%T]*D:]
		for i, v := range dr {
			ge[i] += v
		}
		if n.gWpe != nil {
			gp := n.gWpe[(r%T)*D:]
			for i, v := range dr {
				gp[i] += v
			}
		}
	}

}
