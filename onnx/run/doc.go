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
// weights), and lays constant 2-D MatMul and Gemm weights out as [N, K] for
// the matrix kernel. Constants no remaining node reads are dropped. Each
// initializer's file pages are released once it is decoded
// (onnx.Model.Release). With Options.Lazy, initializers of [LazyMinBytes]
// or more are not decoded at load but by each run, when first read, and
// dropped after their last reader: a one-off run (package onnx/native's
// probe) then needs memory for a few weights, not all.
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
// products accumulate in float32. Integer Div truncates toward zero; Mod
// follows the divisor's sign unless fmod=1. Cast from float to integer
// truncates toward zero.
//
// # Matrix kernel
//
// Every matrix product is C = A·Bᵀ with B laid out [N, K] by a local
// pure-Go kernel (4×4 register blocks over 64-column panels of B, split
// across Options.Threads goroutines). It is the place to switch to the
// packed SIMD GEMM of package tensor/blas (blas.MatMulT has the same
// contract) once that package is in place: matMulT in matmul.go.
//
// # Logits
//
// [Session.Logits] runs one window of token ids, batch 1, feeding
// input_ids (or the model's only integer input) and, when the model has
// them, attention_mask (ones), position_ids (0, 1, …) and token_type_ids
// (zeros); it reads the output named "logits" (else the first output) as
// [len(ids), vocab]. [Session.VocabSize] and [Session.MaxPositions] report
// what the model declares (0 when it does not). Models with KV-cache inputs
// (past_key_values) need [Session.Run] with explicit inputs. A Session is
// safe for concurrent use.
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
