package report

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// Headline is the one-line summary at the top of report.md (and of the
// HTML page): size, quality, with a sweep comparing methods at the run's
// sparsity the perplexity ratio of each (best first, see
// [Report.Comparison]), and the gate verdict.
func (r *Report) Headline() string {
	var b strings.Builder
	mark := "✅"
	if !r.Passed {
		mark = "❌"
	}
	t := r.Totals
	if t.AutoBytes > 0 && t.AutoBytes < t.BytesAfter && t.PrunedTensors > 0 {
		// Pruned but stored dense: say what was done, not "1.00× smaller".
		fmt.Fprintf(&b, "%s lmsparse: %s: %.0f%% of the pruned tensors' weights zeroed, stored dense as a drop-in (%s → %s; --format auto would write %s)",
			mark, r.Model, 100*t.TargetSparsity, HumanBytes(t.BytesBefore), HumanBytes(t.BytesAfter), HumanBytes(t.AutoBytes))
	} else if t.Ratio > 0 && t.Ratio < 1 {
		fmt.Fprintf(&b, "%s lmsparse: %s is %.2f× LARGER (%s → %s)", mark, r.Model, 1/t.Ratio, HumanBytes(t.BytesBefore), HumanBytes(t.BytesAfter))
	} else {
		fmt.Fprintf(&b, "%s lmsparse: %s is %.2f× smaller (%s → %s)", mark, r.Model, t.Ratio, HumanBytes(t.BytesBefore), HumanBytes(t.BytesAfter))
	}
	if f := r.Fid; f != nil {
		fmt.Fprintf(&b, "; perplexity %s → %s (×%.3f), KL %.4g, top-1 %.1f%%", num(f.BasePPL), num(f.PPL), f.PPLRatio, f.KLMean, 100*f.Top1)
	}
	if c := r.Comparison(); c != nil {
		fmt.Fprintf(&b, "; at %s sparsity, perplexity", percent(c[0].Sparsity))
		for i, p := range c {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, " ×%.3f with %s", p.PPLRatio, p.Method)
		}
	}
	switch failed := r.FailedGates(); {
	case len(r.Gates) == 0:
	case len(failed) == 0:
		b.WriteString(" — all gates passed")
	default:
		fmt.Fprintf(&b, " — gates failed: %s", strings.Join(failed, ", "))
	}
	return b.String()
}

