// Command lmsparse-user is a Go program outside the lmsparse module that
// uses only its public API: it prunes a checkpoint into a new directory,
// runs a recipe given as YAML, and scores a model (safetensors and ONNX)
// against its original. The test in package compress builds and runs it.
package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/compress"
	"github.com/lmsparse/lmsparse/eval"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/sparsify"
)

func main() {
	if len(os.Args) != 3 {
		log.Fatal("usage: lmsparse-user SHARED_DIR WORK_DIR")
	}
	shared, work := os.Args[1], os.Args[2]
	s260 := filepath.Join(shared, "models/stories260k")
	text := filepath.Join(shared, "text/tinystories/tinystories_sample.txt")
	ctx := context.Background()

	// (1) Prune at 50% into a new directory.
	job, err := sparsify.Plan(ctx, s260, sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}})
	if err != nil {
		log.Fatal(err)
	}
	pruned := filepath.Join(work, "pruned")
	out, err := checkpoint.Create(pruned, checkpoint.OutputOptions{InputDir: job.InputDir()})
	if err != nil {
		log.Fatal(err)
	}
	man, err := job.Execute(ctx, out)
	if err != nil {
		log.Fatal(err)
	}
	if err := out.Commit(ctx); err != nil {
		log.Fatal(err)
	}
	job.Close()
	fmt.Printf("prune: %d pruned tensors, sparsity %.4f\n", man.Totals.PrunedTensors, man.Totals.TargetSparsity)

	// (2) A recipe from a YAML string.
	r, err := compress.ParseRecipe("inline.yaml", []byte("version: 1\nprune:\n  sparsity: 0.2\neval:\n  text: "+text+"\ngates:\n  max_ppl_ratio: 1.5\n"))
	if err != nil {
		log.Fatal(err)
	}
	plan, err := compress.NewPlan(ctx, s260, filepath.Join(work, "compressed"), r, compress.Options{Threads: 1})
	if err != nil {
		log.Fatal(err)
	}
	rep, err := plan.Run(ctx)
	if err != nil && !errors.Is(err, compress.ErrGateFailed) {
		log.Fatal(err)
	}
	plan.Close()
	fmt.Printf("compress: passed %v, ppl ratio %.4f\n", rep.Passed, rep.Fid.PPLRatio)

	// (3) Score the pruned model and the ONNX export against the original.
	held, err := eval.ReadText(text)
	if err != nil {
		log.Fatal(err)
	}
	tok, err := eval.LoadTokenizer(s260, "")
	if err != nil {
		log.Fatal(err)
	}
	for _, path := range []string{pruned, filepath.Join(shared, "models/stories260k-onnx/model.onnx")} {
		res, err := eval.Compare(ctx, path, s260, held, tok, eval.Options{}, model.Options{Threads: 1})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("eval %s: ppl %.4f, KL %.4f, top-1 %.4f\n", filepath.Base(path), res.PPL, res.KL.Mean, res.KL.Top1)
	}
}
