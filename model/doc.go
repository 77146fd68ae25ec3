// Package model runs causal language models on the CPU in float32 and
// scores held-out text with them: perplexity, bits per byte and, against a
// base model, KL divergence and top-1 agreement. It is how lmsparse
// measures what compression cost.
//
// # Architectures
//
// [Load] builds a [Model] from a checkpoint opened by package checkpoint;
// [New] builds one from in-memory float32 weights keyed by Hugging Face
// tensor name. Every weight is decoded to float32 (F32, F16, BF16 and the
// other float dtypes package checkpoint decodes) — once, or, for a streaming model
// (see Memory), the block projections on every pass.
//
// The llama family (model_type llama, mistral, qwen2), as Hugging Face's
// LlamaForCausalLM: RMSNorm with rms_norm_eps (statistics in float64);
// rotary position embeddings in the rotate-half convention, with
// inv_freq[i] = rope_theta^(−2i/head_dim) and the cos/sin of frequency i
// applied to elements i and i+head_dim/2 (angles computed in float64);
// grouped-query attention, query head h reading key/value head
// h/(heads/kv_heads); a SwiGLU MLP, down(silu(gate(x))·up(x)); the LM head
// lm_head.weight, or the token embedding when tie_word_embeddings is set.
// qwen2 needs q/k/v biases; for llama and mistral any of the q/k/v, o_proj
// and MLP biases present in the checkpoint are used (attention_bias,
// mlp_bias). Tensor names carry the "model." prefix or none.
//
// gpt2, as GPT2LMHeadModel: LayerNorm with weight and bias; learned
// position embeddings wpe; Conv1D weights stored [in, out]; a fused c_attn
// producing q|k|v; gelu_new (the tanh approximation, also accepted as
// gelu_pytorch_tanh) or the exact erf "gelu"; final ln_f; the LM head tied
// to wte (or lm_head.weight when untied). Names carry the "transformer."
// prefix or none.
//
// Not handled, and not detectable because [checkpoint.Config] does not carry
// them: rope_scaling of any kind (linear, dynamic, YaRN, llama3), partial
// rotary factors, sliding-window attention (mistral's sliding_window,
// qwen2's use_sliding_window: results are exact only while the window is
// no longer than the sliding window), gpt2's scale_attn_by_inverse_layer_idx
// and reorder_and_upcast_attn, logit soft-capping and q/k norms. Checkpoints
// using them load but score wrongly.
//
// A missing tensor is an error wrapping [checkpoint.ErrFormat] that names it; a
// tensor of the wrong shape names it and both shapes; an unsupported
// configuration (activation, odd head dimension, model type) wraps
// [checkpoint.ErrUnsupported].
//
// # Forward pass
//
// [Model.Forward] runs one window of token ids at positions 0..T−1 and
// returns logits [T, vocab]. The whole window goes through each layer at
// once, X [T, dim]: one matrix multiply per projection (q|k|v and gate|up
// fused into one each), causal attention, residual adds in float32.
//
// Attention runs transposed, in jobs of one head and one block of nr
// queries (nr is the kernel's panel width): Sᵀ = K·Q_blockᵀ over the keys
// the block may see comes out of the GEMM as [keys, nr], already the
// layout of a packed operand; the softmax runs down each column with
// float64 sums; Oᵀ = Vᵀ·P is normalized by those sums as it is written
// back. No T×T matrix is materialized or repacked. Scratch memory is a few
// [T, dim]-sized buffers plus nr·T scores per thread.
//
// # Kernels
//
// Every matrix product is C = A·Bᵀ with A [M, K] and B [N, K] row-major —
// the layout of a Hugging Face Linear weight, [out, in] — computed by the
// packed, cache-blocked GEMM of package [blas] (AVX-512, AVX2+FMA or
// pure-Go micro-kernels): weights are packed into B panels once, when the
// model is built (for a streaming model, the block projections whenever
// they are read), activations into A panels per projection.
// [Options].Kernel forces one kernel ([Kernels] lists those usable);
// building with the purego tag leaves only the pure-Go kernel.
//
// The exp-based element-wise kernels — the column softmax of attention,
// gelu_new, silu·up — have an AVX2 version (eight lanes, the Cephes expf
// polynomial) used with the assembly GEMM kernels, an AVX-512 one (sixteen
// lanes, the same instructions, bit for bit the AVX2 results; the softmax
// takes the AVX-512 kernel's 32-wide panels a row at a time) used with the
// AVX-512 GEMM kernel, and a scalar Go version used with the "go" kernel,
// which thereby runs no assembly at all. Each has a float64 or
// definitional reference, and tests check every kernel against it,
// including the differential fuzz test FuzzSoftmax over odd sizes.
//
// Two ways of running products change no result, only the time: with the
// AVX-512 kernel, the last panel of Vᵀ in attention's Oᵀ = Vᵀ·P, when at
// most 8 of its 12 rows are head dimensions, goes through an 8-row form of
// the micro-kernel (the same chain of multiply-adds per element and the
// same blocks of the sum); and a product whose weight is at most 512 KiB
// is split by rows into one part per thread instead of Gemm's jobs of 192
// rows (so two threads share 512 rows evenly). The MLP takes up to 512
// rows as one chunk, larger batches in equal chunks of at most 384.
//
// # Sparse execution
//
// A pruned weight is multiplied sparse: with [Options].Sparse "auto" (the
// default), each block projection and the LM head whose fraction of exact
// zeros is at least [SparseThreshold] (0.5; the sparse kernel ties the
// dense GEMM at about 30–40% zeros, blas.BenchmarkSpMMT and
// BenchmarkSparseCrossover) is kept sparse at build time, as a
// blas.SparseB (a streaming model converts a projection each time it
// reads it, having counted its zeros on the first pass), and multiplied
// with the sparse kernel of package blas instead of the packed GEMM; "off"
// keeps every weight dense, "on" every one sparse. The threshold is
// necessary, not sufficient: a weight of 65,536 values or more that passes
// it is also timed both ways at load (256 rows of activations, the
// model's thread count, best of 3, once per shape and 5% sparsity step)
// and stays dense unless the sparse product was at least 5% faster, so
// sparse is never chosen where it measured slower (on a 2-vCPU EPYC a
// 768×768 weight at 50% zeros is slower sparse on 2 threads). Smaller
// weights are not timed (their products are too short to time reliably
// at load) but follow a fixed table per kernel and thread count, measured
// the same way by blas.BenchmarkSparseSmall (on the development host sparse
// was at least 12% faster than dense on every shape from 32×64 to
// 255×256 from 50% zeros, with both assembly kernels on 1 and 2 threads),
// so a small model such as stories260k makes the same choices on every
// run. The rule is blas.SparseChoice, which package onnx/run's executor
// follows too; blas.TestSparseChoice checks it with injected timings. The
// choice changes the speed, never a result: the assembly sparse kernels
// sum each element as the dense GEMM does (the same FMA chains, cut into
// the same blocks of the sum, blas.Kernel.NewSparseB), so the logits are
// the dense path's bit for bit, whatever was chosen and however the
// timings fell (TestSparseExecution checks "off", "auto" and "on" with
// every kernel: equal bits with the assembly ones, float32 rounding with
// the pure-Go one).
// The sparse kernel is chosen only with an assembly GEMM kernel, whose
// sparse counterpart is AVX-512 or AVX2+FMA assembly (blas.SparseAsm). A
// 90%-pruned GPT-2-small shape runs 1.8–1.9× faster at ctx 512 with the
// tied LM head dense, and 2.4–3.1× with it pruned too (1–2 threads;
// BenchmarkForwardSparse, BENCHMARKS.md).
//
// BenchmarkForward, BenchmarkForwardSparse and BenchmarkSparseCrossover
// measure whole forward passes; package blas benchmarks the GEMM alone.
//
// # Memory
//
// A resident model holds every weight decoded and packed, about the size
// of the F32 checkpoint. A streaming one ([Options].Stream) holds only the
// token and position embeddings, the LM head, norms and biases; each
// block's four projections are read from the checkpoint (pread through
// package checkpoint, never the file mapping) when the block runs, decoded into a
// staging buffer and packed (or converted to CSR by the Sparse rule) into
// one of two buffer sets, while a goroutine reads the next block into the
// other. Its weight memory is thus the LM head plus two blocks'
// projections plus one staging buffer — for GPT-2 small, 147 MiB + 2×27 MiB
// + 9 MiB — whatever the number of layers. The token embedding is looked
// up in the packed head when it is tied and dense; otherwise a streaming
// model reads the rows of the tokens it needs (an embedding stored sparse
// by lmsparse prune, which cannot be read in parts, stays decoded). The
// LM head is loaded a few MiB at a time, so loading needs little more than
// the result. Reading a block costs a copy from the page cache and a
// packing pass, about 6 ms per GPT-2-small block: 10–15% of a single
// 512-token window's forward pass on 2 threads, which is why [Score]
// batches windows (below).
//
// [Load] streams when the checkpoint's weights, as float32, take more than
// twice its largest tensor plus [StreamSlack] (64 MiB): below that,
// residence costs no more than the bound streaming keeps, and is faster.
// [New] builds resident models (Stream "on" streams from a private copy,
// for tests). A streaming model reads through a checkpoint handle of its
// own (checkpoint.Model.Reopen), so the caller may close its checkpoint.Model;
// [Model.Close] releases the handle (or the garbage collector does).
//
// Activations are reused from layer to layer: a few [rows, dim] buffers,
// q|k|v, and the MLP's hidden activations for at most 384 rows at a time.
// Every projection's sums run in an order fixed by its K dimension, and
// every other step works row by row, so a streaming model gives
// bit-identical logits to a resident one (TestStreamMatchesResident and
// the tests beside it). [Score] runs the windows of a streaming model
// together, layer by layer ([ScoreOptions].Batch windows, by default as
// many as keep each model's activations within [BatchMemory], 64 MiB:
// five 512-token windows of GPT-2 small): each projection is one matrix
// product over the rows of all the batch's windows, attention runs per
// window, so a batch costs one read of the weights. The results are the
// same for any batch size. The ONNX executor (package onnx/run) is not
// streamed: an ONNX model is held in memory.
//
// # Threads and determinism
//
// [Options].Threads goroutines (default GOMAXPROCS) share each pass: GEMM
// jobs are blocks of C, attention jobs are (head, query block) pairs, and
// element-wise work is split by rows. Every output element is computed by
// exactly one goroutine, summing in an order fixed by the shapes alone, so
// results are bit-identical for any thread count. Different kernels round
// differently (FMA or not, other tile shapes) and agree to about 1e-5.
//
// # Sampling
//
// [Sample] draws continuations at temperature 1. On a [Model] it decodes
// with a key/value cache: the prompts run once, then every step runs one
// row per unfinished sequence, all sequences together, through the layers
// — each projection one matrix product over those rows, each row's query
// heads attending over its own sequence's cached keys and values — so n
// tokens cost n rows per sequence rather than the n²/2 of a forward pass
// over the whole sequence at every step. The cache keeps, per layer and
// sequence, the keys after the rotary embedding in blocks of 8 positions
// (column by column) and the values row by row; [SampleCacheMemory]
// (1 GiB) bounds it, beyond which the sequences are sampled in groups.
// With the assembly GEMM kernels, attention runs AVX2+FMA kernels of its
// own: scores of eight heads over blocks of eight keys, transposed in
// registers into the rows the column softmax takes, and probability ×
// value sums eight lanes of the head dimension wide.
//
// The cached attention sums as the forward pass's kernels do — one
// multiply-add chain per score, the same column softmax, and per output
// element one chain per Gemm block of keys (the block length, internal to
// package blas, is probed once per kernel) — so the logits equal, bit for
// bit, those of a forward pass over the sequence so far up to 193 tokens
// with the AVX-512 kernel and 385 with the others; beyond, the forward
// pass sums its earlier rows' attention in blocks that depend on the
// window's length, and the two agree to rounding (about 1e-6 of the
// largest logit; TestSampleStories260k, TestSampleVariants,
// TestSampleLongBlocks). The tokens are thus those drawn without a cache
// (past those lengths, unless a draw falls within rounding of a boundary
// between two tokens), and do not depend on threads, grouping or how
// prompts are split into passes.
//
// BenchmarkSample draws 256 sequences of 256 tokens from stories260k on 2
// threads: 1.7–2.3 s with the cache (29–38 K tokens/s) against 119 s
// (549 tokens/s) with a forward pass over every whole sequence at each
// step, as Sample ran before — about 60× faster (on a shared machine).
// Attention then takes most of the time, bound by reading the cache from
// memory.
//
// # Scoring protocol
//
// [Score] implements the fixed-length perplexity protocol of Hugging Face's
// guide, as specified in ../shared/README.md: windows start at 0, stride,
// 2·stride, ... and end at min(begin+ctx, N); the token at absolute
// position j is scored once, in the first window whose end passes it, when
// j ≥ prev_end and j > begin (the first token of the text, and with stride
// = ctx the first token of every window, is never scored); the loop stops
// after the window that reaches N. Each NLL is −log_softmax in float64 from
// the float32 logits (max-shifted, sums in float64, each exp within 2 ulp
// by internal/fastmath's vector kernels, added in a fixed order that no
// CPU or thread count changes); ppl =
// exp(nll_sum/scored) and bits per byte = nll_sum/ln 2/bytes, with the
// byte count of the text passed in.
//
// The order of the sums is fixed, so that a run split into shards merges
// to the very bits of one run: each window's scored positions are summed
// in increasing position order into its [WindowSums] (NLL, base NLL, KL,
// from 0), and the totals are the sum of the windows' sums in window order
// ([Totals]). ScoreOptions.Shard scores one contiguous range of windows
// ([Shard]) and returns its windows' sums in Result.Sums and the KL of
// each scored position in Result.KLs; [Totals] over the concatenated sums
// and KL values of all shards, in shard order, is exactly what Score
// computes over all windows (percentiles sort a copy of the KL values, so
// their order does not matter). Package eval writes and merges such
// shards.
//
// With a base model, each scored position also gets KL(base‖model) =
// Σ_v p_base(v)·(ln p_base(v) − ln p_model(v)) in float64 (rounding
// negatives clamped to 0), reported as mean, maximum and 99th, 90th and
// 50th percentiles — percentiles by linear interpolation between closest
// ranks: the value at position p/100·(n−1) of the sorted list, NumPy's
// default — plus top-1 agreement (argmax equal, ties going to the lowest
// token id) and ln(ppl/ppl_base).
//
// Invalid arguments — fewer than 2 tokens, ctx outside [2, max positions],
// stride outside [1, ctx], an id outside the vocabulary, a base model with
// another vocabulary or fewer positions — return errors wrapping
// [ErrInput]. Logits are produced 192 rows at a time, so scoring needs
// 192·vocab floats per model beyond the forward pass; with a base model,
// both models run the batch of windows, then the logits of each window
// are produced a chunk at a time for both.
package model