// Markdown renders report.md: a headline, a totals table, fidelity, gates,
// the sweep, and a per-layer table — sized for a CI job summary.
func (r *Report) Markdown() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "### %s\n\n", r.Headline())
	for _, n := range r.Notes {
		fmt.Fprintf(&b, "> ⚠️ %s\n\n", n)
	}
	b.WriteString("| | before | after |\n|---|---:|---:|\n")
	t := r.Totals
	fmt.Fprintf(&b, "| tensor bytes | %s | %s (%.3f× smaller) |\n", Commas(t.BytesBefore), Commas(t.BytesAfter), t.Ratio)
	if t.FileBytesAfter > 0 {
		fmt.Fprintf(&b, "| weight files | %s | %s |\n", Commas(t.FileBytesBefore), Commas(t.FileBytesAfter))
	}
	fmt.Fprintf(&b, "| parameters | %s | %s nonzero |\n", Commas(t.Parameters), Commas(t.Nonzeros))
	fmt.Fprintf(&b, "| sparsity | | %.2f%% (pruned tensors %.2f%%, %d of %d tensors pruned) |\n", 100*t.Sparsity, 100*t.TargetSparsity, t.PrunedTensors, t.Tensors)
	if f := r.Fid; f != nil {
		fmt.Fprintf(&b, "| perplexity | %s | %s (×%.4f) |\n", num(f.BasePPL), num(f.PPL), f.PPLRatio)
		fmt.Fprintf(&b, "| bits per byte | %.4f | %.4f |\n", f.BaseBitsPerByte, f.BitsPerByte)
		fmt.Fprintf(&b, "| KL(base‖model) | | mean %.4g, p50 %.4g, p90 %.4g, p99 %.4g, max %.4g |\n", f.KLMean, f.KLP50, f.KLP90, f.KLP99, f.KLMax)
		fmt.Fprintf(&b, "| top-1 agreement | | %.2f%% |\n", 100*f.Top1)
		fmt.Fprintf(&b, "\nFidelity on `%s`: %s tokens, %s scored, ctx %d, stride %d.\n", f.Text, Commas(int64(f.Tokens)), Commas(int64(f.Scored)), f.Ctx, f.Stride)
	}
	if c := r.Calibration; c != nil {
		fmt.Fprintf(&b, "\nPruned by %s, calibrated on %d windows of %d tokens from %s", c.Method, c.Samples, c.Len, c.Source)
		if len(c.LayerSparsity) > 0 {
			b.WriteString(" (OWL block sparsities:")
			for _, s := range c.LayerSparsity {
				fmt.Fprintf(&b, " %.3f", s)
			}
			b.WriteString(")")
		}
		b.WriteString(".\n")
	}
	if r.Structured != "" {
		fmt.Fprintf(&b, "\nStructured pruning: %s.\n", r.Structured)
	}
	if s := r.SAE; s != nil {
		fmt.Fprintf(&b, "\nSparse autoencoder on `%s`: %d latents, ", Escape(s.Tensor), s.Latents)
		if s.K > 0 {
			fmt.Fprintf(&b, "k %d", s.K)
		} else {
			fmt.Fprintf(&b, "L1 %g", s.L1)
		}
		fmt.Fprintf(&b, "; %s → %s bytes; FVU %.4f, mean cosine %.4f, L0 %.2f, %d dead latents.\n",
			Commas(s.BytesBefore), Commas(s.BytesAfter), s.FVU, s.Cosine, s.L0, s.Dead)
	}
	if rc := r.Recovery; rc != nil {
		b.WriteString("\n#### Recovery\n\n")
		b.WriteString(rc.Summary())
		b.WriteString("\n")
		if f, a := rc.Before, r.Fid; f != nil && a != nil {
			b.WriteString("\n| | original | pruned | recovered |\n|---|---:|---:|---:|\n")
			fmt.Fprintf(&b, "| perplexity | %s | %s (×%.4f) | %s (×%.4f) |\n", num(a.BasePPL), num(f.PPL), f.PPLRatio, num(a.PPL), a.PPLRatio)
			fmt.Fprintf(&b, "| KL(base‖model) mean | | %.4g | %.4g |\n", f.KLMean, a.KLMean)
			fmt.Fprintf(&b, "| top-1 agreement | | %.2f%% | %.2f%% |\n", 100*f.Top1, 100*a.Top1)
		}
	}
	if len(r.Gates) > 0 {
		b.WriteString("\n#### Gates\n\n| gate | threshold | value | verdict |\n|---|---:|---:|---|\n")
		for _, g := range r.Gates {
			v := "✅ pass"
			if !g.Passed {
				v = "❌ FAIL"
			}
			fmt.Fprintf(&b, "| %s | %s %.6g | %.6g | %s |\n", g.Name, g.Op, g.Threshold, g.Value, v)
		}
	}
	if len(r.Sweep) > 0 {
		b.WriteString("\n#### Sparsity sweep\n\n| sparsity | method | perplexity | ppl ratio | KL mean | top-1 | bytes | gates |\n|---:|---|---:|---:|---:|---:|---:|---|\n")
		for _, p := range r.Sweep {
			v := ""
			if p.Passed != nil {
				v = "❌"
				if *p.Passed {
					v = "✅"
				}
			}
			fmt.Fprintf(&b, "| %.3g | %s | %s | %.4f | %.4g | %.2f%% | %s | %s |\n", p.Sparsity, r.MethodOf(p), num(p.PPL), p.PPLRatio, p.KLMean, 100*p.Top1, Commas(p.Bytes), v)
		}
		if r.Best != nil {
			fmt.Fprintf(&b, "\nHighest sparsity passing every gate%s: **%.3g**.\n", r.BestOf(), *r.Best)
		} else if len(r.Gates) > 0 {
			fmt.Fprintf(&b, "\nNo sparsity of the sweep%s passes every gate.\n", r.BestOf())
		}
	}
	b.WriteString("\n#### Layers\n\n| layer | parameters | sparsity | bytes before | bytes after |\n|---|---:|---:|---:|---:|\n")
	for _, l := range r.Layers() {
		fmt.Fprintf(&b, "| %s | %s | %.2f%% | %s | %s |\n", strings.ReplaceAll(Escape(l.Name), "|", `\|`), Commas(l.Parameters), 100*l.Sparsity(), Commas(l.BytesBefore), Commas(l.BytesAfter))
	}
	if len(r.Timings) > 0 {
		var parts []string
		for _, tm := range r.Timings {
			parts = append(parts, fmt.Sprintf("%s %.2fs", tm.Stage, tm.Seconds))
		}
		fmt.Fprintf(&b, "\n<sub>%s · %s · peak RSS %s</sub>\n", r.Tool, strings.Join(parts, ", "), HumanBytes(r.PeakRSS))
	}
	return b.Bytes()
}

