//go:build openblas

package openblas

import (
	"os"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/cpu"
)

// TestMain guards the comparison against an unfair baseline: OpenBLAS
// 0.3.21's DYNAMIC_ARCH does not recognise newer Xeons (family 6 model 207
// among them) and falls back to its SSE3 "Prescott" kernels, 4–5× slower
// than its AVX-512 ones. OPENBLAS_CORETYPE is read when the library loads,
// so the test binary re-executes itself once with the best core the CPU
// supports, unless the caller chose one.
func TestMain(m *testing.M) {
	if os.Getenv("OPENBLAS_CORETYPE") == "" && strings.Contains(Config(), "core=Prescott") {
		core := ""
		switch {
		case cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW && cpu.X86.HasAVX512VL:
			core = "SkylakeX"
		case cpu.X86.HasAVX2 && cpu.X86.HasFMA:
			core = "Haswell"
		}
		if core != "" {
			if exe, err := os.Executable(); err == nil {
				env := append(os.Environ(), "OPENBLAS_CORETYPE="+core)
				_ = syscall.Exec(exe, os.Args, env) // returns only on failure: run as is
			}
		}
	}
	os.Exit(m.Run())
}
