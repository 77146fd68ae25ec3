//go:build !linux

package checkpoint

func renameExchange(a, b string) error  { return errRenameUnsupported }
func renameNoReplace(a, b string) error { return errRenameUnsupported }

// mountPoint reports whether the directory path is a mount point (here:
// on another device than its parent).
func mountPoint(path string) bool { return otherDevice(path) }
