//go:build !linux

package checkpoint

func renameExchange(a, b string) error  { return errRenameUnsupported }
func renameNoReplace(a, b string) error { return errRenameUnsupported }
