package blas

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// Threads turns a thread-count option into a worker count: values below 1
// mean runtime.GOMAXPROCS(0).
func Threads(n int) int {
	if n < 1 {
		n = runtime.GOMAXPROCS(0)
	}
	return n
}

// ParallelFor calls fn(worker, i) for every i in [0, n), each exactly once,
// on at most threads goroutines. worker is in [0, min(threads, n)) and
// identifies the goroutine, so callers can give each worker its own
// scratch buffers. Which worker runs which i varies from run to run; callers
// keep results deterministic by making each i's output depend only on i.
// A panic in fn stops the workers and is raised again in the caller's
// goroutine (where a recover can catch it) once they have stopped.
func ParallelFor(threads, n int, fn func(worker, i int)) {
	if threads > n {
		threads = n
	}
	if threads <= 1 {
		for i := 0; i < n; i++ {
			fn(0, i)
		}
		return
	}
	var next atomic.Int64
	var (
		wg       sync.WaitGroup
		panicked atomic.Pointer[workerPanic]
	)
	wg.Add(threads)
	for w := 0; w < threads; w++ {
		go func(w int) {
			defer wg.Done()
			defer func() {
				if r := recover(); r != nil {
					panicked.CompareAndSwap(nil, &workerPanic{r})
					next.Store(int64(n)) // the others stop at their next item
				}
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(w, i)
			}
		}(w)
	}
	wg.Wait()
	if p := panicked.Load(); p != nil {
		panic(p.value)
	}
}

// workerPanic carries a worker's panic value to the caller.
type workerPanic struct{ value any }

// ParallelRows splits [0, n) into contiguous chunks of at least minChunk
// rows and calls fn(lo, hi) for each on at most threads goroutines. It
// suits cheap row-wise work (norms, activations) whose per-row result does
// not depend on the chunking.
func ParallelRows(threads, n, minChunk int, fn func(lo, hi int)) {
	if minChunk < 1 {
		minChunk = 1
	}
	chunks := (n + minChunk - 1) / minChunk
	if chunks > 4*threads {
		chunks = 4 * threads
	}
	if chunks <= 1 || threads <= 1 {
		if n > 0 {
			fn(0, n)
		}
		return
	}
	size := (n + chunks - 1) / chunks
	ParallelFor(threads, chunks, func(_, c int) {
		lo := c * size
		hi := min(lo+size, n)
		if lo < hi {
			fn(lo, hi)
		}
	})
}
