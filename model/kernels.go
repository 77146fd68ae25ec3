package model

import (
	"fmt"
	"strings"
)

// kernels returns every micro-kernel usable on this CPU and build, best
// first; the pure-Go kernel is always last.
func kernels() []*kernel {
	return append(asmKernels(), goKernel())
}

func bestKernel() *kernel { return kernels()[0] }

// Kernels lists the names of the matrix-multiply kernels usable on this
// CPU and build, best first, for [Options].Kernel. "go", the portable
// pure-Go kernel, is always present.
func Kernels() []string {
	var names []string
	for _, k := range kernels() {
		names = append(names, k.name)
	}
	return names
}

// findKernel returns the kernel called name; "" or "auto" means the best.
func findKernel(name string) (*kernel, error) {
	ks := kernels()
	if name == "" || name == "auto" {
		return ks[0], nil
	}
	for _, k := range ks {
		if k.name == name {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: kernel %q is not available on this CPU and build (available: %s)", ErrInput, name, strings.Join(Kernels(), ", "))
}
