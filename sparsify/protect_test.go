package sparsify

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/internal/mmap"
)

// TestProtect: a panic in a pipeline goroutine's work becomes an error
// naming it a bug, not the end of the process.
func TestProtect(t *testing.T) {
	var s []int
	_, err := protect(func() (int, error) { return s[3], nil })
	if err == nil || !strings.Contains(err.Error(), "internal error (a bug in lmsparse") || !strings.Contains(err.Error(), "index out of range") {
		t.Errorf("protect = %v", err)
	}
	if v, err := protect(func() (int, error) { return 7, nil }); v != 7 || err != nil {
		t.Errorf("protect without a panic = %d, %v", v, err)
	}
}

// TestReadMappedFault reads a mapping past the end of its file, truncated
// after it was mapped: readMapped turns the fault into an error naming
// the file; a panic that is not a fault goes on.
func TestReadMappedFault(t *testing.T) {
	path := filepath.Join(t.TempDir(), "model.safetensors")
	if err := os.WriteFile(path, make([]byte, 1<<16), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := mmap.File(f, 1<<16)
	if b == nil {
		t.Skip("cannot map files here")
	}
	defer mmap.Unmap(b)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	_, err = readMapped(path, func() (byte, error) { return b[1<<15], nil })
	if err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("reading a truncated mapping: err = %v", err)
	}
	defer func() {
		if r := recover(); r != "not a fault" {
			t.Errorf("recovered %v, want the panic to go on", r)
		}
	}()
	readMapped(path, func() (int, error) { panic("not a fault") })
}
