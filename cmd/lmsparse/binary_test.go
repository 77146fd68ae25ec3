package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// buildBinary builds this command into dir/lmsparse with the environment
// additions env and returns its path.
func buildBinary(t *testing.T, dir string, env ...string) string {
	t.Helper()
	bin := filepath.Join(dir, "lmsparse")
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	build := exec.Command(goTool, "build", "-o", bin, ".")
	build.Env = append(os.Environ(), env...)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// bigCheckpoint writes dir/model, a generated llama of 7 layers of hidden
// size 512 in F32: 110 MB in one file, long enough to write that a kill
// lands inside the write.
func bigCheckpoint(t *testing.T, dir string) string {
	t.Helper()
	spec := gen.Llama(tensor.F32, 1)
	spec.Hidden, spec.Inter, spec.Layers = 512, 2048, 7
	model := filepath.Join(dir, "model")
	if err := gen.WriteCheckpoint(model, spec); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(filepath.Join(model, "model.safetensors")); err != nil || st.Size() < 100<<20 {
		t.Fatalf("generated checkpoint: %v", err)
	}
	return model
}

// killSeed returns the seed of a kill test's random moments: the
// environment's LMSPARSE_KILL_SEED (to replay a run) or the clock; it is
// logged.
func killSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("LMSPARSE_KILL_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("LMSPARSE_KILL_SEED=%d", seed)
	return seed
}
