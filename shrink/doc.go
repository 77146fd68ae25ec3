// Package shrink prunes whole units of a transformer block — MLP
// intermediate channels and attention heads — together with every weight
// that reads or writes them, and either removes them (the checkpoint gets
// smaller shapes and a config.json that says so) or zeroes them in place
// (shapes kept).
//
// Structured pruning of single tensors (package prune, --structured
// rows|cols) zeroes rows or columns and keeps every shape: the zeros cost
// bytes unless a sparse format stores them, and the forward pass still
// multiplies them. Removing a row for real needs the matching dimension of
// the next layer to go too, which is only defined for a unit that a block
// computes internally: an MLP channel, or an attention head.
//
// # Units
//
// An MLP channel j of a llama-family block (llama, mistral, qwen2) is row j
// of mlp.gate_proj.weight and mlp.up_proj.weight (and entry j of their
// biases, when present) and column j of mlp.down_proj.weight; of a gpt2
// block, column j of mlp.c_fc.weight (Conv1D, stored [in, out]), entry j of
// mlp.c_fc.bias and row j of mlp.c_proj.weight. Its importance is the sum
// of the L1 norms of those weight rows and columns (biases not counted),
// in float64.
//
// An attention unit of a llama-family block is a key/value group: key/value
// head g (rows g·head_dim … of k_proj and v_proj) with the heads/kv_heads
// query heads that read it (their rows of q_proj and columns of o_proj),
// and their q/k/v bias entries. With multi-head attention a group is one
// head. Removing whole groups keeps every remaining query head reading the
// key/value head it read before, so num_attention_heads stays a multiple of
// num_key_value_heads. Its importance is the sum of the L1 norms of those
// rows and columns. o_proj's bias is kept. The unit "qheads" is a query
// head alone (its q_proj rows and bias entries, its o_proj columns): the
// same number goes from every group and the key/value heads stay, which
// prunes heads finer than whole groups and works with one key/value head
// (MQA), where removing a group would remove them all. gpt2 has no head_dim key: its
// head size is n_embd/n_head, so a gpt2 config.json cannot describe fewer
// heads of the same size, and Plan refuses heads for gpt2.
//
// # Selection
//
// In every block, the r = round-half-even(S·n) units with the lowest
// importance are removed (n channels, n key/value groups, or for qheads n
// query heads per group, chosen within each group), ties going to
// the lower index: the same number in every block, so config.json keeps
// one intermediate_size / n_inner and one head count and stays loadable by
// Hugging Face transformers. Removing every unit is refused.
//
// With Options.Calib (lmsparse prune --method wanda) the importance comes
// from activations instead: the dense model runs over calibration windows
// block by block, and a unit scores Σ_c ‖x_c‖₂·‖W[:,c]‖₂ over the input
// columns c it feeds into the projection that reads it — down_proj's
// column j (gpt2: c_proj's row j) for an MLP channel, the head's o_proj
// columns for a query head (a group sums its query heads) — x_c being
// column c's values over every calibration token: Wanda's |W|·‖x‖ summed
// over the unit. On the demo model it halves the perplexity cost of
// removing MLP channels; for heads it is no better than the weights.
//
// # Exactness
//
// A removed MLP channel contributes act(·)·0 once its down-projection
// column is zero, whatever its gate, up or bias values; a removed head
// contributes through o_proj's columns only. So the shrunk model's forward
// pass equals, up to float rounding, that of the model with the same units
// zeroed and every shape kept (Options.Remove false); the tests check it
// against a float64 reference forward pass of both, for llama (MHA and
// GQA, with and without biases), gpt2 and stories260k.
//
// # Output
//
// Kept values are copied bit for bit, in their dtype. With Remove set,
// config.json gets the new intermediate_size (gpt2: n_inner) and, for
// heads, num_attention_heads, num_key_value_heads and head_dim (written
// because hidden_size/num_attention_heads no longer gives it); other keys
// are kept (re-encoded with sorted keys, as transformers writes them). A
// quantization_config is dropped, since every tensor is written dense.
// lmsparse.json records the units removed per block, the config changes
// and, per tensor, the shape after.
//
// # Plan, then execute
//
// [Plan] checks the options, the architecture and every tensor's shape
// from the headers; [Job.Execute] reads the coupled weights block by block
// to score the units, then writes each tensor, one at a time, into a
// [checkpoint.Output] the caller commits. Memory is about twice the
// largest tensor. Requests that cannot be carried out exactly wrap
// [ErrInvalid].
package shrink
