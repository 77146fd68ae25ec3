package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
)

// timing matches the lines of an eval JSON report that hold timings.
var timing = regexp.MustCompile(`(?m)^  "(seconds|tokens_per_second)": .*\n`)

// shardedEval runs "eval ARGS --shard i/n --partial" for every shard (last
// shard first) and merges the parts (given in reverse order); it returns
// the merged JSON and the parts' paths.
func shardedEval(t *testing.T, n int, args ...string) (string, []string) {
	t.Helper()
	dir := t.TempDir()
	parts := make([]string, n)
	for i := n - 1; i >= 0; i-- {
		parts[i] = filepath.Join(dir, fmt.Sprintf("part-%d.json", i))
		out := mustRun(t, append(append([]string{"eval"}, args...), "--shard", fmt.Sprintf("%d/%d", i, n), "--partial", parts[i])...)
		if !strings.HasPrefix(out, fmt.Sprintf("shard %d/%d: windows [", i, n)) {
			t.Fatalf("shard %d/%d printed %q", i, n, out)
		}
	}
	rev := make([]string, n)
	for i, p := range parts {
		rev[n-1-i] = p
	}
	return mustRun(t, append([]string{"merge-eval", "--json"}, rev...)...), parts
}

// sameReport checks that a merged report equals the one-machine report:
// every float with ==, and the JSON bytes apart from the timing lines.
func sameReport(t *testing.T, name, merged, single string) {
	t.Helper()
	var a, b eval.Report
	if err := json.Unmarshal([]byte(merged), &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(single), &b); err != nil {
		t.Fatal(err)
	}
	if a.PPL != b.PPL || a.MeanNLL != b.MeanNLL || a.Scored != b.Scored || a.Windows != b.Windows ||
		(a.BitsPerByte == nil) != (b.BitsPerByte == nil) || a.BitsPerByte != nil && *a.BitsPerByte != *b.BitsPerByte ||
		(a.KL == nil) != (b.KL == nil) || a.KL != nil && *a.KL != *b.KL {
		t.Errorf("%s: merged ppl %v nll %v kl %+v, one run ppl %v nll %v kl %+v", name, a.PPL, a.MeanNLL, a.KL, b.PPL, b.MeanNLL, b.KL)
	}
	if m, s := timing.ReplaceAllString(merged, ""), timing.ReplaceAllString(single, ""); m != s || m == merged {
		t.Errorf("%s: merged JSON without timings differs from one run's:\n%s\nvs\n%s", name, m, s)
	}
}

// TestShardedEvalMerges: eval split into n = 1, 2, 3, 5, 7 shards merges to
// the one-machine report, bit for bit, on the demo model and, with --base,
// on a pruned stories260k against the original (4 windows of 512 tokens,
// so 7 shards include empty ones, and 59 windows of 64 every 32).
func TestShardedEvalMerges(t *testing.T) {
	cases := []struct {
		name string
		args []string
	}{{"demo", []string{demoModel, "--text", demoHeldout}}}
	if testing.Short() {
		t.Log("-short: demo model only")
	} else {
		s260 := sharedtest.Path(t, "models/stories260k")
		sample := sharedtest.Path(t, "text/tinystories/tinystories_sample.txt")
		pruned := filepath.Join(t.TempDir(), "s260k-30")
		mustRun(t, "prune", s260, "-o", pruned, "--sparsity", "0.3")
		cases = append(cases,
			struct {
				name string
				args []string
			}{"stories260k --base", []string{pruned, "--base", s260, "--text", sample}},
			struct {
				name string
				args []string
			}{"stories260k --base ctx 64/32", []string{pruned, "--base", s260, "--text", sample, "--ctx", "64", "--stride", "32", "--threads", "1"}})
	}
	for _, c := range cases {
		single := mustRun(t, append(append([]string{"eval"}, c.args...), "--json")...)
		for _, n := range []int{1, 2, 3, 5, 7} {
			merged, _ := shardedEval(t, n, c.args...)
			sameReport(t, fmt.Sprintf("%s, %d shards", c.name, n), merged, single)
		}
	}
}

