// Package arch holds what lmsparse knows per model architecture, in one
// place: which tensors are pruned by default, which weights are stored
// [in, out] (GPT-2's Conv1D), and the names of the token embedding and the
// LM head.
//
// # Families
//
// [Lookup] maps a config.json model_type to its [Arch]: the llama family
// (llama, mistral, qwen2) and gpt2. An unknown or empty model type gets
// the generic rules (block weights by name, no transposed layouts).
//
// # Default targets
//
// A default pruning target is a 2-D tensor named like a weight inside a
// transformer block: model.layers.N.…weight, transformer.h.N.…weight,
// h.N., blocks.N. (see [IsBlockWeight]). Embeddings, the LM head, norms,
// biases and 1-D tensors are not targets unless a caller includes them.
package arch
