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
		m.gemmRows(out, ldc, s.packA(m, src, rows, k, ld), w.dense, rows, n, k)
		return
	}
	R := blas.SpanelRows
	s.sp = growF32(s.sp, (rows+R-1)/R*R*k)
	a := &blas.Packed{Data: s.sp, Rows: rows, K: k, R: R}
	m.kern.Pack(a, src, ld, 1, m.threads)
	m.spmm(out, ldc, a, w.sparse, rows)
}

// smallB is the largest B operand (bytes) of a product that gemmRows
// splits by rows: one that stays in L2 for every thread.
const smallB = 512 << 10

// gemmRows computes out = A·Bᵀ for rows rows of packed a on m.threads
// threads. A product with a small B (at most smallB: every weight of
// stories260k, where Gemm makes three jobs of 192, 192 and 128 rows for
// two threads) is split by rows into one part of whole A panels per
// thread, each a one-thread Gemm; any other is Gemm's own jobs. Each row's
// result is the same either way, bit for bit.
func (m *Model) gemmRows(out []float32, ldc int, a, b *blas.Packed, rows, n, k int) {
	th, mr := m.threads, a.R
	panels := (rows + mr - 1) / mr
	if th <= 1 || panels < 2 || int64(b.Panels())*int64(b.R)*int64(k)*4 > smallB {
		m.kern.Gemm(out, ldc, a, b, rows, n, k, th)
		return
	}
	parts := min(th, panels)
	per := (panels + parts - 1) / parts
	blas.ParallelFor(parts, parts, func(_, i int) {
		p0, p1 := i*per, min(panels, (i+1)*per)
		if p0 >= p1 {
			return
		}
		r0, r1 := p0*mr, min(rows, p1*mr)
		ap := &blas.Packed{Data: a.Data[p0*a.K*mr:], Rows: r1 - r0, K: a.K, R: mr}
		m.kern.Gemm(out[r0*ldc:], ldc, ap, b, r1-r0, n, k, 1)
	})
}

// packA packs rows×k of src (row stride ld) as a gemm A operand into the
// reused buffer.
func (s *scratch) packA(m *Model, src []float32, rows, k, ld int) *blas.Packed {
	mr := m.kern.MR()
	s.buf = growF32(s.buf, (rows+mr-1)/mr*mr*k)
	a := &blas.Packed{Data: s.buf, Rows: rows, K: k, R: mr}
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
	var p pass
	h, err := m.hidden(ctx, &p, [][]int{ids}, []int{from})
	if err != nil {
		return err
	}
	m.logits(&p.s, h[0], T-from, logits)
	return nil
}

// logits computes the LM head for rows final hidden states h ([rows, dim])
// into out ([rows, vocab]), packing through s.
func (m *Model) logits(s *scratch, h []float32, rows int, out []float32) {
	D, V := m.cfg.HiddenSize, m.cfg.VocabSize
	s.linear(m, out, V, h, rows, D, D, m.head, V)
}

// pass holds the activations and scratch memory of forward passes over a
// batch of windows, reused from layer to layer and, by [Score], from batch
// to batch. The windows' rows are stacked: window w holds rows
// [off[w], off[w+1]) of every activation.
type pass struct {
	off            []int
	tok            []int   // [rows] token id
	pos            []int32 // [rows] position within its window
	x, h, qkv, att []float32
	mlp            []float32
	cos, sin       []float32 // [ropeT, headDim/2]
	ropeT          int
	s              scratch
	at             attScratch
	raw            []byte // undecoded embedding rows
}

// mlpChunk is the most rows the MLP of a pass works on at a time: a
// multiple of every kernel's A block (192, 96 and 64 rows).
const mlpChunk = 384

// mlpOne is the most rows the MLP takes as one chunk: one window of 512
// tokens, whose products then split into jobs that keep two threads
// equally busy (as 384 + 128 rows, the down projection of the 128 would
// be two jobs, of 512 and 256 columns).
const mlpOne = 512

// mlpRows returns the rows the MLP works on at a time over rows rows:
// all of them up to mlpOne, else as few chunks of at most mlpChunk as it
// takes, of equal length rounded up to a multiple of 16 (the last one
// shorter).
func mlpRows(rows int) int {
	if rows <= mlpOne {
		return max(rows, 1)
	}
	n := (rows + mlpChunk - 1) / mlpChunk
	return min(mlpChunk, ((rows+n-1)/n+15)/16*16)
}

