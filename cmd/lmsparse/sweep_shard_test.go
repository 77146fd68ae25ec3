package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// reportTimings matches what differs between two runs of one compress in
// its reports: the stages' seconds and the peak RSS in report.json, and
// the line of report.md and report.html that lists them.
var reportTimings = regexp.MustCompile(`(?m)^ *"(seconds|peak_rss_bytes)": .*\n|^<sub>.*</sub>\n|^<p class="muted">.*</p>\n`)

// outputFiles returns every file of the directory dir by name, the
// reports with their timings cut out.
func outputFiles(t *testing.T, dir string) map[string]string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = string(b)
		if strings.HasPrefix(e.Name(), "report.") {
			if out[e.Name()] = reportTimings.ReplaceAllString(string(b), ""); out[e.Name()] == string(b) {
				t.Fatalf("%s: no timings found to cut out", e.Name())
			}
		}
	}
	return out
}

// runBinary runs the built lmsparse with the environment additions env and
// returns its exit code and output.
func runBinary(t *testing.T, bin string, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("lmsparse %q: %v", args, err)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// TestShardedSweepMerges: compress with a sweep split into n = 1, 2, 3, 5
// shards — each a separate process of the built binary, all of one n at
// once on one OUT, with JOB_COMPLETION_INDEX set and $(JOB_COMPLETION_INDEX)
// in --shard and --partial expanded, as the pods of an Indexed Job run —
// and merged by report --merge (the parts given in reverse order) writes
// the one-machine run's output: the checkpoint and lmsparse.json byte for
// byte, report.json, report.md and report.html byte for byte apart from
// the timings, the same headline and exit code. Two runs on the demo
// model: magnitude 50% with a sweep of 3 sparsities × magnitude and wanda
// (7 work units) and a passing gate; and magnitude 60% with a sweep of one
// point (2 units, so 3 and 5 shards include empty ones) and a failing
// gate (exit 3).
func TestShardedSweepMerges(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: builds lmsparse and runs 24 compress processes")
	}
	dir := t.TempDir()
	bin := buildBinary(t, dir)
	common := []string{demoModel, "--text", demoHeldout, "--max-tokens", "2000", "--ctx", "128", "--threads", "1", "--quiet"}
	cases := []struct {
		name string
		args []string
		code int
	}{
		{"3 sparsities × 2 methods", []string{"--sparsity", "0.5", "--sweep", "0.3,0.5,0.7", "--sweep-methods", "magnitude,wanda",
			"--calib-samples", "4", "--calib-len", "64", "--max-ppl-ratio", "1.1"}, 0},
		{"1 point, gate failing", []string{"--sparsity", "0.6", "--sweep", "0.4", "--max-kl", "0.01"}, exitGate},
	}
	for ci, c := range cases {
		out := filepath.Join(dir, fmt.Sprintf("out-%d", ci))
		one := filepath.Join(dir, fmt.Sprintf("one-%d", ci))
		args := append(append([]string{"compress"}, common...), c.args...)
		code, headline, errOut := runBinary(t, bin, nil, append(args, "-o", out)...)
		if code != c.code {
			t.Fatalf("%s: one machine: exit %d, want %d: %s", c.name, code, c.code, errOut)
		}
		if err := os.Rename(out, one); err != nil {
			t.Fatal(err)
		}
		want := outputFiles(t, one)
		for _, n := range []int{1, 2, 3, 5} {
			parts := filepath.Join(dir, fmt.Sprintf("parts-%d-%d", ci, n))
			os.MkdirAll(parts, 0o755)
			pod := append(args, "-o", out, "--shard", "$(JOB_COMPLETION_INDEX)/"+strconv.Itoa(n),
				"--partial", filepath.Join(parts, "part-$(JOB_COMPLETION_INDEX).json"))
			var wg sync.WaitGroup
			var merge []string
			for i := n - 1; i >= 0; i-- {
				idx := strconv.Itoa(i)
				merge = append(merge, filepath.Join(parts, "part-"+idx+".json"))
				wg.Go(func() {
					args := make([]string, len(pod))
					for k, a := range pod {
						args[k] = strings.ReplaceAll(a, "$(JOB_COMPLETION_INDEX)", idx)
					}
					if code, stdout, stderr := runBinary(t, bin, []string{"JOB_COMPLETION_INDEX=" + idx}, args...); code != 0 ||
						!strings.HasPrefix(stdout, "shard "+idx+"/"+strconv.Itoa(n)+": units [") {
						t.Errorf("%s: shard %s/%d: exit %d: %s%s", c.name, idx, n, code, stdout, stderr)
					}
				})
			}
			wg.Wait()
			if t.Failed() {
				t.FailNow()
			}
			code, merged, errOut := runBinary(t, bin, nil, append([]string{"report", "--merge"}, append(merge, "-o", out)...)...)
			if code != c.code || merged != headline {
				t.Errorf("%s, %d shards: merge: exit %d (want %d), headline\n%s\nwant\n%s%s", c.name, n, code, c.code, merged, headline, errOut)
			}
			got := outputFiles(t, out)
			for name, w := range want {
				if got[name] != w {
					t.Errorf("%s, %d shards: %s differs from the one-machine run's:\n%.3000s\nvs\n%.3000s", c.name, n, name, got[name], w)
				}
			}
			if len(got) != len(want) {
				t.Errorf("%s, %d shards: files %d, one machine %d", c.name, n, len(got), len(want))
			}
			for _, e := range mustReadDir(t, dir) {
				if strings.Contains(e, ".lmsparse-") {
					t.Errorf("%s, %d shards: %s left behind", c.name, n, e)
				}
			}
			os.RemoveAll(out)
		}
	}
}

