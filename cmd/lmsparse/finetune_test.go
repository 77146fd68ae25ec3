package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
)

// TestFinetuneBadInput: impossible settings exit 2 with one line and
// write nothing.
func TestFinetuneBadInput(t *testing.T) {
	in := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := t.TempDir()
	out := filepath.Join(base, "out")
	short := filepath.Join(base, "short.txt")
	if err := os.WriteFile(short, []byte("Once upon a time"), 0o644); err != nil {
		t.Fatal(err)
	}
	ft := func(extra ...string) []string {
		return append([]string{"finetune", in, "-o", out, "--text", sample}, extra...)
	}
	tests := []struct {
		args []string
		want string
	}{
		{ft("--steps", "0"), "steps 0"},
		{ft("--lr", "-0.1"), "learning rate -0.1"},
		{ft("--batch", "0"), "batch 0"},
		{ft("--ctx", "513"), "longer than the model's 512 positions"},
		{[]string{"finetune", in, "-o", out, "--text", short, "--ctx", "64"}, "fewer than one window of 64"},
		{ft("--target-sparsity", "1"), "target sparsity 1"},
		{ft("--optimizer", "lion"), `optimizer "lion"`},
		{ft("--distill", "1.5"), "distillation weight 1.5"},
		{ft("--recover-steps", "5"), "need a target sparsity"},
		{[]string{"finetune", in, "-o", out}, "--text FILE or --calib self"},
		{ft("--calib", "self"), "--text FILE or --calib self"},
		{ft("--keep-mask", "--free-mask"), "exclude each other"},
	}
	for _, tt := range tests {
		code, stdout, stderr := run(t, tt.args...)
		if code != exitBadArgs || !strings.Contains(stderr, tt.want) || stdout != "" || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, stderr %q; want exit 2 and %q", tt.args[4:], code, stderr, tt.want)
		}
		if _, err := os.Stat(out); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%v: created %s", tt.args[4:], out)
		}
	}
}

// TestFinetuneJSON: --json prints one JSON line per step (the loss before
// the step's update) and then the manifest, which records the training.
func TestFinetuneJSON(t *testing.T) {
	in := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	out := filepath.Join(t.TempDir(), "out")
	code, stdout, stderr := run(t, "finetune", in, "-o", out, "--text", sample, "--optimizer", "sgd", "--lr", "0.02",
		"--steps", "3", "--batch", "2", "--ctx", "64", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(nil, 1<<24)
	var steps []map[string]any
	var man manifest.Manifest
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), `{"step"`) {
			var s map[string]any
			if err := json.Unmarshal(sc.Bytes(), &s); err != nil {
				t.Fatal(err)
			}
			steps = append(steps, s)
		} else if err := json.Unmarshal(sc.Bytes(), &man); err != nil {
			t.Fatalf("%v: %q", err, sc.Text())
		}
	}
	if len(steps) != 3 || man.Training == nil || len(man.Training.Loss) != 3 || man.Command != "finetune" {
		t.Fatalf("%d step lines, manifest training %+v", len(steps), man.Training)
	}
	if l := steps[0]["loss"].(float64); l < 1.2486 || l > 1.2487 {
		t.Errorf("first loss %v, want 1.24864 (the reference trainer's)", l)
	}
	if _, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil {
		t.Error(err)
	}
}

// TestFinetuneInterrupted: cancelling a run (as SIGINT does) leaves
// nothing at OUT or beside it.
func TestFinetuneInterrupted(t *testing.T) {
	in := sharedtest.Path(t, "models/stories260k")
	sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
	base := t.TempDir()
	out := filepath.Join(base, "out")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(500*time.Millisecond, cancel)
	var so, se strings.Builder
	code := Main(ctx, []string{"finetune", in, "-o", out, "--text", sample, "--steps", "100000", "--ctx", "64"}, &so, &se)
	if code != exitFailure || !strings.Contains(se.String(), "lmsparse: interrupted by a signal") {
		t.Fatalf("exit %d, stderr %q", code, se.String())
	}
	if ents, _ := os.ReadDir(base); len(ents) != 0 {
		t.Errorf("an interrupted run left %d entries", len(ents))
	}
}
