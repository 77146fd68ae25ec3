package sharedtest

import (
	"os"
	"path/filepath"
	"testing"
)

// Root returns the absolute path of ../shared relative to the module root
// (the directory holding go.mod above the working directory), or "" when
// it cannot be found.
func Root() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			p := filepath.Join(filepath.Dir(dir), "shared")
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				return p
			}
			return ""
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// Path returns the path of rel inside ../shared, skipping the test when the
// asset is absent (failing it under CI).
func Path(t testing.TB, rel string) string {
	t.Helper()
	root := Root()
	p := filepath.Join(root, rel)
	if root != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("test asset ../shared/%s is missing, and CI is set: the shared assets must be present in CI", rel)
	}
	t.Skipf("skipping: test asset ../shared/%s not found (run from a checkout beside ../shared)", rel)
	return ""
}
