package sparsify

import (
	"strings"
	"testing"
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
