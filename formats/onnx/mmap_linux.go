//go:build linux

package onnx

import (
	"os"

	"golang.org/x/sys/unix"
)

// mmapFile maps the whole file read-only, or returns nil when it cannot
// (the caller then reads it). The mapping is never unmapped: the model's
// protobuf messages alias it, and callers may keep those (Proto, Graph)
// beyond the Model.
func mmapFile(f *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return b
}

// dropPages tells the kernel the whole pages inside b (a part of a file
// mapping) are not needed for now: they leave the resident set and are
// read again from the file when touched.
func dropPages(b []byte) {
	const page = 4096
	if len(b) < 2*page {
		return
	}
	p := uintptrOf(b)
	lo := (page - int(p%page)) % page
	hi := len(b) - int((p+uintptr(len(b)))%page)
	if hi-lo < page {
		return
	}
	_ = unix.Madvise(b[lo:hi], unix.MADV_DONTNEED)
}
