//go:build !amd64 || purego

package blas

// asmKernels returns no kernels: this build uses the pure-Go kernel only.
func asmKernels() []*Kernel { return nil }
