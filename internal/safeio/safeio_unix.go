//go:build unix

package safeio

import (
	"os"
	"syscall"
)

const oNonblock = syscall.O_NONBLOCK

var errLoop = syscall.ELOOP

func setBlocking(f *os.File) error {
	return syscall.SetNonblock(int(f.Fd()), false)
}
