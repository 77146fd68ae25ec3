package sparsify_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/sparsify"
)

// BenchmarkPruneDense is "lmsparse prune --format dense --sparsity 0.5"
// of the checkpoint named by LMSPARSE_BENCH_MODEL (bench/prune_rss.sh
// leaves one in WORKDIR/in), for profiling the path bench/prune_rss.sh
// times:
//
//	LMSPARSE_BENCH_MODEL=/tmp/w/in go test -run '^$' -bench PruneDense \
//	    -benchtime 5x -cpuprofile cpu.prof ./sparsify
//
// Without the variable it is skipped.
func BenchmarkPruneDense(b *testing.B) {
	in := os.Getenv("LMSPARSE_BENCH_MODEL")
	if in == "" {
		b.Skip("LMSPARSE_BENCH_MODEL (a checkpoint directory) is not set")
	}
	dir := b.TempDir()
	for i := 0; b.Loop(); i++ {
		out := filepath.Join(dir, "out")
		os.RemoveAll(out)
		opts := sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}, Format: sparsify.Dense}
		job, err := sparsify.Plan(b.Context(), in, opts)
		if err != nil {
			b.Fatal(err)
		}
		o, err := checkpoint.Create(out, checkpoint.OutputOptions{InputDir: job.InputDir()})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := job.Execute(b.Context(), o); err != nil {
			o.Abort()
			b.Fatal(err)
		}
		if err := o.Commit(b.Context()); err != nil {
			b.Fatal(err)
		}
		job.Close()
	}
}
