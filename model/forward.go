package model

import (
	"context"
	"fmt"
	"math"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// Forward runs the model over one window of token ids (positions 0 to
// len(ids)-1, causal attention) and writes the logits, [len(ids), vocab]
// row-major, to logits.
func (m *Model) Forward(ids []int, logits []float32) error {
	return m.forward(context.Background(), ids, 0, logits)
}

// ForwardContext is [Model.Forward] that stops between layers when ctx is
// done, returning ctx.Err().
func (m *Model) ForwardContext(ctx context.Context, ids []int, logits []float32) error {
	return m.forward(ctx, ids, 0, logits)
}

// checkIDs validates a window of token ids.
func (m *Model) checkIDs(ids []int) error {
	if len(ids) == 0 {
		return fmt.Errorf("%w: no tokens", ErrInput)
	}
	if len(ids) > m.cfg.MaxPositions {
		return fmt.Errorf("%w: window of %d tokens is longer than the model's %d positions", ErrInput, len(ids), m.cfg.MaxPositions)
	}
	for i, id := range ids {
		if id < 0 || id >= m.cfg.VocabSize {
			return fmt.Errorf("%w: token id %d at position %d is outside the vocabulary [0, %d)", ErrInput, id, i, m.cfg.VocabSize)
		}
	}
	return nil
}

// scratch holds the packed A operand of a forward pass, reused by every
// projection (buf for dense weights, sp for sparse ones).
type scratch struct{ buf, sp []float32 }

// linear computes out = src·Wᵀ for rows×k of src (row stride ld) and the
// projection w of n outputs, into out with row stride ldc.
func (s *scratch) linear(m *Model, out []float32, ldc int, src []float32, rows, k, ld int, w weight, n int) {
	if w.sparse == nil {
		m.kern.Gemm(out, ldc, s.packA(m, src, rows, k, ld), w.dense, rows, n, k, m.threads)
		return
	}
	R := blas.SpanelRows
	sz := (rows + R - 1) / R * R * k
	if cap(s.sp) < sz {
		s.sp = make([]float32, sz)
	}
	a := &blas.Packed{Data: s.sp[:sz], Rows: rows, K: k, R: R}
	m.kern.Pack(a, src, ld, 1, m.threads)
	blas.SpMMTPacked(out, ldc, a, w.sparse, rows, m.threads)
}

// packA packs rows×k of src (row stride ld) as a gemm A operand into the
// reused buffer.
func (s *scratch) packA(m *Model, src []float32, rows, k, ld int) *blas.Packed {
	mr := m.kern.MR()
	n := (rows + mr - 1) / mr * mr * k
	if cap(s.buf) < n {
		s.buf = make([]float32, n)
	}
	a := &blas.Packed{Data: s.buf[:n], Rows: rows, K: k, R: mr}
	m.kern.Pack(a, src, ld, 1, m.threads)
	return a
}

// forward runs the window and writes the logits of positions [from, T) to
// logits, [(T-from), vocab].
func (m *Model) forward(ctx context.Context, ids []int, from int, logits []float32) error {
	if err := m.checkIDs(ids); err != nil {
		return err
	}
	T, V := len(ids), m.cfg.VocabSize
	if from < 0 || from >= T {
		return fmt.Errorf("%w: logits from position %d of a %d-token window", ErrInput, from, T)
	}
	if len(logits) != (T-from)*V {
		return fmt.Errorf("%w: logits buffer holds %d values, want %d (%d positions × vocab %d)", ErrInput, len(logits), (T-from)*V, T-from, V)
	}
	h, err := m.hidden(ctx, ids, from)
	if err != nil {
		return err
	}
	m.logits(h, T-from, logits)
	return nil
}

// logits computes the LM head for rows final hidden states h ([rows, dim])
// into out ([rows, vocab]).
func (m *Model) logits(h []float32, rows int, out []float32) {
	var s scratch
	D, V := m.cfg.HiddenSize, m.cfg.VocabSize
	s.linear(m, out, V, h, rows, D, D, m.head, V)
}

// hidden runs the window ids (already validated) through the embeddings,
// every layer and the final norm, and returns the normed hidden states of
// positions [from, T): [(T-from), dim].
func (m *Model) hidden(ctx context.Context, ids []int, from int) ([]float32, error) {
	c := &m.cfg
	T, D := len(ids), c.HiddenSize
	H, KV, hd := c.NumHeads, c.NumKVHeads, c.HeadDim
	qkvDim := (H + 2*KV) * hd
	upDim := c.IntermediateSize
	if m.arch == archLlama {
		upDim *= 2
	}
	th := m.threads

	x := make([]float32, T*D) // residual stream [T, dim]
	h := make([]float32, T*D) // normed input / projection output [T, dim]
	qkv := make([]float32, T*qkvDim)
	att := make([]float32, T*H*hd)
	mlp := make([]float32, T*upDim)
	var s scratch

	// Embeddings.
	blas.ParallelRows(th, T, 16, func(lo, hi int) {
		for t := lo; t < hi; t++ {
			row := x[t*D : (t+1)*D]
			if m.embed != nil {
				copy(row, m.embed[ids[t]*D:])
			} else {
				m.head.dense.Row(row, ids[t])
			}
			if m.wpe != nil {
				pos := m.wpe[t*D : (t+1)*D]
				for i := range row {
					row[i] += pos[i]
				}
			}
		}
	})
	var cos, sin []float32
	if m.arch == archLlama {
		cos, sin = m.rope(T)
	}
	// norm normalizes rows [from, T) of in into out.
	norm := func(out, in, w, b []float32, from int) {
		blas.ParallelRows(th, T-from, 16, func(lo, hi int) {
			for t := from + lo; t < from+hi; t++ {
				if m.arch == archGPT2 {
					layerNorm(out[t*D:(t+1)*D], in[t*D:(t+1)*D], w, b, c.NormEps)
				} else {
					rmsNorm(out[t*D:(t+1)*D], in[t*D:(t+1)*D], w, c.NormEps)
				}
			}
		})
	}
	// addRes adds proj (+ bias) into the residual stream: x += proj + b.
	addRes := func(proj, b []float32) {
		blas.ParallelRows(th, T, 16, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				xr, pr := x[t*D:(t+1)*D], proj[t*D:(t+1)*D]
				if b != nil {
					for i := range xr {
						xr[i] += pr[i] + b[i]
					}
				} else {
					for i := range xr {
						xr[i] += pr[i]
					}
				}
			}
		})
	}

	for li := range m.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		L := &m.layers[li]
		// Attention.
		norm(h, x, L.norm1W, L.norm1B, 0)
		s.linear(m, qkv, qkvDim, h, T, D, D, L.qkv, qkvDim)
		blas.ParallelRows(th, T, 16, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				row := qkv[t*qkvDim : (t+1)*qkvDim]
				if L.qkvB != nil {
					for i, b := range L.qkvB {
						row[i] += b
					}
				}
				if cos != nil {
					cs, sn := cos[t*hd/2:(t+1)*hd/2], sin[t*hd/2:(t+1)*hd/2]
					for hh := 0; hh < H+KV; hh++ {
						applyRope(row[hh*hd:(hh+1)*hd], cs, sn)
					}
				}
			}
		})
		m.attention(qkv, att, T)
		s.linear(m, h, D, att, T, H*hd, H*hd, L.o, D)
		addRes(h, L.oB)
		// MLP.
		norm(h, x, L.norm2W, L.norm2B, 0)
		s.linear(m, mlp, upDim, h, T, D, D, L.up, upDim)
		I := c.IntermediateSize
		blas.ParallelRows(th, T, 8, func(lo, hi int) {
			for t := lo; t < hi; t++ {
				row := mlp[t*upDim : (t+1)*upDim]
				if L.upB != nil {
					for i, b := range L.upB {
						row[i] += b
					}
				}
				switch {
				case m.arch == archLlama:
					m.kern.vec.siluMul(row[:I], row[I:2*I])
				case m.act == nil:
					m.kern.vec.gelu(row)
				default:
					for i, v := range row {
						row[i] = m.act(v)
					}
				}
			}
		})
		s.linear(m, h, D, mlp, T, I, upDim, L.down, D)
		addRes(h, L.downB)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	norm(h, x, m.normW, m.normB, from)
	return h[from*D:], nil
}

