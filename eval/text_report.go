package eval

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/lmsparse/lmsparse/report"
)

// WriteText writes the report as the table "lmsparse eval" prints.
func (r *Report) WriteText(w io.Writer) error {
	tab := &report.Table{}
	tab.Add("model", r.Model)
	tab.Add("text", fmt.Sprintf("%s (%s bytes, %s tokens, tokenizer %s)", r.Text, report.Commas(r.TextBytes), report.Commas(int64(r.Tokens)), r.Tokenizer))
	tab.Add("windows", fmt.Sprintf("%d of ctx %d, stride %d", r.Windows, r.Ctx, r.Stride))
	tab.Add("scored", report.Commas(int64(r.Scored)))
	tab.Add("mean NLL", fmt.Sprintf("%.6f nats", r.MeanNLL))
	tab.Add("perplexity", fmt.Sprintf("%.6f", r.PPL))
	if r.BitsPerByte != nil {
		tab.Add("bits/byte", fmt.Sprintf("%.6f", *r.BitsPerByte))
	} else {
		tab.Add("bits/byte", "- (--max-tokens cut the text)")
	}
	if k := r.KL; k != nil {
		tab.Add("base", r.Base)
		tab.Add("base perplexity", fmt.Sprintf("%.6f", k.BasePPL))
		tab.Add("ln(ppl/base)", fmt.Sprintf("%.6f", k.LogPPLRatio))
		tab.Add("KL mean", fmt.Sprintf("%.6g nats", k.Mean))
		tab.Add("KL max", fmt.Sprintf("%.6g", k.Max))
		tab.Add("KL p99/p90/p50", fmt.Sprintf("%.6g / %.6g / %.6g", k.P99, k.P90, k.P50))
		tab.Add("top-1 agreement", fmt.Sprintf("%.4f%%", 100*k.Top1))
	}
	weights := ""
	if r.Streamed {
		weights = ", weights streamed"
	}
	tab.Add("speed", fmt.Sprintf("%.0f tokens/s (%d threads, %s kernel%s, %.2f s)", r.TokensPerS, r.Threads, r.Kernel, weights, r.Seconds))
	return tab.Write(w)
}

// Write writes the report to w as JSON ([Report.JSON]) or as the table
// ([Report.WriteText]).
func (r *Report) Write(w io.Writer, asJSON bool) error {
	if !asJSON {
		return r.WriteText(w)
	}
	b, err := r.JSON()
	if err == nil {
		_, err = w.Write(b)
	}
	return err
}

// JSON returns the report as "lmsparse eval --json" prints it: indented by
// two spaces, ending in a newline.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}
