//go:build amd64 && !purego

package tensor

import "golang.org/x/sys/cpu"

// The AVX-512 scans of Stats.Add: 16 F32 or 32 F16/BF16 values per
// instruction, against about 2 GB/s for the portable code (the untouched
// tensors are counted as prune copies them, on its critical path).

var (
	hasStats32 = cpu.X86.HasAVX512F
	hasStats16 = cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW
)

// stats32AVX512 counts, among the n 32-bit little-endian floats at p (n a
// multiple of 16), those whose magnitude bits are 0, equal inf, and
// exceed inf.
//
//go:noescape
func stats32AVX512(p *byte, n int, inf uint32) (zeros, infs, nans int64)

// stats16AVX512 is stats32AVX512 for 16-bit floats (n a multiple of 32).
//
//go:noescape
func stats16AVX512(p *byte, n int, inf uint16) (zeros, infs, nans int64)

// addFast counts the leading elements of b (whose dtype has the given
// element size and infinity bits) that the AVX-512 kernels take and
// returns how many bytes that was (0 without them).
func (s *Stats) addFast(b []byte, size int, inf uint32) int {
	switch {
	case size == 4 && hasStats32:
		n := len(b) / 4 &^ 15
		if n == 0 {
			return 0
		}
		z, i, nan := stats32AVX512(&b[0], n, inf)
		s.Zeros, s.Inf, s.NaN = s.Zeros+z, s.Inf+i, s.NaN+nan
		return 4 * n
	case size == 2 && hasStats16:
		n := len(b) / 2 &^ 31
		if n == 0 {
			return 0
		}
		z, i, nan := stats16AVX512(&b[0], n, uint16(inf))
		s.Zeros, s.Inf, s.NaN = s.Zeros+z, s.Inf+i, s.NaN+nan
		return 2 * n
	}
	return 0
}
