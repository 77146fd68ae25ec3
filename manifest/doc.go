// Package manifest is the schema of lmsparse.json, the provenance record
// every command that writes a checkpoint puts beside it: the tool version,
// each input file with its size and sha256, the command and its settings,
// and per tensor the encoding, dtype, shape, nonzeros, sparsity and bytes
// before and after.
//
// # Schema
//
// [Manifest] is schema "lmsparse.manifest/v1" ([Schema]); fields are only
// ever added within a version. "lmsparse prune --json" prints it, and
// report.json (package report) embeds its tensor rows and totals. The SAE
// field is present only for outputs of "lmsparse sae". Structured pruning
// of whole units (package shrink) adds Shrink — the units, which were
// pruned in each block, the config.json changes — and, when the units were
// removed, each rewritten tensor's shape_after (shape stays the input's;
// nnz and sparsity count the removed values as pruned).
//
// # Inputs
//
// [HashFiles] hashes input files and the config and tokenizer files of
// their directory, in a stable order, naming them relative to it.
package manifest
