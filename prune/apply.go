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
