package demo

import "math"

// NGram is a unigram and an interpolated bigram model over token ids.
type NGram struct {
	vocab  int
	total  float64            // tokens counted
	uni    []float64          // unigram counts
	ctx    []float64          // c(a): bigrams starting with a
	types  []float64          // distinct successors of a
	bigram map[[2]int]float64 // c(a, b)
}

// Discount is the absolute discount d of the bigram model.
const Discount = 0.75

// FitNGram counts the tokens and adjacent pairs of ids (ids in [0, vocab)).
func FitNGram(ids []int, vocab int) *NGram {
	m := &NGram{vocab: vocab, uni: make([]float64, vocab), ctx: make([]float64, vocab), types: make([]float64, vocab), bigram: map[[2]int]float64{}}
	for i, b := range ids {
		m.uni[b]++
		m.total++
		if i > 0 {
			a := ids[i-1]
			k := [2]int{a, b}
			if m.bigram[k] == 0 {
				m.types[a]++
			}
			m.bigram[k]++
			m.ctx[a]++
		}
	}
	return m
}

// Unigram is P(b) add-one smoothed.
func (m *NGram) Unigram(b int) float64 { return (m.uni[b] + 1) / (m.total + float64(m.vocab)) }

// Bigram is P(b | a) = max(c(a,b) − d, 0)/c(a) + d·types(a)/c(a)·P(b),
// or P(b) when a was never followed by anything.
func (m *NGram) Bigram(a, b int) float64 {
	c := m.ctx[a]
	if c == 0 {
		return m.Unigram(b)
	}
	return math.Max(m.bigram[[2]int{a, b}]-Discount, 0)/c + Discount*m.types[a]/c*m.Unigram(b)
}

// Perplexity returns the unigram and bigram perplexities of ids[1:] (each
// token after the first, the bigram conditioned on the one before it).
func (m *NGram) Perplexity(ids []int) (unigram, bigram float64) {
	var su, sb float64
	for i := 1; i < len(ids); i++ {
		su -= math.Log(m.Unigram(ids[i]))
		sb -= math.Log(m.Bigram(ids[i-1], ids[i]))
	}
	n := float64(len(ids) - 1)
	return math.Exp(su / n), math.Exp(sb / n)
}
