//go:build linux

package mmap

import (
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// File maps the whole file read-only (shared), or returns nil when it
// cannot (the caller then reads it).
func File(f *os.File, size int64) []byte {
	if size <= 0 || int64(int(size)) != size {
		return nil
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(size), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil
	}
	return b
}

// Unmap releases a mapping File returned.
func Unmap(b []byte) error { return unix.Munmap(b) }

// DropPages tells the kernel that the whole pages inside b (a part of a
// file mapping) are not needed for now: they leave the resident set and
// are read again from the file when touched.
func DropPages(b []byte) {
	const page = 4096
	if len(b) < 2*page {
		return
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	lo := (page - int(p%page)) % page
	hi := len(b) - int((p+uintptr(len(b)))%page)
	if hi-lo < page {
		return
	}
	_ = unix.Madvise(b[lo:hi], unix.MADV_DONTNEED)
}
