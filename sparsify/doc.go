// Package sparsify prunes whole checkpoints: it picks the tensors to prune,
// runs package prune's selection on each, and writes the result — dense (a
// drop-in checkpoint), CSR, compressed-tensors' sparse-bitmask or (for 2:4)
// sparse-24-bitmask layouts with the quantization_config compressed-tensors
// writes (see ctconfig.go), the smallest per tensor, or for ONNX models sparse_initializers — with a
// manifest (lmsparse.json) of what it did.
//
// # Plan, then execute
//
// [Plan] opens a model and checks everything that can be checked without
// reading weights: the options, every glob, the targets, the output
// format against the model. It writes nothing. [Job.Targets] lists what
// will be pruned. [Job.Execute] then prunes into a [checkpoint.Output]
// created by the caller, which commits it (or aborts it):
//
//	job, err := sparsify.Plan(ctx, "llama", sparsify.Options{Method: prune.Method{Sparsity: 0.5, Scope: prune.ScopeTensor}})
//	...
//	defer job.Close()
//	out, err := checkpoint.Create("llama-50", checkpoint.OutputOptions{InputDir: job.InputDir()})
//	...
//	man, err := job.Execute(ctx, out)
//	if err != nil {
//		out.Abort()
//		return err
//	}
//	return out.Commit(ctx)
//
// # Targets
//
// By default the targets are the 2-D weights inside transformer blocks
// (package arch); Options.Include and Options.Exclude add and remove
// tensors by glob. For ONNX models whose initializers keep their Hugging
// Face names they are the same block weights; otherwise the weight
// initializers of MatMul and Gemm that nothing else reads.
//
// # Memory
//
// A dense job reads, prunes and writes one tensor at a time, a prefetcher
// working one or two tensors ahead of the writer, and the input files are
// hashed and the untouched tensors counted in one sequential pass beside
// it; memory stays within about twice the largest tensor. Sparse formats
// and global scope plan every target first, then write.
//
// # Errors
//
// Requests that cannot be carried out wrap [ErrInvalid] (and [ErrNoTargets]
// when nothing would be pruned); malformed files wrap the format packages'
// ErrFormat; errors name the file and the tensor.
package sparsify
