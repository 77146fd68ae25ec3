// Package mmap maps input files read-only where the platform allows it
// (Linux), for the readers of package formats: a reader that gets nil
// reads the file instead.
package mmap
