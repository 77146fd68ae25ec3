// Package gen generates the model files lmsparse's tests need, from a fixed
// seed, so that no binary fixture is committed:
//
//   - tiny Hugging Face-layout llama and gpt2 checkpoints in F32, F16 or
//     BF16, as one model.safetensors or as shards with an index
//     ([WriteCheckpoint]);
//   - corrupted copies of a good safetensors file, each made by mutating the
//     good bytes in code ([Corruptions]);
//   - large synthetic safetensors files for benchmarks, written as a stream
//     ([WriteSynthetic]).
//
// Its safetensors encoder ([RawFile.Encode]) is deliberately independent of
// lmsparse's own writer: it writes whatever header it is given, in the
// order given, valid or not, so tests can check the reader against files
// that lmsparse itself would never produce.
//
// The package lives under testdata/ so that `go test ./...` does not list
// it; its own tests run with `go test ./testdata/gen/...` (part of the README's
// test command).
package gen
