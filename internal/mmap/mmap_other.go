//go:build !linux

package mmap

import "os"

// File returns nil: the caller reads the file.
func File(*os.File, int64) []byte { return nil }

// Unmap does nothing.
func Unmap([]byte) error { return nil }

// DropPages does nothing.
func DropPages([]byte) {}
