// Package native runs recognised ONNX exports of the llama family and
// GPT-2 on package model's forward pass, the fast path of lmsparse's ONNX
// evaluation: such a graph's initializers are read into a [model.Model]
// (the same packed GEMM, fused attention and kernels as a safetensors
// checkpoint), and everything else goes through the general executor of
// package onnx/run. It lives in directory onnx/native.
//
// # Recognition rules
//
// [Recognize] accepts a model when all of these hold, and otherwise
// returns an error wrapping [ErrNotRecognized] that says which rule failed:
//
//   - The graph has exactly one input, an integer tensor of rank 2 (token
//     ids, [batch, sequence]), and its logits output (the output named
//     "logits", else the first) is computed by a MatMul whose second
//     operand is a 2-D float initializer: the LM head, [vocab, hidden]
//     under a Transpose with perm [1, 0], or [hidden, vocab] as it is.
//   - The initializers carry the Hugging Face names of one family, with or
//     without the "model." / "transformer." prefix, directly or through
//     Identity nodes (exporters deduplicate equal initializers that way):
//     llama — embed_tokens, layers.N.{input_layernorm, self_attn.{q,k,v,o}_proj,
//     post_attention_layernorm, mlp.{gate,up,down}_proj}.weight, norm.weight;
//     gpt2 — wte, wpe, h.N.{ln_1, attn.c_attn, attn.c_proj, ln_2, mlp.c_fc,
//     mlp.c_proj}.{weight, bias}, ln_f.{weight, bias}; layers numbered from
//     0 without gaps, every shape consistent with one hidden size.
//   - The normalization epsilon is the scalar float constant added to the
//     output of a ReduceMean (the decomposed RMSNorm or LayerNorm) or a
//     LayerNormalization's epsilon attribute; every one in the graph is the
//     same.
//   - The head count: a divisor h of hidden (llama: of q_proj's rows) such
//     that h or hidden/h is an integer constant of the graph (the
//     [batch, seq, heads, head_dim] reshape); candidates whose head
//     dimension's square root (or its reciprocal) is a float constant (the
//     attention scale) come first, then those with both factors constant;
//     the first three are tried (see Verification). Key/value heads are
//     k_proj's rows over the head dimension.
//   - llama: the rotary angles come from a table of cosines and one of sines
//     (initializers whose names contain "cos" and "sin", [positions, head_dim]
//     or [positions, head_dim/2]) from which rope_theta is read and against
//     which the whole table is checked (1e-5); the graph has a Sigmoid per
//     layer (SiLU). gpt2: a Tanh per layer means gelu_new, an Erf per layer
//     the exact GELU.
//
// # Verification
//
// A recognised graph is then checked numerically by [Load]: the general
// executor and the built model compute the logits of one probe window
// (16 fixed token ids, or fewer when the model has fewer positions); they
// must agree within 1e-4 of the largest logit's magnitude (at least 1).
// Each head-count candidate that fails is replaced by the next (at most
// three); when none agrees, Load returns an error wrapping
// [ErrNotRecognized] and the caller uses the general executor. The probe
// runs a lazy session (onnx/run Options.Lazy: each weight decoded when
// read and dropped after), which is dropped before the model is built, and
// the model reads one initializer at a time and releases the file's pages
// behind it (onnx.Model.Release), so loading needs little more memory than
// the model itself.
package native