// BestOf names, in parentheses after a space, the method [Report.Best]
// is of when the sweep compares methods, or returns "" when it does not.
func (r *Report) BestOf() string {
	if len(r.SweepMethods()) < 2 {
		return ""
	}
	m, _ := r.PruneStage()
	return " (" + m + ", the run's method)"
}

// percent formats a fraction as a percentage with up to 3 significant
// digits ("50%", "33.3%").
func percent(x float64) string { return strconv.FormatFloat(100*x, 'g', 3, 64) + "%" }

// Summary describes the recovery in one sentence: setup, data, loss and
// speed.
func (rc *Recovery) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Recovered by %d steps of %d×%d tokens", rc.Steps, rc.Batch, rc.Ctx)
	if rc.Accum > 1 {
		fmt.Fprintf(&b, " (%d batches per step)", rc.Accum)
	}
	fmt.Fprintf(&b, ", %s, lr %g", rc.Optimizer, rc.LR)
	if rc.Schedule != "" && rc.Schedule != "constant" {
		fmt.Fprintf(&b, " %s to %g", rc.Schedule, rc.MinLR)
	}
	if rc.Warmup > 0 {
		fmt.Fprintf(&b, " after %d warm-up steps", rc.Warmup)
	}
	fmt.Fprintf(&b, ", distill %g, on %d windows ", rc.Distill, rc.Data.Windows)
	if rc.Data.Source == "self" {
		fmt.Fprintf(&b, "sampled from the original (seed %d)", rc.Data.Seed)
	} else {
		fmt.Fprintf(&b, "of %s", rc.Data.Source)
	}
	if n := len(rc.Loss); n > 0 {
		fmt.Fprintf(&b, ": loss %.4f → %.4f", rc.Loss[0], rc.Loss[n-1])
	}
	fmt.Fprintf(&b, "; %s tokens in %.1f s (%s tokens/s).", Commas(rc.Tokens), rc.Seconds, Commas(int64(rc.TokensPerS+0.5)))
	return b.String()
}

// num prints a float with 6 significant digits, without exponent for
// ordinary perplexities.
func num(x float64) string { return fmt.Sprintf("%.6g", x) }

// Commas formats n with thousands separators.
func Commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// HumanBytes formats n bytes with a decimal unit ("1.04 MB").
func HumanBytes(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(1000), 0
	for m := n / 1000; m >= 1000; m /= 1000 {
		div *= 1000
		exp++
	}
	return fmt.Sprintf("%.2f %cB", float64(n)/float64(div), "kMGTPE"[exp])
}
