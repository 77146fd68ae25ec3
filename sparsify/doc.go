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
// # Calibration pipelines and split calibration
//
// Wanda and SparseGPT prune block by block on calibration windows. With
// the [Sequential] pipeline (the default) block i's statistics come from
// the windows run through blocks 0…i−1 already pruned, so each block is
// calibrated on the inputs it will see in the pruned model (and SparseGPT
// compensates its predecessors' error); the blocks are done one after the
// other. With [Independent] (llm-compressor's "independent" pipeline) they
// come from the dense blocks: block 0 is pruned as with Sequential, later
// blocks differently, and no forward pass of a pruned block is needed.
// The pipeline is recorded in the manifest's calibration block (and
// Independent in its flags).
//
// Independent block inputs depend on the checkpoint alone, so the blocks
// split across workers: Options.Range (blocks [a, b), or shard i of n:
// [⌊i·L/n⌋, ⌊(i+1)·L/n⌋)) implies Independent; the job runs blocks 0…a−1
// dense, prunes blocks a…b−1 and [Job.ExecutePart] writes a part file (a
// safetensors file with the pruned tensors and a [Part] descriptor in its
// metadata: the input files' SHA-256, [PartSettings], the calibration
// block, the lmsparse build, the range). Every worker samples or tokenizes
// the calibration windows, and with OWL computes the block sparsities on
// the dense model, itself — deterministically, and compared by the merge.
// [PlanMerge] checks that the parts belong together and cover every block
// once and plans a job whose [Job.Execute] writes exactly the checkpoint
// and lmsparse.json of one Independent run with the same options: the
// parts' tensors take the place of calibration, and the write is the same
// code. It refuses (ErrInvalid, naming the part, shard or field) parts of
// other inputs, calibration data, settings or builds, a missing shard or
// range, a duplicated shard and overlapping ranges; the checkpoint's files
// are compared with the parts' by size before and by SHA-256 during the
// write. The merge reads each pruned tensor from its part twice (its
// SHA-256 first, then to write it) and needs no temporary copy.
//
// # Memory
//
// A dense job reads, prunes and writes one tensor at a time, a prefetcher
// working one or two tensors ahead of the writer (an F32 target with one
// threshold over the tensor is not even read into memory: the selection
// runs on the mapped input and the writer zeroes the pruned values in
// 64 KiB copies on their way out, dropping the mapped pages behind it);
// beside it, from the
// start of Job.Execute and never waiting for it, one goroutine hashes the
// input files (sha256, straight from a read-only mapping, dropping the
// pages behind it) and another counts the untouched tensors' nonzeros.
// On two cores the hash (about 1.8 GB/s with SHA-NI) takes one and the
// pruning the other. Memory stays within about twice the largest tensor.
// Sparse formats and global scope plan every target first, then write.
//
// # Errors
//
// Requests that cannot be carried out wrap [ErrInvalid] (and [ErrNoTargets]
// when nothing would be pruned); malformed files wrap the format packages'
// ErrFormat; errors name the file and the tensor.
package sparsify
