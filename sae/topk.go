package sae

import "slices"

// topK returns the indices of the k largest values of v — among the
// indices in cand, or all of v when cand is nil — ordered by index. Of
// equal values the lower index wins, so the choice is deterministic. heap
// provides the memory (at least k) and holds the result.
func topK(v []float32, cand []int32, k int, heap []int32) []int32 {
	if k <= 0 {
		return heap[:0]
	}
	h := heap[:0]
	// worse reports whether index a ranks below index b.
	worse := func(a, b int32) bool { return v[a] < v[b] || (v[a] == v[b] && a > b) }
	down := func(i int) {
		n := len(h)
		for {
			l := 2*i + 1
			if l >= n {
				return
			}
			w := l
			if r := l + 1; r < n && worse(h[r], h[l]) {
				w = r
			}
			if !worse(h[w], h[i]) {
				return
			}
			h[i], h[w] = h[w], h[i]
			i = w
		}
	}
	push := func(j int32) {
		if len(h) < k {
			h = append(h, j)
			for i := len(h) - 1; i > 0; {
				p := (i - 1) / 2
				if !worse(h[i], h[p]) {
					break
				}
				h[i], h[p] = h[p], h[i]
				i = p
			}
			return
		}
		// Candidates come in ascending index order, so a tie with the
		// root keeps the root (the lower index).
		if v[j] > v[h[0]] {
			h[0] = j
			down(0)
		}
	}
	if cand == nil {
		for j := range v {
			push(int32(j))
		}
	} else {
		for _, j := range cand {
			push(j)
		}
	}
	slices.Sort(h)
	return h
}
