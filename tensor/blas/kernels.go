package blas

import (
	"errors"
	"fmt"
	"strings"
)

// ErrKernel reports a kernel name that is not available on this CPU and
// build.
var ErrKernel = errors.New("kernel not available")

// All returns every kernel usable on this CPU and build, best first; the
// pure-Go kernel is always last.
func All() []*Kernel {
	return append(asmKernels(), goKernel())
}

// Best returns the fastest kernel the CPU supports.
func Best() *Kernel { return All()[0] }

// Kernels lists the names of the kernels usable on this CPU and build, best
// first. "go", the portable pure-Go kernel, is always present.
func Kernels() []string {
	var names []string
	for _, k := range All() {
		names = append(names, k.name)
	}
	return names
}

// Lookup returns the kernel called name; "" or "auto" means [Best]. An
// unknown name is an error wrapping [ErrKernel] that lists the available
// ones.
func Lookup(name string) (*Kernel, error) {
	ks := All()
	if name == "" || name == "auto" {
		return ks[0], nil
	}
	for _, k := range ks {
		if k.name == name {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w on this CPU and build: %q (available: %s)", ErrKernel, name, strings.Join(Kernels(), ", "))
}
