// Package report holds the report of a compress run — report.json, whose
// schema is versioned ([Schema]) — and renders it for people: Markdown
// sized for a CI job summary and a self-contained HTML page with charts.
//
// # report.json
//
// [Report] is the schema: the tool version, the inputs with sha256, the
// effective recipe, every tensor's encoding, sparsity and bytes before and
// after, the totals, the sparse-autoencoder statistics, fidelity against
// the original model (perplexity, bits per byte, KL percentiles, top-1
// agreement), each gate with its threshold, value and verdict, the sweep
// points, stage timings and peak RSS. Fields are only added within a
// schema version; [Load] refuses another version.
//
// # Markdown and HTML
//
// [Report.Markdown] starts with a one-line headline ([Report.Headline]),
// then a totals table, the gate verdicts, the sweep and a per-layer table.
// [Report.HTML] is one page with inline CSS and inline SVG charts drawn
// with gonum.org/v1/plot — sparsity per layer, bytes per layer, and with a
// sweep the perplexity and KL curves against sparsity — no scripts and no
// network. Both are pure functions of the Report, so "lmsparse report OUT"
// re-renders them from report.json alone.
package report
