package report

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/tensor"
)

// Table renders (for the command line's text output) rows as aligned columns separated by two spaces.
// Columns listed in right are right-aligned (numbers); others left-aligned.
type Table struct {
	rows [][]string
	// Right lists the right-aligned columns (numbers).
	Right map[int]bool
}

// Add appends a row. A cell holding control or bidirectional formatting
// characters (a tensor name with a newline or an ANSI escape, from an
// untrusted checkpoint) is shown escaped and quoted (see [Escape]).
func (t *Table) Add(cells ...string) {
	row := make([]string, len(cells))
	for i, c := range cells {
		row[i] = Escape(c)
	}
	t.rows = append(t.rows, row)
}

// Escape returns s unchanged when it prints safely on a terminal, else
// quoted with Go's escapes (strconv.Quote): s holds invalid UTF-8, a
// control character (C0, DEL, C1: newlines, ANSI escape sequences) or a
// bidirectional or other formatting character (category Cf).
func Escape(s string) string {
	if !utf8.ValidString(s) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if r < 0x20 || r >= 0x7f && r < 0xa0 || r >= 0x80 && unicode.Is(unicode.Cf, r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// Write renders the rows into w.
func (t *Table) Write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		line := make([]string, len(r))
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if t.Right[i] {
				line[i] = pad + c
			} else if i < len(r)-1 {
				line[i] = c + pad
			} else {
				line[i] = c
			}
		}
		b.WriteString(strings.TrimRight(strings.Join(line, "  "), " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteInspect prints an inspect report as "lmsparse inspect" shows it.
func WriteInspect(w io.Writer, rep *checkpoint.InspectReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", Escape(rep.Path))
	var files []string
	for _, f := range rep.Files {
		files = append(files, Escape(f.Name))
	}
	fmt.Fprintf(tw, "files\t%s (%s)\n", strings.Join(files, ", "), HumanBytes(rep.Totals.FileBytes))
	if a := rep.Architecture; a != nil {
		arch := a.ModelType
		if len(a.Architectures) > 0 {
			arch += " (" + strings.Join(a.Architectures, ", ") + ")"
		}
		fmt.Fprintf(tw, "type\t%s\n", arch)
		fmt.Fprintf(tw, "layers\t%d\n", a.Layers)
		fmt.Fprintf(tw, "hidden size\t%d\n", a.HiddenSize)
		fmt.Fprintf(tw, "heads\t%d (%d KV heads, head dim %d)\n", a.Heads, a.KVHeads, a.HeadDim)
		fmt.Fprintf(tw, "mlp size\t%d\n", a.IntermediateSize)
		fmt.Fprintf(tw, "vocab\t%d\n", a.VocabSize)
		fmt.Fprintf(tw, "context\t%d\n", a.Context)
		tied := "no (separate LM head)"
		if a.TiedEmbeddings {
			tied = "yes (LM head shares the token embedding)"
		}
		fmt.Fprintf(tw, "tied\t%s\n", tied)
	} else if rep.Format == "onnx" {
		fmt.Fprintf(tw, "type\tONNX model (IR %s, opset %s, producer %s)\n", rep.Metadata["ir_version"], rep.Metadata["opset"], strings.TrimSpace(rep.Metadata["producer"]))
	} else {
		fmt.Fprintf(tw, "type\tunknown (no config.json)\n")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	tab := &Table{Right: map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true}}
	tab.Add("NAME", "DTYPE", "SHAPE", "PARAMS", "BYTES", "ZEROS", "NAN", "INF")
	for _, t := range rep.Tensors {
		zeros, nan, inf := "-", "-", "-"
		if t.Zeros != nil {
			zeros = fmt.Sprintf("%.2f%%", 100**t.ZeroFrac)
			nan, inf = Commas(*t.NaN), Commas(*t.Inf)
		}
		tab.Add(t.Name, t.DType, tensor.Shape(t.Shape).String(), Commas(t.Parameters), Commas(t.Bytes), zeros, nan, inf)
	}
	tot := rep.Totals
	tab.Add(fmt.Sprintf("total (%d tensors)", tot.Tensors), "", "", Commas(tot.Parameters), Commas(tot.Bytes),
		fmt.Sprintf("%.2f%%", 100*tot.ZeroFrac), Commas(tot.NaN), Commas(tot.Inf))
	if err := tab.Write(w); err != nil {
		return err
	}
	if tot.Unscanned > 0 {
		fmt.Fprintf(w, "%d tensors have dtypes lmsparse does not decode; their values were not scanned.\n", tot.Unscanned)
	}
	return nil
}

// PrintManifest writes the manifest as lmsparse.json's JSON (asJSON) or as
// WriteManifest's table.
func PrintManifest(w io.Writer, rep *manifest.Manifest, asJSON bool) error {
	if !asJSON {
		return WriteManifest(w, rep)
	}
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	_, err = w.Write(js)
	return err
}

// WriteManifest prints a row per tensor, in the spirit of llama.cpp's
// quantize output, and the totals.
func WriteManifest(w io.Writer, rep *manifest.Manifest) error {
	tab := &Table{Right: map[int]bool{3: true, 4: true, 6: true, 8: true}}
	head := []string{"NAME", "SHAPE", "DTYPE", "SPARSITY", "BYTES", "", "AFTER", "ENCODING"}
	if rep.Calibration != nil {
		head = append(head, "RECON ERR") // ‖WX − ŴX‖²/‖WX‖² on the calibration data
	}
	tab.Add(head...)
	for _, t := range rep.Tensors {
		sp := "-"
		if t.Nonzeros != nil {
			sp = fmt.Sprintf("%.2f%%", 100*t.Sparsity)
		}
		shape := tensor.Shape(t.Shape).String()
		if t.ShapeAfter != nil {
			shape += "->" + tensor.Shape(t.ShapeAfter).String()
		}
		row := []string{t.Name, shape, t.DType, sp, Commas(t.BytesBefore), "->", Commas(t.BytesAfter), t.Shown()}
		if rep.Calibration != nil {
			row = append(row, "-")
			if t.ReconError != nil {
				row[8] = fmt.Sprintf("%.4f", *t.ReconError)
			}
		}
		tab.Add(row...)
	}
	if err := tab.Write(w); err != nil {
		return err
	}
	tot := rep.Totals
	_, err := fmt.Fprintf(w, "total: %d tensors (%d pruned), %s parameters, %s nonzeros (%.2f%% sparse; pruned tensors %.2f%%), %s -> %s bytes (%.3fx smaller)\n",
		tot.Tensors, tot.PrunedTensors, Commas(tot.Parameters), Commas(tot.Nonzeros), 100*tot.Sparsity, 100*tot.TargetSparsity,
		Commas(tot.BytesBefore), Commas(tot.BytesAfter), tot.Ratio)
	if g := GrowthWarning(rep); g != "" && err == nil {
		_, err = fmt.Fprintln(w, g)
	}
	if c := rep.Calibration; c != nil && err == nil {
		method := c.Method
		if c.Pipeline == "independent" {
			method += " (independent pipeline)"
		}
		_, err = fmt.Fprintf(w, "calibration: %s on %d windows of %d tokens from %s (token sha256 %.12s…)\n", method, c.Samples, c.Len, c.Source, c.TokensSHA256)
	}
	if err == nil {
		if note := StructuredNote(rep); note != "" {
			_, err = fmt.Fprintln(w, note)
		}
	}
	return err
}

// WriteSAE writes the text report of "lmsparse sae": the setup, the
// bytes and, per method (the autoencoder, an SVD baseline), its fidelity.
func WriteSAE(w io.Writer, model, out string, r *manifest.SAE, secs float64) error {
	tab := &Table{}
	tab.Add("model", model)
	tab.Add("output", out)
	tensorLine := fmt.Sprintf("%s %s %v", r.Tensor, r.DType, r.Shape)
	if r.TiedHead {
		tensorLine += " (tied: the LM head uses the rebuilt embedding too)"
	}
	tab.Add("tensor", tensorLine)
	method := fmt.Sprintf("TopK, %d latents, k %d", r.Latents, r.K)
	if r.Variant == "l1" {
		method = fmt.Sprintf("L1, %d latents, λ %g", r.Latents, r.L1)
	}
	refit := "least-squares codes"
	if !r.Refit {
		refit = "encoder codes"
	}
	tab.Add("autoencoder", fmt.Sprintf("%s; %d epochs, batch %d, lr %g, seed %d, %d threads, %s (%.1f s, final loss %.4f)",
		method, r.Epochs, r.Batch, r.LR, r.Seed, r.Threads, refit, secs, r.FinalLoss))
	tab.Add("tensor bytes", fmt.Sprintf("%s -> %s (%.2fx smaller)", Commas(r.TensorSize.Before), Commas(r.TensorSize.After), r.TensorSize.Ratio))
	tab.Add("model bytes", fmt.Sprintf("%s -> %s (%.2fx smaller)", Commas(r.ModelSize.Before), Commas(r.ModelSize.After), r.ModelSize.Ratio))
	if e := r.Eval; e != nil {
		tab.Add("eval", fmt.Sprintf("%s (%s tokens, ctx %d, %s scored); original perplexity %.4f", e.Text, Commas(int64(e.Tokens)), e.Ctx, Commas(int64(e.Scored)), e.BasePPL))
	}
	if err := tab.Write(w); err != nil {
		return err
	}
	fmt.Fprintln(w)
	rows := &Table{Right: map[int]bool{1: true, 2: true, 3: true, 4: true, 5: true, 6: true, 7: true, 8: true, 9: true}}
	rows.Add("METHOD", "BYTES", "FVU", "COSINE", "L0", "DEAD", "PPL", "KL MEAN", "KL P99", "TOP-1")
	opt := func(v *float64, f string) string {
		if v == nil {
			return "-"
		}
		return fmt.Sprintf(f, *v)
	}
	for _, x := range r.Rows {
		name := "sae"
		if x.Method == "svd" {
			name = fmt.Sprintf("svd rank %d", x.Rank)
		}
		dead := "-"
		if x.Dead != nil {
			dead = fmt.Sprint(*x.Dead)
		}
		var top1 *float64
		if x.Top1 != nil {
			t := 100 * *x.Top1
			top1 = &t
		}
		rows.Add(name, Commas(x.Bytes), fmt.Sprintf("%.4f", x.FVU), fmt.Sprintf("%.4f", x.Cosine), opt(x.L0, "%.2f"), dead,
			opt(x.PPL, "%.4f"), opt(x.KLMean, "%.4f"), opt(x.KLP99, "%.4f"), opt(top1, "%.2f%%"))
	}
	return rows.Write(w)
}

// GrowthWarning returns a one-line warning when the layout chosen for some
// pruned tensors is larger than the tensor dense (an explicit sparse
// format at low sparsity: ONNX's int64 indices take 8 bytes per stored
// value, CSR's int32 ones 4), naming the count, the encodings and the
// bytes lost; "" when no tensor grew. --format auto never grows a tensor.
func GrowthWarning(rep *manifest.Manifest) string {
	var n int
	var extra int64
	encs := map[string]int{}
	for _, t := range rep.Tensors {
		if t.Pruned && t.BytesAfter > t.BytesBefore {
			n++
			extra += t.BytesAfter - t.BytesBefore
			encs[t.Encoding]++
		}
	}
	if n == 0 {
		return ""
	}
	var parts []string
	for _, e := range slices.Sorted(maps.Keys(encs)) {
		parts = append(parts, fmt.Sprintf("%d %s", encs[e], e))
	}
	return fmt.Sprintf("warning: %d pruned tensors (%s) are larger in their layout than dense, %s bytes more in all; --format auto keeps the smaller per tensor",
		n, strings.Join(parts, ", "), Commas(extra))
}

// StructuredNote says what structured pruning did to the shapes: rows or
// columns zeroed with every shape kept, or whole units removed (with the
// config.json changes). It is "" for other methods.
func StructuredNote(rep *manifest.Manifest) string {
	if s := rep.Shrink; s != nil {
		if !s.Removed {
			return fmt.Sprintf("structured %s: the pruned units are zeros and every shape is kept (--shrink removes them)", s.Units)
		}
		var ch []string
		for _, k := range slices.Sorted(maps.Keys(s.Config)) {
			if v := s.Config[k]; v[0] != v[1] {
				ch = append(ch, fmt.Sprintf("%s %d -> %d", k, v[0], v[1]))
			}
		}
		if len(ch) == 0 {
			return fmt.Sprintf("structured %s: nothing removed at this sparsity", s.Units)
		}
		return fmt.Sprintf("structured %s: units removed, shapes and config.json shrunk (%s)", s.Units, strings.Join(ch, ", "))
	}
	for _, st := range []string{"rows", "cols"} {
		if strings.HasPrefix(rep.Method, "structured "+st) {
			return fmt.Sprintf("structured %s: the pruned %s are zeros and every shape is kept (--structured mlp|heads|qheads --shrink removes whole MLP channels or attention heads)", st, st)
		}
	}
	return ""
}

// WriteNotes prints notes (what a command did beside its work that the
// user may want to know, such as removing what an interrupted run left),
// one line each: "lmsparse: note: …".
func WriteNotes(w io.Writer, notes []string) {
	for _, n := range notes {
		fmt.Fprintf(w, "lmsparse: note: %s\n", Escape(n))
	}
}

// WriteTraining writes the text summary of "lmsparse finetune": the run,
// the L1 target and recovery steps when there were any, the eval before
// and after, and what was written to out.
func WriteTraining(w io.Writer, out string, t *manifest.Training, tot manifest.Totals) error {
	fmt.Fprintf(w, "trained %d steps of %d×%d tokens (%s, lr %g) on %s: loss %.4f -> %.4f, %.0f tokens/s\n",
		t.Steps, t.Batch, t.Ctx, t.Optimizer, t.LR, t.Data.Source, t.Loss[0], t.Loss[len(t.Loss)-1], t.TokensPerS)
	if t.TargetSparsity > 0 {
		fmt.Fprintf(w, "%.2f%% of target weights zero after training; pruned to %.0f%% by magnitude", 100*t.SparsityReached, 100*t.TargetSparsity)
		if t.RecoverLoss != nil {
			fmt.Fprintf(w, ", then %d steps: loss %.4f -> %.4f", t.RecoverSteps, t.RecoverLoss[0], t.RecoverLoss[len(t.RecoverLoss)-1])
		}
		fmt.Fprintln(w)
	}
	if t.Before != nil {
		fmt.Fprintf(w, "before: %s\nafter:  %s\n", t.Before, t.After)
	}
	_, err := fmt.Fprintf(w, "wrote %s: %.2f%% of target weights zero, %s bytes\n", out, 100*tot.TargetSparsity, Commas(tot.BytesAfter))
	return err
}

// WriteOutcome writes what a compress run (or a merge of its shards)
// prints: the headline on stdout, then each warning and each failed gate
// as a line "lmsparse: VERB: …" on stderr.
func (r *Report) WriteOutcome(stdout, stderr io.Writer, verb string) {
	fmt.Fprintln(stdout, r.Headline())
	for _, n := range r.Notes {
		fmt.Fprintf(stderr, "lmsparse: %s: warning: %s\n", verb, n)
	}
	for _, g := range r.Gates {
		if !g.Passed {
			fmt.Fprintf(stderr, "lmsparse: %s: gate %s failed: %.6g is not %s %.6g\n", verb, g.Name, g.Value, g.Op, g.Threshold)
		}
	}
}
