// Package html renders the report of a compress run (a report.Report) as
// report.html: one self-contained page with inline CSS and inline SVG
// charts, no scripts and nothing fetched, so it opens from a CI artifact
// or a mail attachment as it is.
//
// # Page
//
// [Render] writes the headline (report.Report.Headline without its mark,
// and a PASS or FAIL badge), the totals, fidelity and sparse-autoencoder
// statistics, the recovery (its before/after table and loss curve), the
// gates, the charts, the sweep, and the per-layer and
// per-tensor tables, then the stage timings and peak RSS. It is a pure
// function of the Report: the same report.json renders the same bytes.
//
// # Charts
//
// [Charts] draws, with gonum.org/v1/plot, the sparsity per layer, the
// bytes per layer before and after, with a sweep of more than one point
// the perplexity (log scale) and mean KL against sparsity, and with a
// recover stage the loss of every step ([LossChart], id recover-loss),
// each as a standalone SVG document ([Chart]); the page inlines the same
// SVG. [LayerSparsityChart], [LayerBytesChart], [SweepChart] and
// [LossChart] return the plots themselves, for other sizes or formats.
//
// Package report, which holds the schema, does not import this package or
// gonum.org/v1/plot.
package html
