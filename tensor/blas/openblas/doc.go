// Package openblas links OpenBLAS (Debian libopenblas-dev) through cgo, for
// benchmarks that compare lmsparse's pure-Go GEMM in package blas with
// OpenBLAS in one run. It lives apart from package blas because a cgo
// package may not contain Go assembly, and everything but this comment is
// behind the openblas build tag, so the default build has no cgo:
//
//	go test -tags openblas -run '^$' -bench GemmVsOpenBLAS -count 3 ./tensor/blas/openblas
package openblas
