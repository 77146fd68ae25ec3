package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// Sample extends each prompt with tokens drawn from lm's next-token
// distribution at temperature 1 until it holds n tokens, and returns the
// sequences (a prompt of n tokens or more comes back as it is). Sequence
// i draws from rngs[i]: each draw takes one rngs[i].Float64() u and picks
// the first token whose cumulative probability (softmax of the float32
// logits, computed in float64 in id order) exceeds u; so given rngs and
// the model, the tokens are fixed.
//
// A *Model decodes incrementally with a key/value cache (keys after the
// rotary embedding): the prompts run first, all together whatever their
// lengths (in passes of at most as many rows as keep the activations
// within [BatchMemory]); then each step runs one row per unfinished
// sequence, all sequences as one batch, through the layers — every
// projection one matrix product over the batch, each row's query heads
// attending over its own sequence's cached keys and values — and draws
// their next tokens. Sampling n tokens thus costs n rows per sequence,
// where a forward pass over the whole sequence at every step (as Sample
// ran before the cache) costs about n²/2: see the package documentation,
// "Sampling", for the speed-up. The cache takes about layers × sequences
// × n × kvDim × 2 floats; beyond [SampleCacheMemory] the sequences are
// sampled in groups. A streaming model reads its block projections once
// per step.
//
// The cached attention sums in the order of the forward pass's kernels, so
// each step's logits are those of a forward pass over the sequence so
// far, bit for bit while it holds at most 193 tokens with the AVX-512
// kernel (385 with the others), and to rounding beyond, where the forward
// pass itself sums earlier rows' attention in blocks that depend on the
// window's length (about 1e-6 of the largest logit on stories260k at 200
// tokens): the tokens are those the forward passes would draw unless a
// draw falls within rounding of a boundary between two tokens. They do
// not depend on the thread count, the grouping of sequences or the
// splitting of prompts into passes.
//
// Any other LM runs through LM.Window over each whole sequence so far,
// once per token. Each sequence should have a random source of its own:
// a *Model draws for different sequences concurrently (serially, in
// sequence order, when a source is shared).
func Sample(ctx context.Context, lm LM, prompts [][]int, n int, rngs []*rand.Rand) ([][]int, error) {
	seqs, err := samplePrompts(lm, prompts, n, rngs)
	if err != nil {
		return nil, err
	}
	m, ok := lm.(*Model)
	if !ok || m == nil {
		return sampleWindows(ctx, lm, seqs, n, rngs)
	}
	lim := sampleLimits{cacheBytes: SampleCacheMemory}
	seen := make(map[*rand.Rand]bool, len(rngs))
	for _, r := range rngs {
		lim.serial = lim.serial || seen[r]
		seen[r] = true
	}
	bufs := make([][]float64, m.threads)
	err = m.generate(ctx, seqs, n, lim, func(wk, i int, logits []float32) int {
		bufs[wk] = growF64(bufs[wk], len(logits))
		return draw(logits, rngs[i], bufs[wk])
	})
	if err != nil {
		return nil, err
	}
	return seqs, nil
}

// samplePrompts checks Sample's arguments and returns the prompts copied
// into sequences of capacity n.
func samplePrompts(lm LM, prompts [][]int, n int, rngs []*rand.Rand) ([][]int, error) {
	if len(rngs) != len(prompts) {
		return nil, fmt.Errorf("%w: %d random sources for %d prompts", ErrInput, len(rngs), len(prompts))
	}
	if n > lm.MaxPositions() {
		return nil, fmt.Errorf("%w: %d tokens do not fit in the model's %d positions", ErrInput, n, lm.MaxPositions())
	}
	V := lm.VocabSize()
	seqs := make([][]int, len(prompts))
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("%w: sampling needs at least one prompt token", ErrInput)
		}
		for t, id := range p {
			if id < 0 || id >= V {
				return nil, fmt.Errorf("%w: prompt %d: token id %d at position %d is outside the vocabulary [0, %d)", ErrInput, i, id, t, V)
			}
		}
		if rngs[i] == nil {
			return nil, fmt.Errorf("%w: no random source for prompt %d", ErrInput, i)
		}
		seqs[i] = append(make([]int, 0, max(n, len(p))), p...)
	}
	return seqs, nil
}

// sampleWindows is Sample without a cache: every step runs each
// unfinished sequence as a whole window (a *Model runs them all as one
// batch) and draws from the logits of its last position.
func sampleWindows(ctx context.Context, lm LM, seqs [][]int, n int, rngs []*rand.Rand) ([][]int, error) {
	V := lm.VocabSize()
	logits := make([]float32, V)
	buf := make([]float64, V)
	m, batched := lm.(*Model)
	var p pass
	for {
		var live []int // sequences still short of n
		for i, s := range seqs {
			if len(s) < n {
				live = append(live, i)
			}
		}
		if len(live) == 0 {
			return seqs, nil
		}
		rows := make([]func(r0, rows int, out []float32), len(live))
		if batched {
			wins, froms := make([][]int, len(live)), make([]int, len(live))
			for k, i := range live {
				wins[k], froms[k] = seqs[i], len(seqs[i])-1
			}
			fns, err := m.windows(ctx, &p, wins, froms)
			if err != nil {
				return nil, err
			}
			copy(rows, fns)
		}
		for k, i := range live {
			row := rows[k]
			if !batched {
				var err error
				if row, err = lm.Window(ctx, seqs[i], len(seqs[i])-1); err != nil {
					return nil, err
				}
			}
			row(0, 1, logits)
			seqs[i] = append(seqs[i], draw(logits, rngs[i], buf))
		}
	}
}