// TestMergeEvalRefuses: merge-eval refuses, with exit 2 and a message naming
// the shard or the field, a missing shard, a duplicated one, parts of
// another model, text, settings or shard count, and a file that is no part.
func TestMergeEvalRefuses(t *testing.T) {
	_, p3 := shardedEval(t, 3, demoModel, "--text", demoHeldout, "--max-tokens", "3000")
	_, ctx := shardedEval(t, 2, demoModel, "--text", demoHeldout, "--max-tokens", "3000", "--ctx", "128")
	_, p2 := shardedEval(t, 2, demoModel, "--text", demoHeldout, "--max-tokens", "3000")
	dir := t.TempDir()
	// The same text path with other bytes: only the sha256 tells.
	text := filepath.Join(dir, "text.txt")
	data, _ := os.ReadFile(demoHeldout)
	os.WriteFile(text, data[:20000], 0o644)
	a := filepath.Join(dir, "a.json")
	mustRun(t, "eval", demoModel, "--text", text, "--shard", "0/2", "--partial", a)
	os.WriteFile(text, append(data[:19999], 'X'), 0o644)
	b := filepath.Join(dir, "b.json")
	mustRun(t, "eval", demoModel, "--text", text, "--shard", "1/2", "--partial", b)
	// Another model: the demo model copied elsewhere (another path).
	other := filepath.Join(dir, "model")
	mustRun(t, "copy", demoModel, "-o", other)
	om := filepath.Join(dir, "other-model.json")
	mustRun(t, "eval", other, "--text", demoHeldout, "--max-tokens", "3000", "--shard", "1/2", "--partial", om)
	// The same model path with other bytes (config.json rewritten between
	// the shards): only the model's hashes tell.
	ob0, ob1 := filepath.Join(dir, "ob-0.json"), filepath.Join(dir, "ob-1.json")
	mustRun(t, "eval", other, "--text", demoHeldout, "--max-tokens", "3000", "--shard", "0/2", "--partial", ob0)
	cfg, _ := os.ReadFile(filepath.Join(other, "config.json"))
	os.WriteFile(filepath.Join(other, "config.json"), append(cfg, '\n'), 0o644)
	mustRun(t, "eval", other, "--text", demoHeldout, "--max-tokens", "3000", "--shard", "1/2", "--partial", ob1)
	report := filepath.Join(dir, "report.json")
	os.WriteFile(report, []byte(mustRun(t, "eval", demoModel, "--text", demoHeldout, "--max-tokens", "300", "--json")), 0o644)
	// Edited parts: another build, and sums that do not fit the windows.
	edit := func(name, old, new string) string {
		b, err := os.ReadFile(p2[1])
		if err != nil || !strings.Contains(string(b), old) {
			t.Fatalf("%s: %v, or no %q", p2[1], err, old)
		}
		path := filepath.Join(dir, name)
		os.WriteFile(path, []byte(strings.Replace(string(b), old, new, 1)), 0o644)
		return path
	}
	fifo := filepath.Join(dir, "fifo.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	tool := edit("tool.json", `"tool":"lmsparse `, `"tool":"lmsparse other `)
	short := edit("short.json", `"sums":[{`, `"sums":[{"scored":1,"nll":1},{`)
	huge := edit("huge.json", `"shards":2`, `"shards":1000000000000`) // merge must not count to it
	for _, c := range []struct {
		parts []string
		want  []string
	}{
		{[]string{p2[0], tool}, []string{"not shards of one run", "tool"}},
		{[]string{p2[0], fifo}, []string{fifo, "not a regular file"}},
		{[]string{p2[0], dir}, []string{dir}},
		{[]string{p2[0], short}, []string{short, "holds windows"}},
		{[]string{p2[0], huge}, []string{huge, "n ≤ 10000"}},
		{[]string{p3[0], p3[2]}, []string{"missing shard(s) 1/3"}},
		{[]string{p3[0], p3[1], p3[1], p3[2]}, []string{"shard 1/3 given twice", p3[1]}},
		{[]string{p2[0], ctx[1]}, []string{"not shards of one run", `ctx "256" vs "128"`}},
		{[]string{a, b}, []string{"not shards of one run", "text_sha256"}},
		{[]string{p2[0], om}, []string{"not shards of one run", "model"}},
		{[]string{ob0, ob1}, []string{"not shards of one run", "model_files", "config.json"}},
		{[]string{p2[0], p3[1], p3[2]}, []string{"not shards of one run", "shards"}},
		{[]string{p2[0], report}, []string{report, "not an eval partial file"}},
		{nil, []string{"want the partial files"}},
	} {
		code, _, errOut := run(t, append([]string{"merge-eval"}, c.parts...)...)
		t.Log(strings.TrimSpace(errOut))
		if code != exitBadArgs {
			t.Errorf("merge-eval %v: exit %d, want 2: %s", c.parts, code, errOut)
		}
		for _, w := range c.want {
			if !strings.Contains(errOut, w) {
				t.Errorf("merge-eval %v: %q does not say %q", c.parts, errOut, w)
			}
		}
	}
	for _, args := range [][]string{{"--shard", "3/3", "--partial", a}, {"--shard", "1/0", "--partial", a},
		{"--shard", "-1/2", "--partial", a}, {"--shard", "a/b", "--partial", a}, {"--shard", "01/2", "--partial", a},
		{"--shard", "0/2"}, {"--partial", a}, {"--shard", "0/2", "--partial", a, "--json"},
		{"--shard", "0/2", "--partial", filepath.Join(dir, "no-such-dir", "part.json")}} {
		code, _, errOut := run(t, append([]string{"eval", demoModel, "--text", demoHeldout}, args...)...)
		if code != exitBadArgs || !strings.Contains(errOut, "--shard") && !strings.Contains(errOut, "--partial") {
			t.Errorf("eval %v: exit %d, want 2 and a message naming --shard or --partial: %s", args, code, errOut)
		}
	}
}
