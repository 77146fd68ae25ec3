package sparsify_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/sharedtest"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/sparsify"
)

// splitOpts are small calibrated options on stories260k: 6 windows of 32
// tokens sampled from the model (seed 7).
func splitOpts(alg sparsify.Algorithm) sparsify.Options {
	return sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}, Algorithm: alg,
		Calib: sparsify.Calibration{Samples: 6, Len: 32, Seed: 7}, Threads: 2}
}

// pruneTo prunes model with opts into a new directory and returns it.
func pruneTo(t *testing.T, model string, opts sparsify.Options) string {
	t.Helper()
	ctx := context.Background()
	job, err := sparsify.Plan(ctx, model, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	return commitJob(t, job)
}

// commitJob executes job into a new directory and returns it.
func commitJob(t *testing.T, job *sparsify.Job) string {
	t.Helper()
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "out")
	out, err := checkpoint.Create(dir, checkpoint.OutputOptions{InputDir: job.InputDir()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Execute(ctx, out); err != nil {
		out.Abort()
		t.Fatal(err)
	}
	if err := out.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeParts prunes model in n shards (or the given ranges) into part
// files and returns their paths.
func writeParts(t *testing.T, model string, opts sparsify.Options, ranges []sparsify.BlockRange) []string {
	t.Helper()
	dir := t.TempDir()
	var paths []string
	for i, r := range ranges {
		o := opts
		o.Range = &r
		job, err := sparsify.Plan(context.Background(), model, o)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, fmt.Sprintf("part-%d.safetensors", i))
		p, err := job.ExecutePart(context.Background(), path)
		job.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Log(p)
		paths = append(paths, path)
	}
	return paths
}

// merge merges the parts into a new directory and returns it.
func merge(t *testing.T, parts []string) string {
	t.Helper()
	job, err := sparsify.PlanMerge(context.Background(), parts, "")
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	return commitJob(t, job)
}

// sameDirs checks that two output directories hold the same files, byte
// for byte.
func sameDirs(t *testing.T, a, b string) {
	t.Helper()
	ents, err := os.ReadDir(a)
	if err != nil {
		t.Fatal(err)
	}
	entsB, _ := os.ReadDir(b)
	if len(ents) != len(entsB) || len(ents) < 3 {
		t.Fatalf("%s has %d files, %s %d", a, len(ents), b, len(entsB))
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
			t.Errorf("%s differs between %s and %s", e.Name(), a, b)
		}
	}
}

// TestIndependentPipeline: on stories260k with SparseGPT, the independent
// pipeline prunes block 0 as the sequential one does (same inputs: the
// embeddings) and every later block otherwise (dense inputs, not pruned
// ones); the manifest records the pipeline. One part of blocks 0:5
// merges to the one-machine independent output, byte for byte.
func TestIndependentPipeline(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	seqOpts, indOpts := splitOpts(sparsify.SparseGPT), splitOpts(sparsify.SparseGPT)
	indOpts.Pipeline = sparsify.Independent
	seq, ind := pruneTo(t, s260, seqOpts), pruneTo(t, s260, indOpts)
	a, err := checkpoint.Open(seq)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := checkpoint.Open(ind)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	differ := map[int]int{}
	for _, name := range a.Names() {
		if !strings.HasPrefix(name, "model.layers.") || !strings.HasSuffix(name, "proj.weight") {
			continue
		}
		var li int
		fmt.Sscanf(strings.TrimPrefix(name, "model.layers."), "%d", &li)
		x, err := a.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		y, err := b.Bytes(name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(x, y) {
			differ[li]++
		}
	}
	if differ[0] != 0 {
		t.Errorf("block 0: %d projections differ between the pipelines; want none", differ[0])
	}
	for li := 1; li < 5; li++ {
		if differ[li] == 0 {
			t.Errorf("block %d: the pipelines pruned it identically", li)
		}
	}
	t.Logf("projections that differ by block: %v", differ)
	for dir, want := range map[string]string{seq: "sequential", ind: "independent"} {
		data, err := os.ReadFile(filepath.Join(dir, manifest.File))
		if err != nil {
			t.Fatal(err)
		}
		var m manifest.Manifest
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatal(err)
		}
		if m.Calibration == nil || m.Calibration.Pipeline != want || (want == "independent") != (m.Flags["pipeline"] == "independent") {
			t.Errorf("%s: calibration %+v, flags %v: want pipeline %s", dir, m.Calibration, m.Flags, want)
		}
	}

	whole := writeParts(t, s260, seqOpts, []sparsify.BlockRange{{First: 0, End: 5}}) // Range implies Independent
	sameDirs(t, merge(t, whole), ind)
}

// TestSplitOWL: with OWL, every worker computes the block sparsities from
// the dense model, so 2 ranges (Wanda) merge to the one-machine output.
func TestSplitOWL(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	opts := splitOpts(sparsify.Wanda)
	opts.OWL = &sparsify.OWL{}
	parts := writeParts(t, s260, opts, []sparsify.BlockRange{{First: 3, End: 5}, {First: 0, End: 3}})
	p, err := sparsify.ReadPart(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Calibration.LayerSparsity) != 5 || p.First != 3 || p.End != 5 || len(p.Tensors) != 14 {
		t.Fatalf("part %s: layer sparsity %v", p, p.Calibration.LayerSparsity)
	}
	opts.Pipeline = sparsify.Independent
	sameDirs(t, merge(t, parts), pruneTo(t, s260, opts))
}

// TestSplitRequests: what a split calibration refuses at planning.
func TestSplitRequests(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	ctx := context.Background()
	seq := splitOpts(sparsify.Wanda)
	seq.Pipeline, seq.Range = sparsify.Sequential, &sparsify.BlockRange{First: 0, End: 2}
	mag := sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}, Pipeline: sparsify.Independent}
	past := splitOpts(sparsify.Wanda)
	past.Range = &sparsify.BlockRange{First: 3, End: 6}
	bad := splitOpts(sparsify.Wanda)
	bad.Pipeline = "parallel"
	for name, o := range map[string]sparsify.Options{"sequential range": seq, "magnitude": mag, "past the blocks": past, "bad pipeline": bad} {
		job, err := sparsify.Plan(ctx, s260, o)
		if err == nil {
			job.Close()
		}
		if !errors.Is(err, sparsify.ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
	// A job with a range writes a part, not a checkpoint.
	ranged := splitOpts(sparsify.Wanda)
	ranged.Range = &sparsify.BlockRange{I: 1, N: 2}
	job, err := sparsify.Plan(ctx, s260, ranged)
	if err != nil {
		t.Fatal(err)
	}
	defer job.Close()
	out, err := checkpoint.Create(filepath.Join(t.TempDir(), "out"), checkpoint.OutputOptions{InputDir: job.InputDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer out.Abort()
	if _, err := job.Execute(ctx, out); !errors.Is(err, sparsify.ErrInvalid) {
		t.Errorf("Execute of a ranged job: %v", err)
	}
	if ranged.Range.First != 0 {
		t.Error("Plan changed the caller's Range")
	}

	for _, c := range []struct {
		layers, shard string
		want          sparsify.BlockRange
		ok            bool
	}{{"2:5", "", sparsify.BlockRange{First: 2, End: 5}, true}, {"", "1/3", sparsify.BlockRange{I: 1, N: 3}, true},
		{"3:3", "", sparsify.BlockRange{}, false}, {"a:b", "", sparsify.BlockRange{}, false}, {"1:2", "0/2", sparsify.BlockRange{}, false},
		{"", "", sparsify.BlockRange{}, false}, {"", "2/2", sparsify.BlockRange{}, false}, {"01:2", "", sparsify.BlockRange{}, false}} {
		r, err := sparsify.ParseRange(c.layers, c.shard)
		if (err == nil) != c.ok || c.ok && *r != c.want {
			t.Errorf("ParseRange(%q, %q) = %+v, %v", c.layers, c.shard, r, err)
		}
	}
}

// rewritePart writes a copy of the part file at path with its descriptor
// changed by edit (on the JSON) and its tensor bytes by flip, and returns
// the copy's path.
func rewritePart(t *testing.T, path string, edit func(desc string) string, flip bool) string {
	t.Helper()
	f, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	meta := map[string]string{}
	for k, v := range f.Metadata() {
		meta[k] = v
	}
	meta[sparsify.PartMetadataKey] = edit(meta[sparsify.PartMetadataKey])
	var entries []safetensors.Entry
	for i, info := range f.Tensors() {
		b, err := f.Bytes(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Clone(b)
		if flip && i == 0 {
			b[0] ^= 1
		}
		entries = append(entries, safetensors.BytesEntry(info.Name, info.DType, info.Shape, b))
	}
	out := filepath.Join(t.TempDir(), filepath.Base(path))
	if err := safetensors.WriteFile(out, meta, entries); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMergeRefusesTampered: PlanMerge or Execute refuse a part whose
// tensor bytes do not match its descriptor, a part of another lmsparse
// build, a descriptor with an unknown field, and a shard whose range does
// not fit its index.
func TestMergeRefusesTampered(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	parts := writeParts(t, s260, splitOpts(sparsify.Wanda), []sparsify.BlockRange{{I: 0, N: 2}, {I: 1, N: 2}})
	same := func(s string) string { return s }
	for _, c := range []struct {
		name string
		part string
		want string
	}{
		{"flipped bit", rewritePart(t, parts[1], same, true), "do not match the descriptor's SHA-256"},
		{"other build", rewritePart(t, parts[1], func(s string) string {
			return strings.Replace(s, `"tool":"`, `"tool":"lmsparse v0.0.1 `, 1)
		}, false), "different lmsparse builds"},
		{"unknown field", rewritePart(t, parts[1], func(s string) string { return strings.Replace(s, `{`, `{"extra":1,`, 1) }, false), "unknown field"},
		{"wrong range", rewritePart(t, parts[1], func(s string) string { return strings.Replace(s, `"first":2`, `"first":1`, 1) }, false), "holds blocks 2:5, not 1:5"},
	} {
		job, err := sparsify.PlanMerge(context.Background(), []string{parts[0], c.part}, "")
		if err == nil {
			dir := filepath.Join(t.TempDir(), "out")
			out, cerr := checkpoint.Create(dir, checkpoint.OutputOptions{InputDir: job.InputDir()})
			if cerr != nil {
				t.Fatal(cerr)
			}
			_, err = job.Execute(context.Background(), out)
			out.Abort()
			job.Close()
		}
		if !errors.Is(err, sparsify.ErrInvalid) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v; want ErrInvalid and %q", c.name, err, c.want)
		} else {
			t.Logf("%s: %v", c.name, err)
		}
	}
}

// TestSplitMoreShardsThanBlocks: 7 shards of 5 blocks — two of them empty
// — merge to the one-machine output, given in any order.
func TestSplitMoreShardsThanBlocks(t *testing.T) {
	s260 := sharedtest.Path(t, "models/stories260k")
	opts := splitOpts(sparsify.Wanda)
	var ranges []sparsify.BlockRange
	for i := 6; i >= 0; i-- {
		ranges = append(ranges, sparsify.BlockRange{I: i, N: 7})
	}
	parts := writeParts(t, s260, opts, ranges)
	empty := 0
	for _, path := range parts {
		p, err := sparsify.ReadPart(path)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Tensors) == 0 {
			empty++
		}
	}
	if empty != 2 {
		t.Errorf("%d empty shards of 7 over 5 blocks, want 2", empty)
	}
	opts.Pipeline = sparsify.Independent
	sameDirs(t, merge(t, parts), pruneTo(t, s260, opts))
}
