package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// calibArgs are small calibrated pruning flags: 6 windows of 32 tokens
// sampled from the model, 2 threads.
var calibArgs = []string{"--sparsity", "0.5", "--calib-samples", "6", "--calib-len", "32", "--seed", "3", "--threads", "2"}

// procRun runs the binary with args and the environment additions env
// and returns its exit code, stdout and stderr.
func procRun(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, stdout.String(), stderr.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), stdout.String(), stderr.String()
	}
	t.Fatalf("%s %q: %v", bin, args, err)
	return 0, "", ""
}

// procMust is procRun that fails the test unless the run succeeds.
func procMust(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	code, out, errOut := procRun(t, bin, env, args...)
	if code != 0 {
		t.Fatalf("lmsparse %s: exit %d: %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

// calibShards runs shard i/n of "prune MODEL ARGS" as pod i of an Indexed
// Job would — its own process, JOB_COMPLETION_INDEX=i in the environment,
// "$(JOB_COMPLETION_INDEX)" expanded in the arguments as the kubelet does
// — last shard first, into dir/part-i.safetensors, and returns the parts'
// paths in reverse order.
func calibShards(t *testing.T, bin, model, dir string, n int, args ...string) []string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for i := n - 1; i >= 0; i-- {
		idx := fmt.Sprint(i)
		a := append([]string{"prune", model}, args...)
		a = append(a, "--shard", "$(JOB_COMPLETION_INDEX)/"+fmt.Sprint(n), "-o", filepath.Join(dir, "part-$(JOB_COMPLETION_INDEX).safetensors"))
		for k := range a {
			a[k] = strings.ReplaceAll(a[k], "$(JOB_COMPLETION_INDEX)", idx)
		}
		out := procMust(t, bin, []string{"JOB_COMPLETION_INDEX=" + idx}, a...)
		if want := fmt.Sprintf("part shard %d/%d: blocks ", i, n); !strings.Contains(out, want) {
			t.Fatalf("shard %d/%d printed %q", i, n, out)
		}
		parts = append(parts, filepath.Join(dir, fmt.Sprintf("part-%d.safetensors", i)))
	}
	return parts
}

// sameOutput checks that two output directories hold the same files,
// byte for byte.
func sameOutput(t *testing.T, name, a, b string) {
	t.Helper()
	ents, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	entsB, err := os.ReadDir(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != len(entsB) || len(ents) < 4 {
		t.Fatalf("%s: %d files vs %d", name, len(ents), len(entsB))
	}
	for _, e := range ents {
		x, err := os.ReadFile(filepath.Join(a, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		y, err := os.ReadFile(filepath.Join(b, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			t.Errorf("%s: %s differs from the one-machine run's", name, e.Name())
		}
	}
}

// TestCalibShardsMerge: prune --method sparsegpt split into n = 1, 2, 3, 5
// shards of stories260k's 5 blocks (5: one block each), and wanda into 3,
// each shard a separate process as in an Indexed Job, merge to exactly the
// files of one "prune --independent" run; merge-shards refuses, with exit
// 2 and a message naming the problem, every incomplete or mismatched set.
func TestCalibShardsMerge(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds lmsparse and runs the model")
	}
	s260 := sharedtest.Path(t, "models/stories260k")
	tmp := t.TempDir()
	bin := buildBinary(t, tmp)
	for _, c := range []struct {
		method string
		ns     []int
	}{{"sparsegpt", []int{1, 2, 3, 5}}, {"wanda", []int{3}}} {
		args := append([]string{"--method", c.method}, calibArgs...)
		one := filepath.Join(tmp, c.method+"-one")
		procMust(t, bin, nil, append(append([]string{"prune", s260, "-o", one, "--independent"}, args...), "--format", "csr")...)
		for _, n := range c.ns {
			dir := filepath.Join(tmp, fmt.Sprintf("%s-%d", c.method, n))
			parts := calibShards(t, bin, s260, dir, n, append(args, "--format", "csr")...)
			merged := filepath.Join(dir, "merged")
			procMust(t, bin, nil, append([]string{"merge-shards", "-o", merged}, parts...)...)
			sameOutput(t, fmt.Sprintf("%s, %d shards", c.method, n), merged, one)
		}
	}

	// Refusals, on the parts of 3 shards above and on new ones.
	args := append([]string{"--method", "sparsegpt", "--format", "csr"}, calibArgs...)
	three := []string{}
	for i := 2; i >= 0; i-- {
		three = append(three, filepath.Join(tmp, "sparsegpt-3", fmt.Sprintf("part-%d.safetensors", i)))
	}
	two := calibShards(t, bin, s260, filepath.Join(tmp, "sparsegpt-2"), 2, args...) // 1/2, 0/2
	if err := os.Mkdir(filepath.Join(tmp, "refuse"), 0o755); err != nil {
		t.Fatal(err)
	}
	part := func(name string, extra ...string) string {
		p := filepath.Join(tmp, "refuse", name+".safetensors")
		procMust(t, bin, nil, append(append([]string{"prune", s260}, args...), append(extra, "-o", p)...)...)
		return p
	}
	// A checkpoint that differs in one weight's last bits.
	other := filepath.Join(tmp, "other")
	procMust(t, bin, nil, "copy", s260, "-o", other)
	w := filepath.Join(other, "model.safetensors")
	data, err := os.ReadFile(w)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-4] ^= 1 // the low mantissa bit of the last F32 value
	if err := os.WriteFile(w, data, 0o644); err != nil {
		t.Fatal(err)
	}
	otherPart := filepath.Join(tmp, "refuse", "other.safetensors")
	procMust(t, bin, nil, append(append([]string{"prune", other}, args...), "--shard", "1/2", "-o", otherPart)...)
	text := filepath.Join(tmp, "notes.txt")
	os.WriteFile(text, []byte("not a part\n"), 0o644)

	for _, c := range []struct {
		name  string
		parts []string
		extra []string
		want  string
	}{
		{"missing shard", []string{three[0], three[2]}, nil, "missing shard(s) 1/3 (blocks 1:3)"},
		{"duplicated shard", []string{three[0], three[1], three[1], three[2]}, nil, "shard 1/3 given twice"},
		{"different counts", []string{two[0], three[1], three[2]}, nil, "overlap"},
		{"other checkpoint", []string{two[1], otherPart}, nil, "different checkpoints: file model.safetensors"},
		{"checkpoint changed", two, []string{"--model", other}, "is not the checkpoint the parts were pruned from"},
		{"other calibration", []string{two[1], part("seed", "--shard", "1/2", "--seed", "4")}, nil, "different calibration data: tokens_sha256"},
		{"other settings", []string{two[1], part("damp", "--shard", "1/2", "--damp", "0.02")}, nil, "different settings: damp: 0.01 vs 0.02"},
		{"other format", []string{three[0], three[1], part("dense", "--shard", "0/3", "--format", "dense")}, nil, "different settings: format: \"csr\" vs \"dense\""},
		{"not a part", []string{two[1], filepath.Join(s260, "model.safetensors")}, nil, "is not a calibration part"},
		{"not safetensors", []string{two[1], text}, nil, "notes.txt"},
		{"overlapping layers", []string{part("l03", "--layers", "0:3"), part("l25", "--layers", "2:5")}, nil, "overlap: both hold blocks 2:3"},
		{"missing layers", []string{part("l02", "--layers", "0:2"), part("l35", "--layers", "3:5")}, nil, "missing blocks 2:3"},
	} {
		out := filepath.Join(tmp, "refused-"+strings.ReplaceAll(c.name, " ", "-"))
		code, _, stderr := procRun(t, bin, nil, append(append([]string{"merge-shards", "-o", out}, c.extra...), c.parts...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("%s: exit %d, %q; want exit 2 and %q", c.name, code, stderr, c.want)
		} else {
			t.Logf("%s: %s", c.name, strings.TrimSpace(stderr))
		}
		if _, err := os.Stat(out); err == nil {
			t.Errorf("%s: %s was written", c.name, out)
		}
	}
	// Prune's own refusals of a split.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--method", "magnitude", "--sparsity", "0.5", "--shard", "0/2"}, "applies to --method wanda or sparsegpt"},
		{append(append([]string{}, args...), "--shard", "0/2", "--layers", "0:2"), "give one of"},
		{append(append([]string{}, args...), "--layers", "4:6"), "blocks 4:6"},
		{append(append([]string{}, args...), "--shard", "2/2"), "want I/N"},
	} {
		code, _, stderr := procRun(t, bin, nil, append([]string{"prune", s260, "-o", filepath.Join(tmp, "never")}, c.args...)...)
		if code != 2 || !strings.Contains(stderr, c.want) {
			t.Errorf("prune %q: exit %d, %q; want exit 2 and %q", c.args, code, stderr, c.want)
		}
	}
}