// rope returns the rotary cos and sin tables for positions [0, T), each
// [T, headDim/2], from angles computed in float64.
func (m *Model) rope(T int) (cos, sin []float32) {
	half := len(m.invFreq)
	cos = make([]float32, T*half)
	sin = make([]float32, T*half)
	for t := 0; t < T; t++ {
		for i, f := range m.invFreq {
			s, c := math.Sincos(float64(t) * f)
			cos[t*half+i], sin[t*half+i] = float32(c), float32(s)
		}
	}
	return cos, sin
}

// applyRope rotates one head vector in place with Hugging Face's
// rotate-half convention: element i pairs with i+d/2, and the cos/sin of
// frequency i serve both halves.
func applyRope(v, cos, sin []float32) {
	half := len(cos)
	lo, hi := v[:half], v[half:2*half]
	sin = sin[:half]
	for i, c := range cos {
		a, b := lo[i], hi[i]
		lo[i] = a*c - b*sin[i]
		hi[i] = b*c + a*sin[i]
	}
}

// attention computes causal multi-head attention over the fused q|k|v rows
// of qkv ([T, (H+2·KV)·hd]) into out ([T, H·hd]). Query head h reads
// key/value head h/(H/KV).
//
// It works transposed, one block of nr queries (the kernel's panel width)
// at a time, so that no probability matrix is ever repacked: the scores
// Sᵀ = K·Q_blockᵀ come out of gemm as [keys, nr], which is exactly the
// layout of a packed B panel; the softmax runs down each column (one
// query) over the keys it may see; and Oᵀ = Vᵀ·P lands in a small
// [hd, nr] tile that is normalized by the column sums and transposed into
// out. Jobs are (head, query block) pairs, each computed by one goroutine.
func (m *Model) attention(qkv, out []float32, T int) {
	c := &m.cfg
	H, KV, hd := c.NumHeads, c.NumKVHeads, c.HeadDim
	ld := (H + 2*KV) * hd
	ldo := H * hd
	kOff, vOff := H*hd, (H+KV)*hd
	group := H / KV
	kr := m.kern
	nr := kr.NR()
	scale := float32(1 / math.Sqrt(float64(hd)))

	// Pack K (rows = keys, k = hd) and Vᵀ (rows = hd, k = keys) of every
	// key/value head as A operands.
	kp := make([]*blas.Packed, KV)
	vp := make([]*blas.Packed, KV)
	blas.ParallelFor(m.threads, 2*KV, func(_, j int) {
		g := j / 2
		if j%2 == 0 {
			kp[g] = kr.PackA(qkv[kOff+g*hd:], T, hd, ld, 1, 1)
		} else {
			vp[g] = kr.PackA(qkv[vOff+g*hd:], hd, T, 1, ld, 1)
		}
	})

	type work struct {
		q   *blas.Packed // one B panel: nr queries × hd
		s   []float32    // [T, nr] scores, then exp(score − column max)
		o   []float32    // [hd, nr] Oᵀ tile
		sum []float64    // [nr] column sums
	}
	nQB := (T + nr - 1) / nr
	ws := make([]*work, min(m.threads, H*nQB))
	negInf := float32(math.Inf(-1))
	// Later query blocks see more keys; hand them out first.
	blas.ParallelFor(m.threads, H*nQB, func(w, j int) {
		qb := nQB - 1 - j/H
		h := j % H
		g := h / group
		if ws[w] == nil {
			ws[w] = &work{
				q:   blas.NewPacked(nr, hd, nr),
				s:   make([]float32, T*nr),
				o:   make([]float32, hd*nr),
				sum: make([]float64, nr),
			}
		}
		wk := ws[w]
		q0 := qb * nr
		nq := min(nr, T-q0)
		keys := q0 + nq
		// Sᵀ[k][c] = K_k · Q_{q0+c} for keys k < keys; padding queries
		// (c ≥ nq) are zero rows of the panel and score 0.
		wk.q.Rows = nq
		kr.PackPanels(wk.q, qkv[q0*ld+h*hd:], ld, 1, 0, 1)
		s := wk.s[:keys*nr]
		kr.Gemm(s, nr, kp[g], wk.q, keys, nr, hd, 1)
		// Causal mask inside the diagonal block: query q0+c sees keys ≤ q0+c.
		for k := q0 + 1; k < keys; k++ {
			row := s[k*nr : k*nr+min(k-q0, nr)]
			for i := range row {
				row[i] = negInf
			}
		}
		kr.vec.softmaxCols(s, keys, nr, scale, wk.sum)
		for k := q0 + 1; k < keys; k++ {
			clear(s[k*nr : k*nr+min(k-q0, nr)])
		}
		// Oᵀ = Vᵀ·P: A = Vᵀ panels, B = the probabilities as one panel.
		p := &blas.Packed{Data: s, Rows: nr, K: keys, R: nr}
		kr.Gemm(wk.o, nr, vp[g], p, hd, nr, keys, 1)
		for c := 0; c < nq; c++ {
			inv := float32(1 / wk.sum[c])
			orow := out[(q0+c)*ldo+h*hd : (q0+c)*ldo+(h+1)*hd]
			for d := range orow {
				orow[d] = wk.o[d*nr+c] * inv
			}
		}
	})
}
