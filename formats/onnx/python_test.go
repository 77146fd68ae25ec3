package onnx

import (
	"fmt"
	"os/exec"
)

// pyExec runs a Python script, returning its output in the error.
func pyExec(py, script string) error {
	out, err := exec.Command(py, "-c", script).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%w: %s", err, out)
	}
	return nil
}
