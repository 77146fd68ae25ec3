package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/tensor"
)

// inspectOptions are the inputs of "lmsparse inspect".
type inspectOptions struct {
	Model string
	JSON  bool
}

func inspectCommand() *command {
	return &command{
		name:    "inspect",
		summary: "Show a checkpoint's architecture and every tensor's dtype, shape, size, zeros and NaN/Inf counts",
		usage:   "inspect MODEL [--json]",
		details: help("inspect"),
		examples: []string{
			"lmsparse inspect ../shared/models/stories260k",
			"lmsparse inspect ./my-model/model.safetensors --json | jq .totals",
		},
		flags: func(fs *pflag.FlagSet) func(context.Context, []string, io.Writer, io.Writer) error {
			var o inspectOptions
			fs.BoolVar(&o.JSON, "json", false, "print a JSON report instead of a table")
			return func(ctx context.Context, args []string, stdout, stderr io.Writer) error {
				if len(args) != 1 {
					return usageErrorf("inspect: want exactly one MODEL argument, got %d (see 'lmsparse inspect --help')", len(args))
				}
				o.Model = args[0]
				return runInspect(ctx, o, stdout, stderr)
			}
		},
	}
}

func runInspect(ctx context.Context, o inspectOptions, stdout, stderr io.Writer) error {
	var rep *checkpoint.InspectReport
	if file, ok := checkpoint.ONNXPath(o.Model); ok {
		r, err := checkpoint.InspectONNX(ctx, file, o.Model)
		if err != nil {
			return err
		}
		rep = r
	} else {
		m, err := checkpoint.Open(o.Model)
		if err != nil {
			return err
		}
		defer m.Close()
		if rep, err = checkpoint.Inspect(ctx, m); err != nil {
			return err
		}
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printInspect(stdout, rep)
}

func printInspect(w io.Writer, rep *checkpoint.InspectReport) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "model\t%s\n", rep.Path)
	var files []string
	for _, f := range rep.Files {
		files = append(files, f.Name)
	}
	fmt.Fprintf(tw, "files\t%s (%s)\n", strings.Join(files, ", "), report.HumanBytes(rep.Totals.FileBytes))
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
	tab := &textTable{right: map[int]bool{3: true, 4: true, 5: true, 6: true, 7: true}}
	tab.add("NAME", "DTYPE", "SHAPE", "PARAMS", "BYTES", "ZEROS", "NAN", "INF")
	for _, t := range rep.Tensors {
		zeros, nan, inf := "-", "-", "-"
		if t.Zeros != nil {
			zeros = fmt.Sprintf("%.2f%%", 100**t.ZeroFrac)
			nan, inf = report.Commas(*t.NaN), report.Commas(*t.Inf)
		}
		tab.add(t.Name, t.DType, tensor.Shape(t.Shape).String(), report.Commas(t.Parameters), report.Commas(t.Bytes), zeros, nan, inf)
	}
	tot := rep.Totals
	tab.add(fmt.Sprintf("total (%d tensors)", tot.Tensors), "", "", report.Commas(tot.Parameters), report.Commas(tot.Bytes),
		fmt.Sprintf("%.2f%%", 100*tot.ZeroFrac), report.Commas(tot.NaN), report.Commas(tot.Inf))
	if err := tab.write(w); err != nil {
		return err
	}
	if tot.Unscanned > 0 {
		fmt.Fprintf(w, "%d tensors have dtypes lmsparse does not decode; their values were not scanned.\n", tot.Unscanned)
	}
	return nil
}
