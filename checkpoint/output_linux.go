package checkpoint

import (
	"os"

	"golang.org/x/sys/unix"
)

// renameExchange swaps the directories a and b atomically
// (renameat2 RENAME_EXCHANGE).
func renameExchange(a, b string) error {
	return renameat2(a, b, unix.RENAME_EXCHANGE)
}

// renameNoReplace renames a to b, failing with EEXIST when b exists
// (renameat2 RENAME_NOREPLACE).
func renameNoReplace(a, b string) error {
	return renameat2(a, b, unix.RENAME_NOREPLACE)
}

func renameat2(a, b string, flags uint) error {
	err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, flags)
	switch err {
	case nil:
		return nil
	case unix.ENOSYS, unix.EINVAL, unix.EOPNOTSUPP:
		// An old kernel, or a file system without the flag.
		return errRenameUnsupported
	}
	return &os.LinkError{Op: "renameat2", Old: a, New: b, Err: err}
}
