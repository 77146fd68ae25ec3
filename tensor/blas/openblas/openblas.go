//go:build openblas

package openblas

/*
#cgo LDFLAGS: -lopenblas
#include <cblas.h>
*/
import "C"

import (
	"fmt"
	"unsafe"
)

// SetThreads sets the number of threads OpenBLAS uses
// (openblas_set_num_threads); 1 keeps its pthreads from competing with
// Go's goroutines.
func SetThreads(n int) { C.openblas_set_num_threads(C.int(n)) }

// Config returns OpenBLAS's build configuration and core name.
func Config() string {
	return C.GoString(C.openblas_get_config()) + " core=" + C.GoString(C.openblas_get_corename())
}

// SgemmOpenBLAS computes C = A·Bᵀ for row-major A [m, k] and B [n, k] into
// c [m, n] with cblas_sgemm (B transposed): the product of blas.MatMulT.
// It panics if a slice is too short.
func SgemmOpenBLAS(c, a, b []float32, m, n, k int) {
	if m < 0 || n < 0 || k < 0 || len(a) < m*k || len(b) < n*k || len(c) < m*n {
		panic(fmt.Sprintf("openblas: Sgemm: sizes m=%d n=%d k=%d do not fit len(a)=%d len(b)=%d len(c)=%d", m, n, k, len(a), len(b), len(c)))
	}
	if m == 0 || n == 0 {
		return
	}
	if k == 0 {
		clear(c[:m*n])
		return
	}
	C.cblas_sgemm(C.CblasRowMajor, C.CblasNoTrans, C.CblasTrans, C.blasint(m), C.blasint(n), C.blasint(k),
		1, (*C.float)(unsafe.Pointer(&a[0])), C.blasint(k),
		(*C.float)(unsafe.Pointer(&b[0])), C.blasint(k),
		0, (*C.float)(unsafe.Pointer(&c[0])), C.blasint(n))
}
