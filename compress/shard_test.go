package compress_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/report"
)

var (
	demoModel   = filepath.Join("..", "testdata", "demo", "model")
	demoHeldout = filepath.Join("..", "testdata", "demo", "heldout.txt")
	// reportTimings matches the lines of report.json that differ between
	// two runs of one recipe.
	reportTimings = regexp.MustCompile(`(?m)^ *"(seconds|peak_rss_bytes)": .*\n`)
)

// demoSweep is a recipe with a sweep of 2 points (3 work units) and a gate
// on the demo model.
func demoSweep(t *testing.T) *compress.Recipe {
	t.Helper()
	r, err := compress.ParseRecipe("sweep.yaml", []byte(fmt.Sprintf(`version: 1
prune: {sparsity: 0.5}
eval: {text: %s, ctx: 128, max_tokens: 1500}
gates: {max_ppl_ratio: 1.04}
sweep: [0.3, 0.6]
`, demoHeldout)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestRunShardMerges: the library's sharded sweep — a plan per shard
// (n = 2 and 4: with 3 units, shard 0 of 4 is empty and shard 1 holds the
// main pass), RunShard, Merge of the partials in reverse order — gives the
// report of Run, byte for byte apart from the timings; partials read back
// with ReadPartial merge the same.
func TestRunShardMerges(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	plan, err := compress.NewPlan(ctx, demoModel, out, demoSweep(t), compress.Options{Threads: 1})
	if err != nil {
		t.Fatal(err)
	}
	want, err := plan.Run(ctx)
	plan.Close()
	if err != nil {
		t.Fatal(err)
	}
	wantJSON, _ := want.JSON()
	if want.Best == nil || len(want.Sweep) != 2 {
		t.Fatalf("one run: best %v, %d points", want.Best, len(want.Sweep))
	}
	os.Rename(out, filepath.Join(dir, "one"))
	for _, n := range []int{2, 4} {
		parts := make([]*compress.Partial, n)
		paths := make([]string, n)
		for i := range n {
			plan, err := compress.NewPlan(ctx, demoModel, out, demoSweep(t), compress.Options{Threads: 1, Shard: model.Shard{I: i, N: n}})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := plan.Run(ctx); err == nil || !strings.Contains(err.Error(), "RunShard") {
				t.Errorf("Run of a shard's plan: %v", err)
			}
			paths[n-1-i] = filepath.Join(dir, fmt.Sprintf("part-%d-%d.json", n, i))
			if parts[n-1-i], err = plan.RunShard(ctx, paths[n-1-i]); err != nil {
				t.Fatal(err)
			}
			plan.Close()
		}
		for _, merge := range []func() (*report.Report, error){
			func() (*report.Report, error) { return compress.Merge(parts, nil) },
			func() (*report.Report, error) { return compress.MergeFiles(paths) },
		} {
			rep, err := merge()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := rep.JSON()
			if a, b := reportTimings.ReplaceAllString(string(got), ""), reportTimings.ReplaceAllString(string(wantJSON), ""); a != b {
				t.Errorf("%d shards: merged report differs from Run's:\n%.2000s\nvs\n%.2000s", n, a, b)
			}
		}
		if st, err := os.Stat(filepath.Join(out, "model.safetensors")); err != nil || st.Size() == 0 {
			t.Errorf("%d shards: the shard with the main pass wrote no checkpoint: %v", n, err)
		}
		os.RemoveAll(out)
	}

	// Refusals: no shard to split, nothing to merge.
	r := demoSweep(t)
	r.Sweep = nil
	if _, err := compress.NewPlan(ctx, demoModel, out, r, compress.Options{Shard: model.Shard{I: 0, N: 2}}); !errors.Is(err, compress.ErrInvalid) {
		t.Errorf("a shard without a sweep: %v", err)
	}
	if _, err := compress.Merge(nil, nil); !errors.Is(err, compress.ErrPartial) || !errors.Is(err, compress.ErrInvalid) {
		t.Errorf("Merge of nothing: %v", err)
	}
	plan, err = compress.NewPlan(ctx, demoModel, out, demoSweep(t), compress.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer plan.Close()
	if _, err := plan.RunShard(ctx, filepath.Join(dir, "x.json")); err == nil {
		t.Error("RunShard of a plan without Options.Shard ran")
	}
}
