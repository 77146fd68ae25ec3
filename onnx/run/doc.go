// Package run executes ONNX models on the CPU in pure Go: the standard
// operators that transformer language-model exports (GPT-2, Llama, BERT;
// opsets 13–17 and their neighbours) are made of, enough to compute the
// logits lmsparse scores. It lives in directory onnx/run; models are read by
// package [github.com/lmsparse/lmsparse/formats/onnx].
//
// # Loading
//
// [Load] checks the whole model before running anything: every node of the
// main graph and of its subgraphs must be a default-domain ("" or "ai.onnx")
// operator listed by [Ops], else the error is an [*UnsupportedError] naming
// every unsupported operator with its domain and node count (so a model
// using ONNX Runtime's com.microsoft contrib operators is rejected with the
// full list). The default domain's operator set must be in
// [MinOpset, MaxOpset]. Load then decodes the initializers (dense or sparse,
// inside the file or in external data) to float32, int64 or bool, orders the
// nodes topologically, evaluates once every node whose inputs are all
// constant (Constant nodes, shape arithmetic on constants, Transposes of
// weights), drops the nodes no graph output depends on ([Plan].Dropped),
// packs constant 2-D MatMul and Gemm weights once for the GEMM kernel (see
// Matrix kernel) or keeps them sparse (see Sparse weights), fuses the
// patterns listed under Fusions, and plans when each value dies. Constants no remaining node reads are
// dropped (a packed weight's initializer with them: one copy). Each
// initializer's file pages are released once it is decoded
// (onnx.Model.Release). With Options.Lazy, initializers of [LazyMinBytes]
// or more are not decoded at load but by each run, when first read, and
// dropped after their last reader: a one-off run (package onnx/native's
// probe) then needs memory for a few weights, not all.
//
// # Fusions
//
// Load replaces these patterns by one fused kernel each, unless
// Options.NoFusion is set. Every pattern is matched structurally over
// single-reader intermediates (an intermediate that is also a graph output
// or read elsewhere stops the match), its constants are checked
// (exponents, the GELU constants to float32, ε a constant scalar, biases
// and scales constant rows [D] or [1, …, 1, D]), and reductions must be
// over axis −1 with keepdims. A pattern seen but not fused is reported,
// with the reason, to Options.Debug and in [Session.Plan]'s Skipped;
// Plan's Fusions lists what was fused.
//
//   - MatMul+Add: MatMul by a constant weight, then Add of a constant bias
//     row: one GEMM accumulating onto the bias rows.
//   - RMSNorm: Pow(x, 2) → ReduceMean → Add ε → Sqrt → Div(x, ·), or
//     Div(1, ·)/Reciprocal → Mul(x, ·); then optionally Mul by γ.
//   - LayerNorm: the same over x − ReduceMean(x) (torch's decomposition
//     below opset 17), then optionally Mul by γ and Add of β.
//   - Gelu: Div(x, √2) (or Mul by 1/√2) → Erf → Add 1 → Mul x → Mul 0.5
//     (or Mul(Mul(x, 0.5), ·)). GeluTanh: Hugging Face's gelu_new,
//     x·0.5·(1 + Tanh(√(2/π)·(x + 0.044715·Pow(x, 3)))).
//   - SiLU: Mul(x, Sigmoid(x)).
//   - ScaleSoftmax: Softmax over axis −1 (opset ≥ 13) of Div or Mul by a
//     constant scalar, optionally plus a mask broadcast to the scores.
//   - Attention: a ScaleSoftmax of MatMul(Q, Kᵀ) whose probabilities only
//     MatMul(·, V) reads: per batch and block of 64 query rows, with K and
//     V packed once per batch; the columns where the mask is −∞ to the end
//     of a row (a causal or padding mask) are not computed.
//   - QKV: two or more products of one input x by constant 2-D weights of
//     one depth K — MatMuls by a packed weight or fused MatMul+Adds, as
//     the Q, K and V projections of an attention or the gate and up
//     projections of a gated MLP: one node, in the place of the first,
//     packing x once and running one parallel loop over every product's
//     blocks of rows and columns, each a GEMM by that product's own packed
//     weight into that product's own output (no concatenated copy of the
//     weights or of the outputs; each output is a value of its own, freed
//     by the memory plan after its own last reader). A MatMul of x by a
//     computed weight stays outside the group (logged, when it leaves
//     fewer than two products), as do products of x by weights of another
//     depth (a graph that cannot run; logged).
//
// A member whose weight is kept sparse joins the group too: x is then
// also packed once in the sparse kernel's panels, and each sparse member
// is one sparse product on every thread, its bias added after.
//
// Fusions are applied in two stages: first MatMul+Add, the norms, the
// activations and ScaleSoftmax, matched over the graph's nodes; then
// Attention, over the fused ScaleSoftmax nodes, and QKV, over the MatMul
// and fused MatMul+Add nodes, so that a biased projection joins its
// group as one member whose bias seeds its output before the GEMM adds
// onto it, exactly as the MatMul+Add kernel computes it.
//
// The fused kernels compute what the nodes compute, operation by
// operation in float32 with the same roundings, so their results are the
// unfused results to the bit, except in the GEMM sums of MatMul+Add (the
// bias joins the first block of the sum when K exceeds the kernel's block
// depth) and of Attention's product by V (summed over the columns the mask
// leaves): last-bit differences. QKV changes no bit: the GEMM's summation
// order depends on K alone, not on how rows and columns are split into
// jobs, so each output is the separate product's (or fused MatMul+Add's)
// to the bit (TestFuseQKV checks this). The skipped columns of an attention hold
// probability 0 exactly; Q, K and V are checked finite first. When a run's
// operands are not what a kernel handles (a dtype other than float32,
// ranks or shapes load could not see, a fully masked row), the fused node
// runs the nodes it replaced, one by one.
//
// # Memory
//
// Each run takes a run state (values and an arena) from the session, or
// makes one; concurrent runs use different states. Computed tensors get
// their arrays from the arena, which returns an array to its free lists
// when the last value holding it (views such as Reshape's included) has
// been read for the last time, as planned at load, and serves later
// tensors from them (best fit, same element type, up to twice the size).
// Element-wise operators (arithmetic, unary functions, Softmax, the fused
// element-wise kernels) write over an operand whose value dies at that
// node when nothing else holds its array. The arena keeps its arrays from
// run to run, dropping at the end of a run those the run did not use, so
// windows of one length run without allocating tensor memory; arrays
// returned by [Session.Run] are the caller's. Small per-node headers
// (tensor structs, shapes, broadcast plans) are still allocated.
//
// # Operators
//
// Element-wise with numpy broadcasting: Add, Sub, Mul, Div, Pow, Mod, Max,
// Min, Sum, Mean, Equal, Less, Greater, LessOrEqual, GreaterOrEqual, And,
// Or, Xor, Not, Where, Sqrt, Reciprocal, Neg, Abs, Sign, Exp, Log, Tanh,
// Erf, Sigmoid, Softplus, Relu, Gelu, Sin, Cos, Floor, Ceil, Round, IsNaN,
// IsInf, Clip, Cast, CastLike. Products and normalization: MatMul (numpy
// semantics: batch broadcasting, 1-D operands), Gemm (transA, transB,
// alpha, beta, broadcast C), Softmax and LogSoftmax, ReduceMean, ReduceSum,
// ReduceMax, ReduceMin (float and integer; BOOL, valid from opset 20, is
// unsupported), ReduceProd, ReduceSumSquare, LayerNormalization,
// CumSum. Shapes and data movement: Reshape, Flatten, Transpose, Concat,
// Split, Slice, Squeeze, Unsqueeze, Shape, Size, Gather, Expand, Tile,
// Identity, Dropout (inference: identity, mask all true; training_mode
// true is refused as unsupported), Constant,
// ConstantOfShape, Range, Trilu, ScatterND (with reductions), Pad
// (constant and edge modes).
//
// Attribute-versus-input changes across operator sets follow the node's
// opset: Split's split (input from 13, num_outputs from 18), Squeeze and
// Unsqueeze axes (input from 13), ReduceSum axes (input from 13) and the
// other reductions' (input from 18) with noop_with_empty_axes, Slice
// (inputs from 10), Clip min/max (inputs from 11), Softmax's axis (one axis,
// default −1, from 13; before, the flattened dimensions from axis, default
// 1), Shape's start/end (from 15), Reshape's allowzero (14). Negative axes
// count from the end everywhere.
//
// # Numerics
//
// Floating-point tensors compute in float32; F16 and BF16 tensors are held
// as float32 rounded to their precision after every computing operator, so
// mixed-precision graphs see the rounding they were exported with; F64
// computes in float32. Integers are int64 (Cast wraps them to narrower
// types), booleans bool. Transcendental functions, Softmax sums, reductions
// and LayerNormalization statistics use float64 and round once; matrix
// products accumulate in float32. Softmax takes its exponentials in float32
// with the Cephes expf scheme of internal/fastmath.Expf (a few ulp, as
// package model does) — eight lanes at a time with AVX2 and FMA when the
// CPU has them, each element through the vector code whatever the row's
// length, exponents below −87 giving 0 — and sums them in float64;
// LogSoftmax stays in float64. Integer Div truncates toward zero; Mod
// follows the divisor's sign unless fmod=1. Cast from float to integer
// truncates toward zero.
//
// # Matrix kernel
//
// Matrix products run on the packed GEMM of package tensor/blas (the
// kernel of package model: AVX-512, AVX2 or pure Go) on Options.Threads
// goroutines. Constant B operands (MatMul and Gemm weights) are packed once
// at load; A operands are packed per run into arena scratch. Batched
// products (attention scores and outputs) pack each batch's operands
// straight from their layout, without transposed copies, and spread the
// batches over the threads.
//
// # Sparse weights
//
// Options.Sparse "" or "auto" keeps a constant 2-D MatMul or Gemm weight
// sparse, as a blas.SparseB multiplied by kernel.SpMMTPacked (A packed
// per run in panels of blas.SpanelRows rows), instead of packing it dense,
// when the CPU has the assembly sparse kernel, its fraction of exact zeros
// is at least [SparseThreshold], and the sparse product pays —
// blas.SparseChoice, the rule package model follows too: a weight of 64K values or more is timed both ways at load
// (256 rows of seeded activations, the session's threads, best of 3,
// alternating; once per shape, 5% sparsity step and thread count) and
// kept sparse only if the sparse product was at least 5% faster; a smaller
// one follows a fixed per-kernel table (from 50% zeros), never timed, so
// small models choose the same on every load. "off" packs every weight
// dense; "on" keeps every one sparse. Only one form is kept (the
// initializer is dropped as for a packed weight); [Session.Plan] counts
// both. The sparse kernel sums each element in the dense GEMM's blocks of
// K, so with an assembly kernel a product is the dense one to the bit and
// the choice changes no result — except a MatMul+Add whose K exceeds the
// kernel's block depth: sparse, the bias is added after the product, as
// the unfused Add adds it (the dense fused GEMM adds it to the first
// block: a last-bit difference, see Fusions).
//
// # Logits
//
// [Session.Logits] runs one window of token ids, batch 1, feeding
// input_ids (or the model's only integer input) and, when the model has
// them, attention_mask (ones), position_ids (0, 1, …) and token_type_ids
// (zeros); it reads the output named "logits" (else the first output) as
// [len(ids), vocab]. [Session.VocabSize] and [Session.MaxPositions] report
// what the model declares (0 when it does not). Models with KV-cache inputs
// (past_key_values) need [Session.Run] with explicit inputs.
// [Session.LogitsBatch] runs several windows of one length as one batch
// ([len, n] inputs), which makes larger products (stories260k-onnx scored
// by package eval, 512-token windows 8 at a time: 1.2–1.4× the tokens/s
// of one at a time); each window's logits are the bits it gets alone when
// the graph keeps the rows of a batch apart, which [Session.MaxBatch]
// cannot promise for a graph that reshapes its batch into a constant
// shape. A Session is safe for concurrent use.
//
// # Limits and errors
//
// Every tensor the executor allocates — including shapes computed from
// data, as in ConstantOfShape, Expand, Tile and Range — is bounded by
// Options.MaxElements (default [DefaultMaxElements]) with overflow-checked
// element counts. Errors name the model file and the node (index, operator,
// name) and wrap [ErrUnsupported] (operators, opsets, dtypes, attribute
// values not implemented), [ErrInvalid] (a graph or operand that cannot run:
// incompatible shapes, indices out of range, undefined values) or
// [ErrInput] (bad arguments to Run or Logits).
package run
