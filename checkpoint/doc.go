// Package checkpoint opens Hugging Face checkpoints and writes them back.
//
// # Opening
//
// [Open] accepts a checkpoint directory — config.json plus either
// model.safetensors or model.safetensors.index.json and its shards — or a
// single .safetensors file (a config.json beside it is read when present).
// It validates every file before returning: the config ([ParseConfig]
// normalizes llama, mistral, qwen2 and gpt2 configs into a [Config]), the
// index (every shard name must stay inside the directory, every shard must
// exist, and tensors must be where the index says), and each safetensors
// header. Tensors are then read lazily by name from memory-mapped files;
// [Model.Names] lists them in natural order (layers.2 before layers.10).
//
// Errors name the file and wrap [ErrFormat] for malformed input or
// [ErrUnsupported] for input lmsparse cannot handle (an unknown
// model_type); safetensors errors wrap safetensors.ErrFormat.
//
// # Writing
//
// [WriteDir] writes a checkpoint directory: tensors as safetensors, sharded
// when they exceed the shard size (5 GB by default, as Hugging Face) with an
// index, plus the config, tokenizer and generation files of the input.
// It never writes into the input directory, refuses a non-empty output
// directory unless forced ([CheckOutput] checks this before any work), and
// writes each file atomically. Tensors stream one at a time, so memory stays
// bounded by the largest tensor a caller materializes, not by the model.
package checkpoint
