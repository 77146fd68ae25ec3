//go:build !amd64 || purego

package model

// asmKernels returns no kernels: this build uses the pure-Go kernel only.
func asmKernels() []*kernel { return nil }
