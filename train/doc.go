// Package train trains causal language models on the CPU: a hand-written
// float32 backward pass for the two families package model runs forward
// (llama — with mistral and qwen2 — and gpt2), the losses and optimizers
// of recovery fine-tuning and L1 sparse training, and the job behind
// "lmsparse finetune" and a compress recipe's recover stage.
//
// # Passes
//
// A [Net] holds a model's parameters as float32 tensors ([Param]: values
// W and gradient G, fused per projection as the forward pass multiplies
// them: q|k|v and gate|up). [Net.LossGrad] runs one batch of windows
// forward, keeping every block's activations, computes the loss from the
// logits a chunk of rows at a time (the [vocab × rows] logits of a whole
// batch never exist at once), and runs the blocks backward layer by layer:
// norms (RMSNorm, LayerNorm), RoPE (the inverse rotation), causal
// grouped-query attention (dS = P⊙(dP − rowsum(P⊙dP))·scale), SwiGLU,
// gelu_new and exact gelu, the tied or untied head and the embeddings.
// Every matrix product goes through package blas, whose packing takes any
// strides, so the backward forms dX = dY·W and dW += dYᵀ·X (and gpt2's
// Conv1D layout) are packings of the operands in place, and weight
// gradients accumulate with blas GemmAdd. Reductions the forward pass does
// in float64 (norm statistics, softmax sums, the loss) are float64 here
// too; column sums (norm and bias gradients) add fixed chunks of 64 rows
// in order, so results do not depend on the thread count.
//
// The tests hold a plain float64 reference of the forward and backward
// passes and of the trainer (ref_test.go): it reproduces the reference
// per-token NLLs of ../shared, matches central finite differences on every
// parameter tensor to 1e-8, and the production gradients match it to a
// few 1e-6 relative (TestGradientMatchesReference; the acceptance bound
// is 1e-3).
//
// # Memory
//
// The activations of every block are kept for the backward pass (no
// recomputation): per block and row of the batch, the block input, both
// norm outputs, q|k|v, the attention output, the residual after
// attention, the MLP's pre-activation and activation — (4·d + qkv + H·hd
// + up + inter) floats — plus the attention probabilities, B·H·T² floats.
// For the GPT-2-small shape at batch 4 × ctx 512 that is 1.84 GiB
// (Result.PeakActivationBytes); recomputing the probabilities would save
// 0.56 GiB of it at the cost of a third more attention work. Parameters
// take 4 bytes each, their gradients 4 more, AdamW's moments 8 more.
//
// # Batches
//
// [Train] runs on fixed windows of T tokens: cut from a text as [Windows]
// does (the text tokenized once, as eval does, BOS as the tokenizer adds
// it; windows ids[k·T : (k+1)·T] for k = 0 … ⌊len/T⌋−1) or sampled from
// a model. Batch b holds the windows (b·B + j) mod W for j = 0 … B−1
// ([Batch]); with Options.Shuffle the windows are first permuted once by
// the seed. Step s runs batches s·A … s·A+A−1 (A = Options.Accum, 1 by
// default) and averages their gradients. The cross-entropy of a batch is
// the mean over its B·(T−1) next-token predictions (position t of a
// window predicts token t+1); distillation's KL(teacher ‖ model), at
// temperature 1, is averaged over the same positions, and the loss is
// (1−α)·CE + α·KL. The loss a step reports is computed before its update.
//
// # Updates
//
// [Optim] is SGD (w ← w − η·g) or AdamW exactly as torch.optim.AdamW
// documents it, with optional clipping of the global gradient norm (as
// torch.nn.utils.clip_grad_norm_), linear warm-up and a cosine schedule.
// After the update, the L1 penalty λ·Σ|w| on target weights (the 2-D
// weights inside the blocks) is applied as a proximal step,
// w ← sign(w)·max(|w| − η·λ, 0), so weights reach exact zero; masks
// (Options.KeepMask) keep pruned weights exactly zero (their gradients
// and updates are masked). [Net.PruneTargets] prunes every target to an
// exact sparsity by magnitude, as "lmsparse prune" does.
//
// # Jobs
//
// [Plan] opens a checkpoint and checks a fine-tuning run ([JobOptions]);
// [Job.Execute] gets the data (text windows or sequences sampled from the
// dense original), scores the model on held-out text before and after,
// trains, and writes the result through package sparsify (same dtype as
// the input, dense or sparse layouts) with lmsparse.json recording the
// setup and the loss curve (manifest.Training).
package train
