// Package report holds the report of a compress run — report.json, whose
// schema is versioned ([Schema]) — and renders it as Markdown sized for a
// CI job summary. The self-contained HTML page with charts is package
// report/html's, so that reading or writing report.json does not pull in
// the plotting library.
//
// # report.json
//
// [Report] is the schema: the tool version, the inputs with sha256, the
// effective recipe, every tensor's encoding, sparsity and bytes before and
// after, the totals, the sparse-autoencoder statistics, the recovery of a
// recover stage ([Recovery]: its training setup and data, tokens and
// speed, the loss of every step, and the fidelity of the pruned model
// before recovery), fidelity against the original model (perplexity, bits
// per byte, KL percentiles, top-1 agreement; after recovery when there is
// one), each gate with its threshold, value and verdict, the sweep points
// (each with its prune method: a sweep may compare several, and
// best_passing_sparsity is the run's own method's), stage timings and
// peak RSS. Fields are only added within a schema version (recovery and a
// point's method were added to v1; a point without a method is the run's
// own, [Report.MethodOf]); [Load] refuses another version.
//
// # Markdown
//
// [Report.Markdown] starts with a one-line headline ([Report.Headline]:
// size, perplexity before and after, and, when the sweep compares methods
// at the run's sparsity, each method's perplexity ratio there), then a
// totals table, the recovery ([Recovery.Summary] and a table of
// perplexity, KL and top-1 for the original, the pruned and the recovered
// model), the gate verdicts, the sweep and a per-layer table
// ([Report.Layers]). It is a pure function of the Report, as the HTML page
// of package report/html is, so "lmsparse report OUT" re-renders both from
// report.json alone.
package report
