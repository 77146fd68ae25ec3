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
// gates, the charts, the sweep (a row per sparsity and method), and the
// per-layer and per-tensor tables, then the stage timings and peak RSS.
// It is a pure function of the Report: the same report.json renders the
// same bytes.
//
// # Charts
//
// [Charts] draws, with gonum.org/v1/plot, the sparsity per layer, the
// bytes per layer before and after, with a sweep of more than one
// sparsity the perplexity and mean KL against sparsity, and with a
// recover stage the loss of every step ([LossChart], id recover-loss),
// each as a standalone SVG document ([Chart]); the page inlines the same
// SVG. [LayerSparsityChart], [LayerBytesChart], [SweepChart] and
// [LossChart] return the plots themselves, for other sizes or formats.
//
// The sweep charts draw one line per prune method of the sweep (the
// recipe's sweep_methods), with a legend; the perplexity chart adds the
// original model's perplexity as a dashed horizontal line. Its y axis is
// logarithmic when the values span 10× or more, labelled at 1, 2 and 5 of
// every decade ([Ticks125]), and linear otherwise, so it always has
// numbers.
//
// Package report, which holds the schema, does not import this package or
// gonum.org/v1/plot.
package html