// passBytes estimates the memory of a pass over rows stacked rows:
// activations and the packed A operand of the projections (the MLP's
// part for mlpRows rows).
func (m *Model) passBytes(rows int) int64 {
	c := &m.cfg
	D, H, KV, hd := c.HiddenSize, c.NumHeads, c.NumKVHeads, c.HeadDim
	up := c.IntermediateSize
	if m.arch == archLlama {
		up *= 2
	}
	perRow := 2*D + (H+2*KV)*hd + H*hd + max(D, H*hd) + 4
	chunk := mlpRows(rows) * (up + c.IntermediateSize)
	return 4 * (int64(rows)*int64(perRow) + int64(chunk))
}

// hidden runs windows of token ids (already validated) through the
// embeddings, every layer and the final norm, stacked as one batch: each
// projection is one matrix product over the rows of every window,
// attention runs per window. It returns, per window w, the normed hidden
// states of its positions [froms[w], T): [(T-froms[w]), dim], which stay
// valid until p is used again. The results are those of running each
// window alone, bit for bit: every row's arithmetic does not depend on the
// others.
func (m *Model) hidden(ctx context.Context, p *pass, wins [][]int, froms []int) ([][]float32, error) {
	D := m.cfg.HiddenSize
	maxT := m.setup(p, wins)
	x, h := p.x, p.h

	// The reader of a streaming model starts on layer 0 now.
	f := m.startFeed()
	defer f.close()

	if err := m.embedRows(p); err != nil {
		return nil, err
	}
	m.ropeFor(p, maxT)
	for li := range m.layers {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w, err := f.layer()
		if err != nil {
			return nil, err
		}
		m.block(p, &m.layers[li], w, nil)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([][]float32, len(wins))
	for wi := range wins {
		lo, hi := p.off[wi]+froms[wi], p.off[wi+1]
		m.norm(h, x, m.normW, m.normB, lo, hi)
		out[wi] = h[lo*D : hi*D]
	}
	return out, nil
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
// Its memory is kept in a for the next call.
func (m *Model) attention(a *attScratch, qkv, out []float32, T int) {
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
	mr := kr.MR()
	kSize, vSize := (T+mr-1)/mr*mr*hd, (hd+mr-1)/mr*mr*T
	a.kv = growF32(a.kv, KV*(kSize+vSize))
	if len(a.kp) < KV {
		a.kp, a.vp = make([]blas.Packed, KV), make([]blas.Packed, KV)
	}
	kp, vp := a.kp, a.vp
	for g := range KV {
		kp[g] = blas.Packed{Data: a.kv[g*kSize : (g+1)*kSize], Rows: T, K: hd, R: mr}
		vp[g] = blas.Packed{Data: a.kv[KV*kSize+g*vSize : KV*kSize+(g+1)*vSize], Rows: hd, K: T, R: mr}
	}
	blas.ParallelFor(m.threads, 2*KV, func(_, j int) {
		g := j / 2
		if j%2 == 0 {
			kr.Pack(&kp[g], qkv[kOff+g*hd:], ld, 1, 1)
		} else {
			kr.Pack(&vp[g], qkv[vOff+g*hd:], 1, ld, 1)
		}
	})

	nQB := (T + nr - 1) / nr
	if n := min(m.threads, H*nQB); len(a.ws) < n {
		a.ws = append(a.ws, make([]*attWork, n-len(a.ws))...)
	}
	ws := a.ws
	negInf := float32(math.Inf(-1))
	// Later query blocks see more keys; hand them out first.
	blas.ParallelFor(m.threads, H*nQB, func(w, j int) {
		qb := nQB - 1 - j/H
		h := j % H
		g := h / group
		if ws[w] == nil || ws[w].q.K != hd || ws[w].q.R != nr {
			ws[w] = &attWork{
				q:   blas.NewPacked(nr, hd, nr),
				o:   make([]float32, (hd+mr-1)/mr*mr*nr),
				sum: make([]float64, nr),
			}
		}
		wk := ws[w]
		wk.s = growF32(wk.s, (T+mr-1)/mr*mr*nr)
		q0 := qb * nr
		nq := min(nr, T-q0)
		keys := q0 + nq
		// Sᵀ[k][c] = K_k · Q_{q0+c} for keys k < keys; padding queries
		// (c ≥ nq) are zero rows of the panel and score 0.
		wk.q.Rows = nq
		if hd < 16 {
			// Small heads (stories260k's 8): a plain transpose, which
			// costs less than PackPanels' general paths at this size.
			packQ(wk.q.Data[:hd*nr], qkv[q0*ld+h*hd:], ld, hd, nq, nr)
		} else {
			kr.PackPanels(wk.q, qkv[q0*ld+h*hd:], ld, 1, 0, 1)
		}
		s := wk.s[:keys*nr]
		// Both products run over whole tiles of mr rows (the packed
		// operands are zero-padded, or hold keys the block may not see,
		// whose rows past keys nothing reads): the edge tiles Gemm would
		// otherwise compute through a temporary come out the same.
		kr.Gemm(wk.s, nr, &kp[g], wk.q, (keys+mr-1)/mr*mr, nr, hd, 1)
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
		wk.p = blas.Packed{Data: s, Rows: nr, K: keys, R: nr}
		m.pv(wk.o, &vp[g], &wk.p, hd, keys)
		for c := 0; c < nq; c++ {
			inv := float32(1 / wk.sum[c])
			orow := out[(q0+c)*ldo+h*hd : (q0+c)*ldo+(h+1)*hd]
			for d := range orow {
				orow[d] = wk.o[d*nr+c] * inv
			}
		}
	})
}

// packQ packs nq query rows of hd values (row stride ld in src) as one B
// panel of nr rows, dst[d·nr+c] = src[c·ld+d], zeroing rows nq … nr−1: what
// PackPanels writes for that panel.
func packQ(dst, src []float32, ld, hd, nq, nr int) {
	for c := range nq {
		for d, v := range src[c*ld : c*ld+hd] {
			dst[d*nr+c] = v
		}
	}
	if nq < nr {
		for d := range hd {
			clear(dst[d*nr+nq : (d+1)*nr])
		}
	}
}

// pv computes attention's Oᵀ tile o = Vᵀ·P ([hd rounded up to whole
// panels, nr]) over keys keys, as Gemm does on one thread. When the last
// panel of Vᵀ holds at most 8 of its rows and the kernel has an 8-row form
// (kernel.tail8), that panel goes through it, with Gemm's blocks of the
// sum (kernel.kBlock), so the result is the same bit for bit with a third
// fewer multiply-adds on padding (stories260k's heads have 8 rows: two
// thirds of the panel).
func (m *Model) pv(o []float32, v, p *blas.Packed, hd, keys int) {
	kr := m.kern
	mr, nr := kr.MR(), kr.NR()
	full := hd / mr * mr
	if kr.tail8 == nil || hd == full || hd-full > 8 {
		kr.Gemm(o, nr, v, p, (hd+mr-1)/mr*mr, nr, keys, 1)
		return
	}
	if full > 0 {
		kr.Gemm(o, nr, v, p, full, nr, keys, 1)
	}
	a := v.Data[full*v.K:] // panel full/mr
	kb := kr.kBlock(keys)
	for pc := 0; pc < keys; pc += kb {
		kr.tail8(min(kb, keys-pc), a[pc*mr:], mr, p.Data[pc*nr:], o[full*nr:], nr, pc > 0)
	}
}

// attScratch is the memory of attention, kept from call to call.
type attScratch struct {
	kv     []float32     // packed K, then packed Vᵀ, of every key/value head
	kp, vp []blas.Packed // views of kv
	ws     []*attWork    // per worker
}

// attWork is one worker's memory in attention.
type attWork struct {
	q   *blas.Packed // one B panel: nr queries × hd
	p   blas.Packed  // the probabilities as one B panel (a view of s)
	s   []float32    // [T, nr] scores, then exp(score − column max)
	o   []float32    // [hd, nr] Oᵀ tile
	sum []float64    // [nr] column sums
}

// ropeFor makes sure p holds the rotary tables for windows of up to maxT
// tokens (llama family).
func (m *Model) ropeFor(p *pass, maxT int) {
	if m.arch == archLlama && p.ropeT < maxT {
		p.cos, p.sin = m.rope(maxT)
		p.ropeT = maxT
	}
}

// norm normalizes rows [lo, hi) of in into out (RMSNorm, or LayerNorm
// with bias b for gpt2).
func (m *Model) norm(out, in, w, b []float32, lo, hi int) {
	c, D := &m.cfg, m.cfg.HiddenSize
	blas.ParallelRows(m.threads, hi-lo, 16, func(r0, r1 int) {
		for t := lo + r0; t < lo+r1; t++ {
			if m.arch == archGPT2 {
				layerNorm(out[t*D:(t+1)*D], in[t*D:(t+1)*D], w, b, c.NormEps)
			} else {
				rmsNorm(out[t*D:(t+1)*D], in[t*D:(t+1)*D], w, c.NormEps)
			}
		}
	})
}

// addRes adds proj (+ bias b) into the residual stream x, both [rows, dim].
func (m *Model) addRes(x, proj, b []float32, rows int) {
	D := m.cfg.HiddenSize
	blas.ParallelRows(m.threads, rows, 16, func(lo, hi int) {
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

// Probe receives the input of each projection group of a block as the
// block runs: group 0 is the q|k|v (c_attn) input [rows, dim], 1 the
// o_proj (attn.c_proj) input [rows, heads·headDim], 2 the gate|up (c_fc)
// input and 3 the down_proj (mlp.c_proj) input [rows, inter]. Groups 2
// and 3 arrive in chunks of rows. Row r of in starts at in[r*ld] and
// holds k values. A probe must not keep or change in.
type Probe func(group int, in []float32, rows, k, ld int)

// block runs one transformer block L with projections w over the rows
// stacked in p (residual stream p.x, updated in place); probe, when not
// nil, sees each projection's input.
func (m *Model) block(p *pass, L *layer, w projs, probe Probe) {
	c := &m.cfg
	H, hd := c.NumHeads, c.HeadDim
	qkvDim, _ := m.widths()
	rows := p.off[len(p.off)-1]
	m.blockQKV(p, L, w, rows, probe)
	for wi := range p.off[:len(p.off)-1] {
		o := p.off[wi]
		m.attention(&p.at, p.qkv[o*qkvDim:], p.att[o*H*hd:], p.off[wi+1]-o)
	}
	m.blockOut(p, L, w, rows, probe)
}

// blockQKV runs the first part of block L over rows rows of p: the input
// norm and the q|k|v projection of the residual stream p.x into p.qkv,
// with its biases and, for the llama family, the rotary embedding of
// queries and keys at positions p.pos.
func (m *Model) blockQKV(p *pass, L *layer, w projs, rows int, probe Probe) {
	c := &m.cfg
	D := c.HiddenSize
	H, KV, hd := c.NumHeads, c.NumKVHeads, c.HeadDim
	qkvDim, _ := m.widths()
	h, qkv := p.h, p.qkv
	cos, sin := p.cos, p.sin
	if m.arch != archLlama {
		cos, sin = nil, nil
	}
	m.norm(h, p.x, L.norm1W, L.norm1B, 0, rows)
	if probe != nil {
		probe(0, h, rows, D, D)
	}
	p.s.linear(m, qkv, qkvDim, h, rows, D, D, w[pQKV], qkvDim)
	blas.ParallelRows(m.threads, rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := qkv[r*qkvDim : (r+1)*qkvDim]
			if L.qkvB != nil {
				for i, b := range L.qkvB {
					row[i] += b
				}
			}
			if cos != nil {
				t := int(p.pos[r])
				cs, sn := cos[t*hd/2:(t+1)*hd/2], sin[t*hd/2:(t+1)*hd/2]
				for hh := 0; hh < H+KV; hh++ {
					applyRope(row[hh*hd:(hh+1)*hd], cs, sn)
				}
			}
		}
	})
}

// blockOut runs the rest of block L over rows rows of p, from the
// attention output p.att: the o projection and its residual add, then the
// MLP and its residual add.
func (m *Model) blockOut(p *pass, L *layer, w projs, rows int, probe Probe) {
	c := &m.cfg
	D := c.HiddenSize
	H, hd := c.NumHeads, c.HeadDim
	_, upDim := m.widths()
	th := m.threads
	x, h, att, mlp := p.x, p.h, p.att, p.mlp
	addRes := func(proj, b []float32) { m.addRes(x, proj, b, rows) }
	if probe != nil {
		probe(1, att, rows, H*hd, H*hd)
	}
	p.s.linear(m, h, D, att, rows, H*hd, H*hd, w[pO], D)
	addRes(h, L.oB)
	// MLP, mlpRows rows at a time, so that the hidden activations take at
	// most max(mlpOne, mlpChunk)·upDim floats whatever the batch (each
	// row's result does not depend on the chunking).
	m.norm(h, x, L.norm2W, L.norm2B, 0, rows)
	I := c.IntermediateSize
	chunk := mlpRows(rows)
	for r0 := 0; r0 < rows; r0 += chunk {
		n := min(chunk, rows-r0)
		if probe != nil {
			probe(2, h[r0*D:], n, D, D)
		}
		p.s.linear(m, mlp, upDim, h[r0*D:], n, D, D, w[pUp], upDim)
		blas.ParallelRows(th, n, 8, func(lo, hi int) {
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
		if probe != nil {
			probe(3, mlp, n, I, upDim)
		}
		// The chunk's normed rows of h have been read: the output
		// replaces them.
		p.s.linear(m, h[r0*D:], D, mlp, n, I, upDim, w[pDown], D)
	}
	addRes(h, L.downB)
}

// setup stacks the windows' rows in p and sizes its activations; it
// returns the longest window's length.
func (m *Model) setup(p *pass, wins [][]int) (maxT int) {
	p.off = p.off[:0]
	rows := 0
	for _, w := range wins {
		p.off = append(p.off, rows)
		rows += len(w)
		maxT = max(maxT, len(w))
	}
	p.off = append(p.off, rows)
	if cap(p.tok) < rows {
		p.tok, p.pos = make([]int, rows), make([]int32, rows)
	}
	p.tok, p.pos = p.tok[:rows], p.pos[:rows]
	for w, ids := range wins {
		for t, id := range ids {
			p.tok[p.off[w]+t] = id
			p.pos[p.off[w]+t] = int32(t)
		}
	}
	m.size(p, rows)
	return maxT
}

// size sizes the activations of p for rows stacked rows.
func (m *Model) size(p *pass, rows int) {
	c := &m.cfg
	D := c.HiddenSize
	H, hd := c.NumHeads, c.HeadDim
	qkvDim, upDim := m.widths()
	p.x = growF32(p.x, rows*D) // residual stream [rows, dim]
	p.h = growF32(p.h, rows*D) // normed input / projection output [rows, dim]
	p.qkv = growF32(p.qkv, rows*qkvDim)
	p.att = growF32(p.att, rows*H*hd)
	p.mlp = growF32(p.mlp, mlpRows(rows)*upDim)
}

// embedRows writes the token (and gpt2 position) embeddings of p's rows
// into the residual stream p.x.
func (m *Model) embedRows(p *pass) error {
	D := m.cfg.HiddenSize
	th, x := m.threads, p.x
	rows := len(p.tok)
	onDemand := m.stream != nil && m.stream.embed != ""
	if onDemand {
		for r, id := range p.tok {
			if err := m.stream.src.read(m.stream.embed, id*D, x[r*D:(r+1)*D], &p.raw); err != nil {
				return err
			}
		}
	}
	blas.ParallelRows(th, rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			row := x[r*D : (r+1)*D]
			switch {
			case onDemand:
			case m.embed != nil:
				copy(row, m.embed[p.tok[r]*D:])
			default:
				m.head.dense.Row(row, p.tok[r])
			}
			if m.wpe != nil {
				t := int(p.pos[r])
				pos := m.wpe[t*D : (t+1)*D]
				for i := range row {
					row[i] += pos[i]
				}
			}
		}
	})
	return nil
}

// CheckIDs verifies that ids can be one window of the model: at least one
// token, at most its positions, every id in its vocabulary.
func (m *Model) CheckIDs(ids []int) error { return m.checkIDs(ids) }

// widths returns the width of the fused q|k|v projection's output and of
// the MLP's first projection (gate|up for the llama family).
func (m *Model) widths() (qkvDim, upDim int) {
	c := &m.cfg
	qkvDim = (c.NumHeads + 2*c.NumKVHeads) * c.HeadDim
	upDim = c.IntermediateSize
	if m.arch == archLlama {
		upDim *= 2
	}
	return qkvDim, upDim
}
