package sparsify_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/sparsify"
)

// Prune a checkpoint at 50% (magnitude, per tensor) into a new directory
// and print the manifest's totals. The model is the real stories260k of
// the repository's sibling ../shared directory.
func Example() {
	ctx := context.Background()
	tmp, err := os.MkdirTemp("", "sparsify-example-")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(tmp)

	job, err := sparsify.Plan(ctx, "../../shared/models/stories260k", sparsify.Options{
		Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor},
		Format: sparsify.Auto, // the smallest layout per tensor
	})
	if err != nil {
		log.Fatal(err)
	}
	defer job.Close()
	fmt.Println(len(job.Targets()), "tensors to prune")

	out, err := checkpoint.Create(filepath.Join(tmp, "s260k-50"), checkpoint.OutputOptions{InputDir: job.InputDir()})
	if err != nil {
		log.Fatal(err)
	}
	man, err := job.Execute(ctx, out)
	if err != nil {
		out.Abort()
		log.Fatal(err)
	}
	if err := out.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	t := man.Totals
	fmt.Printf("%d tensors (%d pruned), %d of %d parameters nonzero (%.2f%% sparse)\n", t.Tensors, t.PrunedTensors, t.Nonzeros, t.Parameters, 100*t.Sparsity)
	fmt.Printf("%d -> %d bytes (%.3fx smaller)\n", t.BytesBefore, t.BytesAfter, t.Ratio)
	// Output:
	// 35 tensors to prune
	// 47 tensors (35 pruned), 146752 of 260032 parameters nonzero (43.56% sparse)
	// 1040128 -> 640048 bytes (1.625x smaller)
}
