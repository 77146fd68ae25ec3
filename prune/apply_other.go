//go:build !amd64 || purego

package prune

func zeroBelowAsm([]float32, uint32) int { return 0 }

func countEqualAsm([]float32, uint32) (int64, int) { return 0, 0 }

func collectBucketAsm(_ []float32, _ uint32, out []uint32) ([]uint32, int) { return out[:0], 0 }

func rangeKeysAsm(_ []float32, _, _ uint32, out []uint32) (int, int, []uint32, int) {
	return 0, 0, out[:0], 0
}

// hasAVX512 is false: this build has no assembly kernels.
func hasAVX512() bool { return false }
