//go:build amd64 && !purego

package prune

import "golang.org/x/sys/cpu"

// hasAVX512 reports whether the CPU runs the AVX-512 kernels.
func hasAVX512() bool { return cpu.X86.HasAVX512F }

// zeroBelowAVX512 zeroes the elements of p[:n] whose key is below bound;
// n is a multiple of 16.
//
//go:noescape
func zeroBelowAVX512(p *float32, n int, bound uint32)

// countEqualAVX512 counts the elements of p[:n] whose key is key; n is a
// multiple of 16.
//
//go:noescape
func countEqualAVX512(p *float32, n int, key uint32) int64

// zeroBelowAsm runs zeroBelowAVX512 on the first len/16·16 elements of vals
// and returns how many it did (0 without AVX-512).
func zeroBelowAsm(vals []float32, bound uint32) int {
	n := len(vals) &^ 15
	if !hasAVX512() || n == 0 {
		return 0
	}
	zeroBelowAVX512(&vals[0], n, bound)
	return n
}

// countEqualAsm is countEqualAVX512 on the first len/16·16 elements.
func countEqualAsm(vals []float32, key uint32) (count int64, done int) {
	n := len(vals) &^ 15
	if !hasAVX512() || n == 0 {
		return 0, 0
	}
	return countEqualAVX512(&vals[0], n, key), n
}

// collectBucketAVX512 writes the keys of p[:n] whose high 16 bits are
// bucket to out, in order, and returns their number; n is a multiple of 16
// and out holds at least n.
//
//go:noescape
func collectBucketAVX512(p *float32, n int, bucket uint32, out *uint32) int

// collectBucketAsm runs collectBucketAVX512 on the first len/16·16
// elements of vals (len(out) must be at least that) and returns the keys
// found and how many elements it did (0 without AVX-512).
func collectBucketAsm(vals []float32, bucket uint32, out []uint32) (keys []uint32, done int) {
	n := len(vals) &^ 15
	if !hasAVX512() || n == 0 {
		return out[:0], 0
	}
	_ = out[n-1]
	m := collectBucketAVX512(&vals[0], n, bucket, &out[0])
	return out[:m], n
}

// rangeKeysAVX512 counts the elements of p[:n] whose key is below lo and
// those that are NaN, and writes the keys in [lo, hi] to out, in order,
// returning their number; n is a multiple of 16 and out holds at least n.
//
//go:noescape
func rangeKeysAVX512(p *float32, n int, lo, hi uint32, out *uint32) (below, nan, m int)

// rangeKeysAsm runs rangeKeysAVX512 on the first len/16·16 elements of
// vals (len(out) must be at least that) and returns the counts, the keys
// found and how many elements it did (0 without AVX-512).
func rangeKeysAsm(vals []float32, lo, hi uint32, out []uint32) (below, nan int, keys []uint32, done int) {
	n := len(vals) &^ 15
	if !hasAVX512() || n == 0 {
		return 0, 0, out[:0], 0
	}
	_ = out[n-1]
	below, nan, m := rangeKeysAVX512(&vals[0], n, lo, hi, &out[0])
	return below, nan, out[:m], n
}
