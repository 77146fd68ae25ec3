package checkpoint

import (
	"os"
	"path/filepath"
	"strings"
)

// ONNXPath returns the ONNX model a path names: the path itself when it is
// a .onnx file, or the one .onnx file of a directory that holds no
// safetensors checkpoint. ok is false for anything else.
func ONNXPath(path string) (file string, ok bool) {
	st, err := os.Stat(path)
	if err != nil {
		return "", false
	}
	if !st.IsDir() {
		return path, strings.HasSuffix(strings.ToLower(path), ".onnx")
	}
	for _, f := range []string{SingleFile, IndexFile} {
		if _, err := os.Stat(filepath.Join(path, f)); err == nil {
			return "", false
		}
	}
	found, _ := filepath.Glob(filepath.Join(path, "*.onnx"))
	if len(found) == 1 {
		return found[0], true
	}
	return "", false
}

// InputDir returns the directory holding a model's files: the directory
// of an ONNX model or of a single .safetensors file, else path itself.
func InputDir(path string) string {
	if file, ok := ONNXPath(path); ok {
		return filepath.Dir(file)
	}
	if st, err := os.Stat(path); err == nil && !st.IsDir() {
		return filepath.Dir(path)
	}
	return path
}
