package model

import (
	"context"
	"math"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// SampleCacheMemory bounds the key/value cache of [Sample] on a *Model,
// which takes about layers × sequences × n × kvDim × 2 floats (n the
// target length, kvDim = num_key_value_heads·head_dim). When the
// sequences to extend would need more, they are sampled in groups of as
// many as fit (at least one), one group after the other; the results do
// not depend on it. At n = 512 a stories260k sequence takes 639 KiB, so
// 1,640 run together; a GPT-2-small one 36 MiB: 28.
const SampleCacheMemory = 1 << 30

// kvCache holds the keys (after the rotary embedding, for the llama
// family) and values of every layer for a group of sequences. Layer l
// keeps the values v[l] row by row, position t of sequence slot s at
// [(s·n+t)·kvDim, (s·n+t+1)·kvDim), and the keys k[l] in blocks of 8
// positions stored column by column, [blocks][kvDim][8] per slot (kStride
// floats), so that the attention kernels read 8 keys' element j as one
// vector: element j of position t of slot s is at
// s·kStride + ((t/8)·kvDim + j)·8 + t%8.
type kvCache struct {
	n, kvDim int
	kStride  int
	k, v     [][]float32
}

// decoder runs rows of tokens of a group of sequences through the model
// against their cached keys and values: a row is one token at position
// pos of sequence slot; its keys and values are stored in the cache, and
// its query heads attend over the cache's positions 0…pos. Each row's
// arithmetic is that of the last row of a forward pass over the
// sequence's tokens 0…pos given the same keys and values of the rows
// before: the projections sum in an order fixed by their K dimension, and
// attention sums as the forward pass's GEMMs do (see attendRow). The
// forward pass's keys and values are the same, bit for bit, while no row
// attends over more than one kernel block of keys (kernel.kBlock: 192
// with the AVX-512 kernel, 384 with the others); beyond, the forward pass
// blocks the sums of its earlier rows by the window's length, and the two
// agree to rounding.
type decoder struct {
	m    *Model
	c    kvCache
	p    pass
	slot []int32       // [rows] sequence slot of each row
	w    int           // columns of the score matrix: heads rounded up to 8
	ws   []*decodeWork // per worker of m.threads
}

// decodeWork is one worker's memory in cached attention.
type decodeWork struct {
	s      []float32 // [keys, w] scores, then exp(score − column max)
	qt     []float32 // [headDim][8] queries of eight heads (assembly kernels)
	tmp    []float32 // scores of a later block of the head dimension
	sum    []float64 // [w] column sums
	o, blk []float32 // [heads·headDim] P·V sums: all blocks so far, this block
	t64    [64]float32
}

// newDecoder returns a decoder caching n positions of seqs sequences.
func (m *Model) newDecoder(seqs, n int) *decoder {
	c := &m.cfg
	kvDim := c.NumKVHeads * c.HeadDim
	kStride := (n + 7) / 8 * 8 * kvDim
	d := &decoder{m: m, c: kvCache{n: n, kvDim: kvDim, kStride: kStride}, w: (c.NumHeads + 7) / 8 * 8}
	for range m.layers {
		d.c.k = append(d.c.k, make([]float32, seqs*kStride))
		d.c.v = append(d.c.v, make([]float32, seqs*n*kvDim))
	}
	qDim := c.NumHeads * c.HeadDim
	for range m.threads {
		d.ws = append(d.ws, &decodeWork{sum: make([]float64, d.w), o: make([]float32, qDim), blk: make([]float32, qDim)})
	}
	m.ropeFor(&d.p, n)
	return d
}

// cacheBytes returns the bytes a sequence of n positions takes in a
// kvCache.
func (m *Model) cacheBytes(n int) int64 {
	c := &m.cfg
	kvDim := int64(c.NumKVHeads * c.HeadDim)
	return int64(len(m.layers)) * kvDim * 4 * int64((n+7)/8*8+n)
}

// reset empties the rows of the next run.
func (d *decoder) reset() {
	d.p.tok, d.p.pos, d.slot = d.p.tok[:0], d.p.pos[:0], d.slot[:0]
}

// add appends a row: token id at position pos of sequence slot.
func (d *decoder) add(slot, id, pos int) {
	d.p.tok = append(d.p.tok, id)
	d.p.pos = append(d.p.pos, int32(pos))
	d.slot = append(d.slot, int32(slot))
}

// run runs the rows added since reset through every layer, storing their
// keys and values in the cache (rows of one sequence may follow each other
// at consecutive positions: each sees the ones before it), and leaves the
// residual stream after the last block in d.p.x, [rows, dim].
func (d *decoder) run(ctx context.Context) error {
	m, p := d.m, &d.p
	rows := len(p.tok)
	p.off = append(p.off[:0], 0, rows)
	m.size(p, rows)
	f := m.startFeed()
	defer f.close()
	if err := m.embedRows(p); err != nil {
		return err
	}
	for li := range m.layers {
		if err := ctx.Err(); err != nil {
			return err
		}
		w, err := f.layer()
		if err != nil {
			return err
		}
		L := &m.layers[li]
		m.blockQKV(p, L, w, rows, nil)
		d.store(li, rows)
		blas.ParallelFor(m.threads, rows, func(wk, r int) { d.attendRow(wk, li, r) })
		m.blockOut(p, L, w, rows, nil)
	}
	return ctx.Err()
}

// store copies the keys and values of the rows from p.qkv into layer li's
// cache.
func (d *decoder) store(li, rows int) {
	c := &d.m.cfg
	qOff := c.NumHeads * c.HeadDim
	kvDim := d.c.kvDim
	qkvDim, _ := d.m.widths()
	blas.ParallelRows(d.m.threads, rows, 16, func(lo, hi int) {
		for r := lo; r < hi; r++ {
			s, t := int(d.slot[r]), int(d.p.pos[r])
			row := d.p.qkv[r*qkvDim : (r+1)*qkvDim]
			kt := d.c.k[li][s*d.c.kStride+(t/8)*kvDim*8+t%8:]
			for j, v := range row[qOff : qOff+kvDim] {
				kt[j*8] = v
			}
			at := (s*d.c.n + t) * kvDim
			copy(d.c.v[li][at:at+kvDim], row[qOff+kvDim:qOff+2*kvDim])
		}
	})
}

// attendRow computes the attention of row r's query heads over the keys
// and values of positions 0…pos of its sequence in layer li's cache into
// p.att, with the arithmetic of the forward pass's attention for the last
// row of a window of pos+1 tokens (Model.attention): each score is one
// multiply-add chain over the head dimension (in Gemm's blocks of it,
// kernel.kBlock), scaled in the column softmax (the same vecOps kernel,
// over columns that are the row's heads); each output element sums
// probability × value over the keys in the blocks Gemm would use, one
// chain per block added to the sum of the blocks before, and is then
// multiplied by float32(1/sum). The chains fuse the multiply-add, as the
// assembly GEMM kernels do — in AVX2 assembly of their own, for the
// probability × value sums when the head dimension is a multiple of 8 —
// or round twice, as the pure-Go kernel does.
func (d *decoder) attendRow(wk, li, r int) {
	m := d.m
	c := &m.cfg
	H, KV, hd := c.NumHeads, c.NumKVHeads, c.HeadDim
	group, kvDim := H/KV, d.c.kvDim
	qkvDim, _ := m.widths()
	w := d.w
	keys := int(d.p.pos[r]) + 1
	nblk := (keys + 7) / 8
	slot := int(d.slot[r])
	Kt := d.c.k[li][slot*d.c.kStride : slot*d.c.kStride+nblk*kvDim*8]
	V := d.c.v[li][slot*d.c.n*kvDim : (slot*d.c.n+keys)*kvDim]
	q := d.p.qkv[r*qkvDim : r*qkvDim+H*hd]
	out := d.p.att[r*H*hd : (r+1)*H*hd]
	wb := d.ws[wk]
	wb.s = growF32(wb.s, nblk*8*w)
	s := wb.s
	// The assembly GEMM kernels, which fuse, exist only beside these
	// (haveAttnAsm).
	fused := m.kern.Assembly() && haveAttnAsm
	pvAsmOK := fused && hd%8 == 0

	// Scores: s[k][h] = K_k · q_h, in Gemm's blocks of the head dimension.
	kb := m.kern.kBlock(hd)
	if fused {
		// Eight heads at a time: their queries as the columns of qt,
		// their scores written as 8-wide rows of s (the rows of the last
		// block's keys past pos are not read).
		wb.qt = growF32(wb.qt, hd*8)
		for h0 := 0; h0 < H; h0 += 8 {
			var koff [8]int
			for j := range 8 {
				h := h0 + j
				if h >= H {
					for d := range hd {
						wb.qt[d*8+j] = 0
					}
					continue
				}
				koff[j] = (h / group) * hd * 8
				for d, v := range q[h*hd : (h+1)*hd] {
					wb.qt[d*8+j] = v
				}
			}
			for d0 := 0; d0 < hd; d0 += kb {
				d1 := min(d0+kb, hd)
				ko := koff
				if d0 == 0 {
					scoresAsm(s[h0:], w, Kt[d0*8:], kvDim*8, wb.qt[d0*8:], d1-d0, nblk, &ko)
					continue
				}
				wb.tmp = growF32(wb.tmp, nblk*8*8)
				scoresAsm(wb.tmp, 8, Kt[d0*8:], kvDim*8, wb.qt[d0*8:], d1-d0, nblk, &ko)
				for k := range keys {
					srow := s[k*w+h0 : k*w+h0+8]
					for j, v := range wb.tmp[k*8 : k*8+8] {
						srow[j] = v + srow[j]
					}
				}
			}
		}
	} else {
		for k := range keys {
			kt := Kt[(k/8)*kvDim*8+k%8:]
			srow := s[k*w : (k+1)*w]
			for h := range H {
				kh := kt[(h/group)*hd*8:]
				qh := q[h*hd : (h+1)*hd]
				var sum float32
				for d0 := 0; d0 < hd; d0 += kb {
					d1 := min(d0+kb, hd)
					acc := dotMulAdd(kh[d0*8:], qh[d0:d1])
					if d0 == 0 {
						sum = acc
					} else {
						sum = acc + sum
					}
				}
				srow[h] = sum
			}
			clear(srow[H:])
		}
	}
	scale := float32(1 / math.Sqrt(float64(hd)))
	m.kern.vec.softmaxCols(s, keys, w, scale, wb.sum)

	// o_h = Σ_k p_k,h · V_k, in Gemm's blocks of keys.
	o, blk := wb.o, wb.blk
	kb = m.kern.kBlock(keys)
	for k0 := 0; k0 < keys; k0 += kb {
		k1 := min(k0+kb, keys)
		acc := o
		if k0 > 0 {
			acc = blk
		}
		switch {
		case pvAsmOK && hd == 8:
			// Eight heads at a time, one accumulator each.
			for h0 := 0; h0 < H; h0 += 8 {
				var voff [8]int
				for j := range voff {
					if h := h0 + j; h < H {
						voff[j] = (h / group) * hd
					}
				}
				pvAsm(wb.t64[:], V[k0*kvDim:], kvDim, s[k0*w+h0:], w, k1-k0, &voff, 1)
				copy(acc[h0*hd:min(H, h0+8)*hd], wb.t64[:])
			}
		case pvAsmOK:
			// Eight chunks of 8 of one head at a time.
			nc := hd / 8
			for h := range H {
				g := h / group
				for c0 := 0; c0 < nc; c0 += 8 {
					var voff [8]int
					for j := range voff {
						ch := c0 + j
						if ch >= nc {
							ch = c0
						}
						voff[j] = g*hd + ch*8
					}
					pvAsm(wb.t64[:], V[k0*kvDim:], kvDim, s[k0*w+h:], w, k1-k0, &voff, 0)
					copy(acc[h*hd+c0*8:h*hd+min(nc, c0+8)*8], wb.t64[:])
				}
			}
		default:
			clear(acc)
			for g := range KV {
				a := acc[g*group*hd : (g+1)*group*hd]
				vg := V[g*hd:]
				sg := s[g*group:]
				if fused {
					pvFMA(a, vg, sg, k0, k1, kvDim, w, group, hd)
				} else {
					pvMulAdd(a, vg, sg, k0, k1, kvDim, w, group, hd)
				}
			}
		}
		if k0 > 0 {
			for i, v := range blk {
				o[i] = v + o[i]
			}
		}
	}
	for h := range H {
		inv := float32(1 / wb.sum[h])
		for i, v := range o[h*hd : (h+1)*hd] {
			out[h*hd+i] = v * inv
		}
	}
}

// fma32 is the float32 fused multiply-add a·b+c, rounded once (through
// float64, whose exact product of two float32 values and single rounding
// of the sum make the result that of a float32 FMA but in contrived cases
// of double rounding).
func fma32(a, b, c float32) float32 {
	return float32(math.FMA(float64(a), float64(b), float64(c)))
}

// dotMulAdd is Σ_i kt[8i]·q_i as one chain of multiplies and adds from
// 0, as the pure-Go GEMM kernel sums one block (kt is a key's column in
// the cache's blocks of 8).
func dotMulAdd(kt, q []float32) float32 {
	var acc float32
	for i, v := range q {
		acc += kt[8*i] * v
	}
	return acc
}

// pvFMA adds, for keys k in [k0, k1), the probabilities p[k·ldp+j] times
// the value rows v[k·ldv : k·ldv+hd] into acc[j·hd : (j+1)·hd] for the
// group's heads j, one fused multiply-add chain per element.
func pvFMA(acc, v, p []float32, k0, k1, ldv, ldp, group, hd int) {
	for k := k0; k < k1; k++ {
		vr := v[k*ldv : k*ldv+hd]
		for j := range group {
			pk := p[k*ldp+j]
			a := acc[j*hd : (j+1)*hd]
			for i, x := range vr {
				a[i] = fma32(x, pk, a[i])
			}
		}
	}
}

// pvMulAdd is pvFMA with a multiply and an add per term, as the pure-Go
// GEMM kernel sums.
func pvMulAdd(acc, v, p []float32, k0, k1, ldv, ldp, group, hd int) {
	for k := k0; k < k1; k++ {
		vr := v[k*ldv : k*ldv+hd]
		for j := range group {
			pk := p[k*ldp+j]
			a := acc[j*hd : (j+1)*hd]
			for i, x := range vr {
				a[i] += x * pk
			}
		}
	}
}
