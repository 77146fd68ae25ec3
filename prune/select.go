package prune

import (
	"math"
	"math/bits"
	"slices"
)

// key maps a float32 to its magnitude key: the bits with the sign cleared.
// For non-NaN values keys order exactly as |v| does (+0 and -0 share key 0).
func key(v float32) uint32 { return math.Float32bits(v) &^ (1 << 31) }

// Threshold describes which elements an unstructured selection prunes: all
// elements whose key is below Key, plus the first Ties elements (in flat
// order) whose key equals Key. It prunes exactly Below+Ties elements.
type Threshold struct {
	Key   uint32
	Ties  int64 // elements with key == Key to prune, lowest index first
	Below int64 // elements with key < Key
}

// Count returns how many elements the threshold prunes.
func (t Threshold) Count() int64 { return t.Below + t.Ties }

// RoundHalfEven returns round-half-even(s·n), the number of elements a
// sparsity s prunes out of n.
func RoundHalfEven(s float64, n int64) int64 {
	k := int64(math.RoundToEven(s * float64(n)))
	return min(max(k, 0), n)
}

// radix is a two-level radix selector over 32-bit keys: a histogram of the
// high 16 bits, then of the low 16 bits inside the bucket that holds the
// k-th smallest key. It needs two passes over the data and no copy of it.
type radix struct {
	hi, lo [1 << 16]int64
	sub    [4][1 << 16]uint32 // fillHi's interleaved counts
	keys   [4096]uint32       // selectFromHi's gathered keys
	sample [sampleSize]uint32 // sampledSelect's sample
}

// sampledMin is the length from which a tensor-scope selection tries
// sampledSelect first; sampleSize is how many keys it samples.
const (
	sampledMin = 1 << 18
	sampleSize = 1 << 12
)

// sampledSelect is selectK for long slices on AVX-512 CPUs, with the
// first pass (the 65,536-bucket histogram of all keys, scalar) replaced by
// a vector pass over a bracket: the keys of a strided sample of
// sampleSize bracket the k-th smallest key [lo, hi] (six standard
// deviations of a sample quantile on each side: about 10% of the keys at
// 50% sparsity); one pass counts the keys below lo and the NaNs, and
// histograms the high 16 bits of the keys inside the bracket; the second
// pass (as selectFromHi's) counts the low 16 bits of the keys at or above
// lo in the k-th's bucket. On a 768×3072 weight it takes about 1.1 ms
// where selectK takes 1.9 (BenchmarkSelect has 10M values, which no
// longer fit in the cache: there the two tie). The result is exact
// whatever the sample: it only decides the bracket, and ok is false —
// call selectK — when the bracket misses the k-th key, or without
// AVX-512, or for k outside (0, len). nan reports that vals holds a NaN
// (ok is then false).
func (r *radix) sampledSelect(vals []float32, k int64) (t Threshold, nan, ok bool) {
	n := int64(len(vals))
	if !hasAVX512() || n < sampledMin || k <= 0 || k >= n {
		return Threshold{}, false, false
	}
	s := r.sample[:]
	stride := n / sampleSize
	for i := range s {
		s[i] = key(vals[int64(i)*stride])
	}
	q := float64(k) / float64(n)
	c, margin := q*sampleSize, 6*math.Sqrt(sampleSize*q*(1-q))+8
	lo, hi := uint32(0), uint32(0x7f800000) // up to +Inf: NaNs are counted apart
	if i := int(c - margin); i > 0 {
		lo = nthSmallest(s, i)
	}
	if i := int(c + margin); i < sampleSize-1 {
		hi = min(hi, nthSmallest(s, i))
	}
	if lo > hi {
		return Threshold{}, false, false // a NaN in the sample: the full path reports it
	}
	r.hi = [1 << 16]int64{}
	var below, nans int64
	const block = 4096
	for off := 0; off < len(vals); off += block {
		chunk := vals[off:min(off+block, len(vals))]
		b, nn, keys, done := rangeKeysAsm(chunk, lo, hi, r.keys[:])
		below, nans = below+int64(b), nans+int64(nn)
		for _, kv := range keys {
			r.hi[kv>>16]++
		}
		for _, v := range chunk[done:] {
			switch kv := key(v); {
			case kv < lo:
				below++
			case kv <= hi:
				r.hi[kv>>16]++
			case kv > 0x7f800000:
				nans++
			}
		}
	}
	if nans > 0 {
		return Threshold{}, true, false
	}
	var inside int64
	for _, c := range r.hi[lo>>16 : hi>>16+1] {
		inside += c
	}
	if below >= k || below+inside < k {
		return Threshold{}, false, false // the bracket missed
	}
	// The k-th key is the (k-below)-th of the bracket: its bucket b, with
	// belowB bracket keys in lower buckets; then its rank among the keys of
	// bucket b at or above lo.
	b, belowB := bucket(&r.hi, k-below)
	r.lo = [1 << 16]int64{}
	for off := 0; off < len(vals); off += block {
		chunk := vals[off:min(off+block, len(vals))]
		keys, done := collectBucketAsm(chunk, b, r.keys[:])
		for _, kv := range keys {
			if kv >= lo {
				r.lo[kv&0xffff]++
			}
		}
		for _, v := range chunk[done:] {
			if kv := key(v); kv>>16 == b && kv >= lo {
				r.lo[kv&0xffff]++
			}
		}
	}
	l, below2 := bucket(&r.lo, k-below-belowB)
	total := below + belowB + below2
	return Threshold{Key: b<<16 | l, Below: total, Ties: k - total}, false, true
}

