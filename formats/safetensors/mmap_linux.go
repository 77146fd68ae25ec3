//go:build linux

package safetensors

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// copyRange copies n bytes at offset off of src to the current offset of dst
// with copy_file_range. done is false when the kernel cannot do it for these
// files before anything was written, so the caller should copy itself.
func copyRange(dst, src *os.File, off, n int64) (done bool, err error) {
	pos := off
	for n > 0 {
		chunk := n
		if chunk > 1<<30 {
			chunk = 1 << 30
		}
		w, err := unix.CopyFileRange(int(src.Fd()), &pos, int(dst.Fd()), nil, int(chunk), 0)
		if err != nil {
			if pos == off {
				switch err {
				case unix.EXDEV, unix.ENOSYS, unix.EINVAL, unix.EOPNOTSUPP, unix.EBADF:
					return false, nil
				}
			}
			return true, err
		}
		if w == 0 {
			return true, fmt.Errorf("copying tensor bytes: %w", io.ErrUnexpectedEOF)
		}
		n -= int64(w)
	}
	return true, nil
}

// openDirect opens path for writing with O_DIRECT, or returns nil.
func openDirect(path string) *os.File {
	f, err := os.OpenFile(path, os.O_WRONLY|unix.O_DIRECT, 0)
	if err != nil {
		return nil
	}
	return f
}