// sampleLimits sets how [Model.generate] splits its work; the results do
// not depend on it.
type sampleLimits struct {
	cacheBytes int64 // bound of a group's key/value cache
	passRows   int   // most rows in one pass; 0: as BatchMemory allows
	serial     bool  // call pick from one goroutine, in sequence order
}

// logitBytes bounds the logits generate computes at a time.
const logitBytes = 16 << 20

// generate extends each sequence of seqs (holding its prompt, with room
// for n tokens) to n tokens with the key/value cache: when the logits of
// sequence i's next token are ready, pick(wk, i, logits) returns it. pick
// is called from up to m.threads goroutines at a time (wk identifies the
// goroutine), for different sequences, unless lim.serial is set; the
// calls for one sequence come in order.
func (m *Model) generate(ctx context.Context, seqs [][]int, n int, lim sampleLimits, pick func(wk, i int, logits []float32) int) error {
	var live []int
	for i, s := range seqs {
		if len(s) < n {
			live = append(live, i)
		}
	}
	if len(live) == 0 {
		return nil
	}
	// Positions 0…n−2 are ever run: the token at n−1 is drawn, not run.
	pos := n - 1
	perSeq := m.cacheBytes(pos)
	group := int(min(int64(len(live)), max(1, lim.cacheBytes/max(perSeq, 1))))
	passRows := lim.passRows
	if passRows <= 0 {
		passRows = 1
		for passRows < 1<<20 && m.passBytes(2*passRows) <= BatchMemory {
			passRows *= 2
		}
		passRows = max(passRows, group) // a step is one pass
	}
	d := m.newDecoder(group, pos)
	for g0 := 0; g0 < len(live); g0 += group {
		if err := d.generate(ctx, seqs, live[g0:min(g0+group, len(live))], n, passRows, lim.serial, pick); err != nil {
			return err
		}
	}
	return nil
}

// generate runs the sequences seqs[idx[s]] in cache slots s until each
// holds n tokens: every pass runs, slot by slot, the tokens not yet in the
// cache (at most passRows in all), then draws the next token of each
// sequence whose last token ran.
func (d *decoder) generate(ctx context.Context, seqs [][]int, idx []int, n, passRows int, serial bool, pick func(wk, i int, logits []float32) int) error {
	m, p := d.m, &d.p
	D, V := m.cfg.HiddenSize, m.cfg.VocabSize
	cached := make([]int, len(idx))
	var ends, endSeq []int // rows whose logits are drawn from, and their sequences
	var hx, hn, logits []float32
	for {
		d.reset()
		ends, endSeq = ends[:0], endSeq[:0]
		for s, i := range idx {
			seq := seqs[i]
			if len(seq) >= n {
				continue
			}
			take := min(len(seq)-cached[s], passRows-len(p.tok))
			if take <= 0 {
				break
			}
			for t := cached[s]; t < cached[s]+take; t++ {
				d.add(s, seq[t], t)
			}
			if cached[s] += take; cached[s] == len(seq) {
				ends, endSeq = append(ends, len(p.tok)-1), append(endSeq, i)
			}
		}
		if len(p.tok) == 0 {
			return nil
		}
		if err := d.run(ctx); err != nil {
			return err
		}
		chunk := max(1, logitBytes/4/V)
		for e0 := 0; e0 < len(ends); e0 += chunk {
			e1 := min(e0+chunk, len(ends))
			rows := e1 - e0
			hx, hn = growF32(hx, rows*D), growF32(hn, rows*D)
			logits = growF32(logits, rows*V)
			for j, r := range ends[e0:e1] {
				copy(hx[j*D:(j+1)*D], p.x[r*D:])
			}
			m.norm(hn, hx, m.normW, m.normB, 0, rows)
			m.logits(&p.s, hn, rows, logits)
			next := func(wk, j int) {
				i := endSeq[e0+j]
				seqs[i] = append(seqs[i], pick(wk, i, logits[j*V:(j+1)*V]))
			}
			if serial {
				for j := range rows {
					next(0, j)
				}
			} else {
				blas.ParallelFor(m.threads, rows, next)
			}
		}
	}
}

// draw picks a token from the softmax of logits with one uniform draw of
// rng; buf (len(logits) at least) holds the exponentials.
func draw(logits []float32, rng *rand.Rand, buf []float64) int {
	mx := float32(math.Inf(-1))
	for _, v := range logits {
		if v > mx {
			mx = v
		}
	}
	maxL := float64(mx)
	e := buf[:len(logits)]
	var sum float64
	for i, v := range logits {
		e[i] = math.Exp(float64(v) - maxL)
		sum += e[i]
	}
	u, acc := rng.Float64()*sum, 0.0
	for id, x := range e {
		if acc += x; acc > u {
			return id
		}
	}
	return len(logits) - 1
}

func growF64(b []float64, n int) []float64 {
	if cap(b) < n {
		return make([]float64, n)
	}
	return b[:n]
}
