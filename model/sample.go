package model

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
)

// Sample extends prompt with tokens drawn from lm's next-token
// distribution at temperature 1 until it holds n tokens, and returns the
// sequence. Each draw takes one rng.Float64() u and picks the first token
// whose cumulative probability (softmax of the float32 logits, computed in
// float64 in id order) exceeds u·Σ; so a given rng and model give the same
// tokens. The window is the whole sequence so far (no cache): each token
// costs one forward pass.
func Sample(ctx context.Context, lm LM, prompt []int, n int, rng *rand.Rand) ([]int, error) {
	if len(prompt) == 0 {
		return nil, fmt.Errorf("%w: sampling needs at least one prompt token", ErrInput)
	}
	if n > lm.MaxPositions() {
		return nil, fmt.Errorf("%w: %d tokens do not fit in the model's %d positions", ErrInput, n, lm.MaxPositions())
	}
	V := lm.VocabSize()
	ids := append(make([]int, 0, n), prompt...)
	logits := make([]float32, V)
	for len(ids) < n {
		row, err := lm.Window(ctx, ids, len(ids)-1)
		if err != nil {
			return nil, err
		}
		row(0, 1, logits)
		maxL := math.Inf(-1)
		for _, v := range logits {
			maxL = math.Max(maxL, float64(v))
		}
		var sum float64
		for _, v := range logits {
			sum += math.Exp(float64(v) - maxL)
		}
		u, acc, next := rng.Float64()*sum, 0.0, V-1
		for id, v := range logits {
			if acc += math.Exp(float64(v) - maxL); acc > u {
				next = id
				break
			}
		}
		ids = append(ids, next)
	}
	return ids, nil
}