// selectK returns the threshold that prunes the k smallest of vals (by
// magnitude, ties by index). vals must hold no NaN.
func (r *radix) selectK(vals []float32, k int64) Threshold {
	if k <= 0 {
		return Threshold{}
	}
	r.fillHi(vals)
	return r.selectFromHi(vals, k)
}

// fillHi is the first pass: the histogram of the keys' high 16 bits.
// Weights cluster in a few buckets, so consecutive increments of one
// counter would wait on each other; four interleaved sets of counts,
// summed at the end, keep four chains independent.
func (r *radix) fillHi(vals []float32) {
	r.hi = [1 << 16]int64{}
	for len(vals) > 0 {
		chunk := vals[:min(len(vals), 1<<32)] // a set counts at most a quarter (+3): no uint32 wraps
		vals = vals[len(chunk):]
		for i := range r.sub {
			r.sub[i] = [1 << 16]uint32{}
		}
		s0, s1, s2, s3 := &r.sub[0], &r.sub[1], &r.sub[2], &r.sub[3]
		n := len(chunk) &^ 3
		for i := 0; i < n; i += 4 {
			s0[key(chunk[i])>>16]++
			s1[key(chunk[i+1])>>16]++
			s2[key(chunk[i+2])>>16]++
			s3[key(chunk[i+3])>>16]++
		}
		for _, v := range chunk[n:] {
			s0[key(v)>>16]++
		}
		for j := range r.hi {
			r.hi[j] += int64(s0[j]) + int64(s1[j]) + int64(s2[j]) + int64(s3[j])
		}
	}
}

// mayHoldNaN reports, from the high histogram, whether vals may hold a NaN:
// NaN keys are above 0x7f800000 (+Inf), so only the buckets from 0x7f80 up
// can hold one. False means certainly none.
func (r *radix) mayHoldNaN() bool {
	for _, c := range r.hi[0x7f80:] {
		if c != 0 {
			return true
		}
	}
	return false
}

// selectFromHi finishes selectK once fillHi has run on vals.
func (r *radix) selectFromHi(vals []float32, k int64) Threshold {
	n := int64(len(vals))
	if k <= 0 {
		return Threshold{}
	}
	if k > n {
		k = n
	}
	b, below := bucket(&r.hi, k)
	r.lo = [1 << 16]int64{}
	// The keys in bucket b are gathered a block at a time (with AVX-512:
	// compare and compress 16 at once) and only they are counted.
	const block = 4096
	for lo := 0; lo < len(vals); lo += block {
		chunk := vals[lo:min(lo+block, len(vals))]
		keys, done := collectBucketAsm(chunk, b, r.keys[:])
		for _, kv := range keys {
			r.lo[kv&0xffff]++
		}
		for _, v := range chunk[done:] {
			if kv := key(v); kv>>16 == b {
				r.lo[kv&0xffff]++
			}
		}
	}
	l, below2 := bucket(&r.lo, k-below)
	return Threshold{Key: b<<16 | l, Below: below + below2, Ties: k - below - below2}
}

// bucket returns the index b of the histogram bucket holding the k-th
// smallest element (1-based) and the number of elements in buckets below b.
func bucket(h *[1 << 16]int64, k int64) (uint32, int64) {
	var cum int64
	for i, c := range h {
		if cum+c >= k {
			return uint32(i), cum
		}
		cum += c
	}
	return 1<<16 - 1, cum // unreachable when k <= total
}

// selectSmall does the same as radix.selectK for short slices (rows), by
// quickselect on a copy of the keys in scratch.
func selectSmall(vals []float32, k int64, scratch []uint32) Threshold {
	n := int64(len(vals))
	if k <= 0 {
		return Threshold{}
	}
	if k > n {
		k = n
	}
	keys := scratch[:n]
	for i, v := range vals {
		keys[i] = key(v)
	}
	t := nthSmallest(keys, int(k-1))
	var below int64
	for _, v := range vals {
		if key(v) < t {
			below++
		}
	}
	return Threshold{Key: t, Below: below, Ties: k - below}
}

// nthSmallest returns the value that would be at index i if keys were
// sorted, reordering keys. It is quickselect with a median-of-three pivot
// and a three-way partition (so runs of equal keys cost nothing); after
// 2·log2(n) rounds it sorts what is left, bounding the worst case at
// O(n log n).
func nthSmallest(keys []uint32, i int) uint32 {
	lo, hi := 0, len(keys)-1
	budget := 2 * bits.Len(uint(len(keys)))
	for hi > lo {
		if hi-lo < 16 || budget == 0 {
			slices.Sort(keys[lo : hi+1])
			return keys[i]
		}
		budget--
		mid := lo + (hi-lo)/2
		// median of three into keys[mid]
		if keys[mid] < keys[lo] {
			keys[mid], keys[lo] = keys[lo], keys[mid]
		}
		if keys[hi] < keys[lo] {
			keys[hi], keys[lo] = keys[lo], keys[hi]
		}
		if keys[hi] < keys[mid] {
			keys[hi], keys[mid] = keys[mid], keys[hi]
		}
		p := keys[mid]
		// three-way partition: < p | == p | > p
		lt, gt, j := lo, hi, lo
		for j <= gt {
			switch {
			case keys[j] < p:
				keys[lt], keys[j] = keys[j], keys[lt]
				lt++
				j++
			case keys[j] > p:
				keys[gt], keys[j] = keys[j], keys[gt]
				gt--
			default:
				j++
			}
		}
		switch {
		case i < lt:
			hi = lt - 1
		case i > gt:
			lo = gt + 1
		default:
			return p
		}
	}
	return keys[i]
}
