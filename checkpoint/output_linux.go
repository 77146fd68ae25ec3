package checkpoint

import (
	"os"
	"path/filepath"

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

// mountPoint reports whether the directory path is a mount point: statx's
// STATX_ATTR_MOUNT_ROOT (Linux 5.8), else a mount id or device other than
// its parent's. Bind mounts of a directory of the same file system are
// only detected with statx.
func mountPoint(path string) bool {
	var st unix.Statx_t
	if unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_MNT_ID, &st) != nil {
		return otherDevice(path)
	}
	if st.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		return st.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	var pst unix.Statx_t
	if st.Mask&unix.STATX_MNT_ID != 0 &&
		unix.Statx(unix.AT_FDCWD, filepath.Dir(path), 0, unix.STATX_MNT_ID, &pst) == nil && pst.Mask&unix.STATX_MNT_ID != 0 {
		return st.Mnt_id != pst.Mnt_id
	}
	return otherDevice(path)
}
