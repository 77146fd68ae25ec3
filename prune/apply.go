package prune

import "math"

// This file holds the kernels that apply an unstructured threshold to a
// whole tensor: zeroBelow and countEqual have an AVX-512 version
// (apply_amd64.s) for the first len/16·16 elements and the Go loops below
// for the rest, or for everything without AVX-512 or with the purego tag.
// FuzzApplyThreshold checks the two against each other.

// zeroThreshold sets to +0 the elements t prunes: every element whose key
// is below t.Key and the first t.Ties (in index order) whose key equals it.
// Other elements keep their bits.
func zeroThreshold(vals []float32, t Threshold) {
	end := 0 // [0, end) prunes keys <= Key: it holds exactly the pruned ties
	if t.Ties > 0 {
		end = afterTies(vals, t.Key, t.Ties)
	}
	zeroBelow(vals[:end], t.Key+1) // Key <= +Inf's key, so Key+1 does not overflow
	zeroBelow(vals[end:], t.Key)
}

// afterTies returns the index just after the ties-th element whose key is
// key (len(vals) if there are fewer).
func afterTies(vals []float32, key uint32, ties int64) int {
	const block = 4096
	for lo := 0; lo < len(vals); lo += block {
		b := vals[lo:min(lo+block, len(vals))]
		if c := countEqual(b, key); c < ties {
			ties -= c
			continue
		}
		for i, v := range b {
			if math.Float32bits(v)&^(1<<31) == key {
				if ties--; ties == 0 {
					return lo + i + 1
				}
			}
		}
	}
	return len(vals)
}

// zeroBelow sets to +0 every element whose key is below bound.
func zeroBelow(vals []float32, bound uint32) {
	done := zeroBelowAsm(vals, bound)
	zeroBelowGo(vals[done:], bound)
}

// countEqual counts the elements whose key is key.
func countEqual(vals []float32, key uint32) int64 {
	n, done := countEqualAsm(vals, key)
	return n + countEqualGo(vals[done:], key)
}

func zeroBelowGo(vals []float32, bound uint32) {
	for i, v := range vals {
		b := math.Float32bits(v)
		// Keys have the sign bit clear, so int32(k)-int32(bound) is
		// negative exactly when k < bound.
		lt := uint32((int32(b&^(1<<31)) - int32(bound)) >> 31)
		vals[i] = math.Float32frombits(b &^ lt)
	}
}

func countEqualGo(vals []float32, key uint32) int64 {
	var n int64
	for _, v := range vals {
		if math.Float32bits(v)&^(1<<31) == key {
			n++
		}
	}
	return n
}

// ChunkApplier applies a tensor-scope plan to the values it was made from
// a chunk at a time, the chunks passed in order and covering the values
// once: the result is [Plan.ApplyCount]'s, without the whole tensor in
// writable memory (package sparsify prunes a mapped file this way, chunk
// by chunk into its output buffer).
type ChunkApplier struct {
	t       Threshold
	ties    int64 // ties still to prune
	n       int64 // elements seen
	stored  int64 // with Key 0: elements left with any bit set
	nonzero int64 // with Key 0: elements left that are not zero
}

// ChunkApplier returns an applier of p, or nil when p is not one threshold
// over the whole tensor (row scope, N:M, structured).
func (p *Plan) ChunkApplier() *ChunkApplier {
	if p.row != nil || p.lines != nil || p.method.IsNM() {
		return nil
	}
	return &ChunkApplier{t: p.tensor, ties: p.tensor.Ties}
}

// Apply sets the pruned elements of chunk, the next values of the tensor,
// to +0; the others keep their bits.
func (a *ChunkApplier) Apply(chunk []float32) {
	key := a.t.Key
	a.n += int64(len(chunk))
	switch {
	case a.ties == 0:
		zeroBelow(chunk, key)
	default:
		// The first ties elements equal to Key are pruned: all of them in
		// this chunk if it holds no more, else up to the last one.
		if c := countEqual(chunk, key); c <= a.ties {
			zeroBelow(chunk, key+1) // Key <= +Inf's key: no overflow
			a.ties -= c
		} else {
			end := afterTies(chunk, key, a.ties)
			zeroBelow(chunk[:end], key+1)
			zeroBelow(chunk[end:], key)
			a.ties = 0
		}
	}
	if key == 0 {
		// Zeros or -0 may be left: count as ApplyCount does.
		for _, v := range chunk {
			if b := math.Float32bits(v); b != 0 {
				a.stored++
				if b != 1<<31 {
					a.nonzero++
				}
			}
		}
	}
}

// Counts returns, once every chunk was applied, what ApplyCount would:
// the elements pruned, those left with any bit set, those left nonzero.
func (a *ChunkApplier) Counts() (pruned, stored, nonzero int64) {
	pruned = a.t.Count()
	if a.t.Key > 0 {
		// Every element left has a key of at least Key > 0.
		return pruned, a.n - pruned, a.n - pruned
	}
	return pruned, a.stored, a.nonzero
}
