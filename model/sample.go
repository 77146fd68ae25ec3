package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// Sample extends each prompt with tokens drawn from lm's next-token
// distribution at temperature 1 until it holds n tokens, and returns the
// sequences. Sequence i draws from rngs[i]: each draw takes one
// rngs[i].Float64() u and picks the first token whose cumulative
// probability (softmax of the float32 logits, computed in float64 in id
// order) exceeds u; so given rngs and the model, the tokens are fixed
// (the logits do not depend on how sequences are batched). The window is
// the whole sequence so far (no cache): each token costs a forward pass
// over it; a *Model runs all sequences of a step as one batch.
func Sample(ctx context.Context, lm LM, prompts [][]int, n int, rngs []*rand.Rand) ([][]int, error) {
	if len(rngs) != len(prompts) {
		return nil, fmt.Errorf("%w: %d random sources for %d prompts", ErrInput, len(rngs), len(prompts))
	}
	if n > lm.MaxPositions() {
		return nil, fmt.Errorf("%w: %d tokens do not fit in the model's %d positions", ErrInput, n, lm.MaxPositions())
	}
	seqs := make([][]int, len(prompts))
	for i, p := range prompts {
		if len(p) == 0 {
			return nil, fmt.Errorf("%w: sampling needs at least one prompt token", ErrInput)
		}
		seqs[i] = append(make([]int, 0, n), p...)
	}
	V := lm.VocabSize()
	logits := make([]float32, V)
	m, batched := lm.(*Model)
	var p pass
	for {
		var live []int // sequences still short of n, all of one length per step
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
			seqs[i] = append(seqs[i], draw(logits, rngs[i]))
		}
	}
}

// draw picks a token from the softmax of logits with one uniform draw.
func draw(logits []float32, rng *rand.Rand) int {
	maxL := math.Inf(-1)
	for _, v := range logits {
		maxL = math.Max(maxL, float64(v))
	}
	var sum float64
	for _, v := range logits {
		sum += math.Exp(float64(v) - maxL)
	}
	u, acc := rng.Float64()*sum, 0.0
	for id, v := range logits {
		if acc += math.Exp(float64(v) - maxL); acc > u {
			return id
		}
	}
	return len(logits) - 1
}