func mustReadDir(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestSweepMergeRefuses: report --merge refuses, with exit 2 and a message
// naming the shard, the file or the field, a missing shard, a duplicated
// one, parts of another model (path, or bytes at the same path), of
// another text (bytes at the same path), with other settings or another
// shard count or build, files that are no sweep partial; and compress
// refuses --shard without --partial, a bad I/N, and a run with nothing to
// split.
func TestSweepMergeRefuses(t *testing.T) {
	dir := t.TempDir()
	// A text and a model that are changed between the shards of one run.
	text := filepath.Join(dir, "text.txt")
	data, err := os.ReadFile(demoHeldout)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(text, data[:12000], 0o644)
	model := filepath.Join(dir, "model")
	mustRun(t, "copy", demoModel, "-o", model)
	args := func(m, out string, extra ...string) []string {
		return append([]string{"compress", m, "-o", filepath.Join(dir, out), "--text", text, "--max-tokens", "1000", "--ctx", "64",
			"--sparsity", "0.5", "--sweep", "0.3,0.5", "--quiet"}, extra...)
	}
	shard := func(name string, n, i int, a []string) string {
		part := filepath.Join(dir, name+".json")
		mustRun(t, append(a, "--shard", fmt.Sprintf("%d/%d", i, n), "--partial", part)...)
		return part
	}
	var p3, p2 [3]string
	for i := range 3 {
		p3[i] = shard(fmt.Sprintf("p3-%d", i), 3, i, args(model, "o3"))
	}
	for i := range 2 {
		p2[i] = shard(fmt.Sprintf("p2-%d", i), 2, i, args(model, "o2"))
	}
	setting := shard("max-tokens", 2, 1, append(args(model, "o2"), "--max-tokens", "900"))
	otherPath := shard("other-path", 2, 1, args(demoModel, "o2"))
	// The same paths with other bytes: only the sha256 tells.
	os.WriteFile(text, append(data[:11999], 'X'), 0o644)
	otherText := shard("other-text", 2, 1, args(model, "o2"))
	os.WriteFile(text, data[:12000], 0o644)
	pruned := filepath.Join(dir, "pruned")
	mustRun(t, "prune", demoModel, "-o", pruned, "--sparsity", "0.1")
	w, _ := os.ReadFile(filepath.Join(pruned, "model.safetensors"))
	os.WriteFile(filepath.Join(model, "model.safetensors"), w, 0o644)
	otherModel := shard("other-model", 2, 1, args(model, "o2"))
	// The parts of one run merge into its OUT, which the shard with the
	// main pass wrote.
	if code, out, errOut := run(t, "report", "--merge", p2[1], p2[0], "-o", filepath.Join(dir, "o2")); code != 0 || !strings.Contains(out, "perplexity") {
		t.Fatalf("report --merge: exit %d: %s%s", code, out, errOut)
	}
	// Files that are no partial of this run.
	evalPart := filepath.Join(dir, "eval-part.json")
	mustRun(t, "eval", demoModel, "--text", demoHeldout, "--max-tokens", "300", "--shard", "0/2", "--partial", evalPart)
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	edit := func(name, old, new string) string {
		b, err := os.ReadFile(p2[1])
		if err != nil || !strings.Contains(string(b), old) {
			t.Fatalf("%s: %v, or no %q", p2[1], err, old)
		}
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
		return path
	}
	tool := edit("tool.json", `"tool":"lmsparse `, `"tool":"lmsparse other `)
	point := edit("point.json", `"points":[{"sparsity":0.3`, `"points":[{"sparsity":0.4`)
	unknown := edit("unknown.json", `"shard":1,`, `"shard":1,"extra":1,`)
	for _, c := range []struct {
		parts []string
		want  []string
	}{
		{[]string{p3[0], p3[2]}, []string{"missing shard(s) 1/3"}},
		{[]string{p3[0], p3[1], p3[1], p3[2]}, []string{"shard 1/3 given twice", p3[1]}},
		{[]string{p2[0], p3[1], p3[2]}, []string{"not shards of one run", `shards "2" vs "3"`}},
		{[]string{p2[0], setting}, []string{"not shards of one run", `recipe.eval.max_tokens "1000" vs "900"`}},
		{[]string{p2[0], otherPath}, []string{"not shards of one run", "model ", demoModel}},
		{[]string{p2[0], otherText}, []string{"not shards of one run", "text 1", text}},
		{[]string{p2[0], otherModel}, []string{"not shards of one run", "model file model.safetensors"}},
		{[]string{p2[0], tool}, []string{"not shards of one run", "tool"}},
		{[]string{p2[0], point}, []string{point, "point 0 is sparsity 0.4"}},
		{[]string{p2[0], unknown}, []string{unknown, "extra"}},
		{[]string{p2[0], evalPart}, []string{evalPart, "is not a sweep partial file", "lmsparse.eval-partial/v1"}},
		{[]string{p2[0], filepath.Join(dir, "o2", "report.json")}, []string{"report.json", "not a sweep partial file"}},
		{[]string{p2[0], fifo}, []string{fifo, "not a regular file"}},
		{[]string{p2[0], dir}, []string{dir}},
	} {
		code, _, errOut := run(t, append([]string{"report", "--merge", "-o", filepath.Join(dir, "merged")}, c.parts...)...)
		t.Log(strings.TrimSpace(errOut))
		if code != exitBadArgs {
			t.Errorf("report --merge %v: exit %d, want 2: %s", c.parts, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("report --merge %v: %q does not say %q", c.parts, errOut, w)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "merged")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused merge wrote its output directory: %v", err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"report", "--merge", p2[0], p2[1]}, "-o OUT"},
		{[]string{"report", "--merge", "-o", dir}, "partial files"},
		{[]string{"report", dir, "-o", dir}, "--merge"},
		{append(args(model, "x"), "--shard", "0/2"), "--partial"},
		{append(args(model, "x"), "--partial", filepath.Join(dir, "x.json")), "--shard"},
		{append(args(model, "x"), "--shard", "2/2", "--partial", filepath.Join(dir, "x.json")), "--shard"},
		{append(args(model, "x"), "--shard", "0/2", "--partial", filepath.Join(dir, "no-such-dir", "x.json")), "--partial"},
		{[]string{"compress", model, "-o", filepath.Join(dir, "x"), "--text", text, "--sparsity", "0.5", "--shard", "0/2", "--partial", filepath.Join(dir, "x.json")}, "splits a sweep"},
		{[]string{"compress", model, "-o", filepath.Join(dir, "x"), "--text", text, "--max-ppl-ratio", "2", "--find-sparsity", "--shard", "0/2", "--partial", filepath.Join(dir, "x.json")}, "find-sparsity"},
	} {
		code, _, errOut := run(t, c.args...)
		if code != exitBadArgs || !strings.Contains(errOut, c.want) {
			t.Errorf("%v: exit %d, want 2 and a message naming %q: %s", c.args, code, c.want, errOut)
		}
	}
}
