// Package compress runs "lmsparse compress": a recipe's stages, always in
// the order prune → sae → recover → store → eval → gates (a stage that is
// absent is skipped), on one model, into one output directory with the
// checkpoint, lmsparse.json and the reports (package report).
//
// # Recipes
//
// A [Recipe] is YAML, read strictly by [ParseRecipe] and [LoadRecipe]: an
// unknown key, a wrong type or an inconsistent stage is an [ErrInvalid]
// error naming the file and line. [Recipe.Apply] merges command-line
// overrides ([Override]) and [Recipe.Normalize] checks the whole and
// writes the defaults in, so the recipe printed and kept in the report
// reads as what runs. Its keys: version; prune (method, sparsity, scope,
// pattern, structured, shrink, include, exclude, overrides, calib, owl,
// damp, block_size); sae; recover; store (format, max_shard_size); eval (text,
// ctx, stride, max_tokens); gates (max_ppl_ratio, max_kl, min_top1);
// sweep and sweep_methods.
//
// prune.structured takes rows or cols (single tensors, zeroed in place)
// or whole units, mlp, heads, qheads or a list (package shrink): those are
// zeroed, or removed with shrink: true — the store stage then writes the
// smaller checkpoint and config.json through shrink.Job and the eval stage
// runs it; with prune.calib the units are scored by their activations
// (as prune --method wanda). A stage of units takes no scope, include,
// exclude or overrides, and no sweep, recovery or sparse store
// (Recipe.Units).
//
// # Plan and Run
//
// [NewPlan] checks a run — the recipe, the output location, the prune
// targets of every method it will use, the autoencoder, the recovery, the
// eval text and the original model — and writes nothing; [Plan.Run] does
// the work and returns the [report.Report]. A failing gate is not a
// failed run: Run writes everything and returns the report with an error
// wrapping [ErrGateFailed].
//
// # Sweeps
//
// sweep: [S1, S2, ...] prunes the original at each sparsity (one-shot:
// dense, in a staging directory beside the output that is never
// committed; no sae, no recovery, no per-glob overrides), scores it
// against the original on the eval text and records a point per
// sparsity. sweep_methods: [magnitude, wanda, sparsegpt] (flag
// --sweep-methods) evaluates every sweep sparsity with each listed method,
// to compare them; the prune stage's other options (scope, include,
// exclude, calib, owl, damp, block_size) stay the recipe's, and the
// calibrated methods use one set of calibration windows, the prune
// stage's (magnitude needs none). The list must include the prune stage's
// own method: the report's highest passing sparsity (report.Report.Best)
// is that method's. Empty means the prune stage's method alone, which
// Normalize writes in. sweep_methods needs a sweep and an unstructured
// prune stage (an N:M pattern cannot be swept at all), and wanda and
// sparsegpt do not take scope global. When the sweep holds the run's own
// sparsity, the headline (report.Report.Headline) ends with each method's
// perplexity ratio there, best first.
//
// With Options.FindSparsity, Run instead bisects for the highest
// sparsity of the prune stage's method passing every gate and runs the
// recipe at it.
//
// # Sharded sweeps
//
// A run with a sweep splits across processes or machines into the same
// output. Its work units are the main pass (unit 0: find-sparsity is not
// allowed; the sae stage, prune and write or recover, the eval stage and
// the gates) and one unit per sweep point (unit k ≥ 1 is the (k−1)th
// point of report.Report.Sweep: sparsity by sparsity, and within one in
// the order of sweep_methods). With Options.Shard = model.Shard{I, N},
// [Plan.RunShard] runs the contiguous units [⌊I·U/N⌋, ⌊(I+1)·U/N⌋) of
// the U = 1 + sparsities × methods (model.Shard.Range), each exactly as
// Run does: a shard computes the run's calibration windows itself (same
// data, same seed) when one of its units needs them, and prunes its
// points in a scratch directory beside OUT named after the shard
// (.OUT.lmsparse-sweep-I-of-N), so shards sharing OUT's directory never
// share one. The shard holding unit 0 (shard 0 when U ≥ N; with N > U
// some shards are empty) writes and commits OUT — the checkpoint and
// lmsparse.json, byte for byte Run's — but no reports; NewPlan checks the
// output location only in that shard, and the others never touch OUT. A
// failing gate is not an error of a shard.
//
// Each shard writes a [Partial] (JSON, schema [PartialSchema]): its
// index, unit range, the main pass's report.Report (without sweep,
// timings, peak RSS and recipe), its points, its timings and peak RSS,
// and the run's identity [RunID] — model path and every model file's size
// and sha256 (from the prunes, which hash the input as they read it; a
// shard without units hashes it itself), OUT, the eval text's and a
// calibration file's path, size and sha256, the normalized recipe (every
// setting), the shard size, U, N and the lmsparse build. [Merge] (and
// [MergeFiles], [MergeInto], behind "lmsparse report --merge") takes the
// partials in any order and refuses, with an error wrapping [ErrPartial]
// and [ErrInvalid], a missing or duplicated shard, a file that is not a
// whole partial, or partials whose identities differ, naming the first
// field that differs (recipe keys by dotted path: recipe.eval.max_tokens).
// It returns the main pass's report with every shard's points in unit
// order and the highest passing sparsity recomputed over them, so that
// report.json, report.md and report.html are the one-machine run's byte
// for byte apart from the timings: the merged timings are the main pass's
// stages, then sweep and total, each summed over the shards (machine
// time), and the peak RSS is the largest shard's. The numbers are those
// of the shards' scorings, which equal a one-machine run's on one kind of
// CPU (matrix kernel): whether the forward pass keeps a pruned weight
// sparse (model.Options.Sparse "auto" times both kernels for large
// weights) does not change a bit of them. [MergeInto] writes the
// three reports into a directory (OUT, normally) and, like Run, returns
// an error wrapping [ErrGateFailed] when a gate failed.
package compress
