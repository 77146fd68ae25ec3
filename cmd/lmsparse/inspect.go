package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
		details: `MODEL is a Hugging Face checkpoint directory (config.json with model.safetensors
or model.safetensors.index.json and its shards), a single .safetensors file, or
an ONNX model (.onnx, initializers listed, external data included).

The table lists, per tensor: dtype, shape, parameters, bytes, the fraction of
exact zeros (+0 and -0), and the number of NaN and Inf values. Every file is
validated before anything is printed; a bad file exits with code 2.

--json prints the same facts as one JSON object (schema "lmsparse.inspect/v1",
documented in README.md).`,
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

// inspectReport is the --json output. Its schema is versioned: fields are
// only ever added within a version.
type inspectReport struct {
	Schema       string            `json:"schema"`
	Path         string            `json:"path"`
	Format       string            `json:"format"`
	Files        []inspectFile     `json:"files"`
	Architecture *inspectArch      `json:"architecture"`
	Metadata     map[string]string `json:"metadata"`
	Tensors      []inspectTensor   `json:"tensors"`
	Totals       inspectTotals     `json:"totals"`
}

type inspectFile struct {
	Name  string `json:"name"`
	Bytes int64  `json:"bytes"`
}

type inspectArch struct {
	ModelType        string   `json:"model_type"`
	Architectures    []string `json:"architectures"`
	Layers           int      `json:"layers"`
	HiddenSize       int      `json:"hidden_size"`
	Heads            int      `json:"heads"`
	KVHeads          int      `json:"kv_heads"`
	HeadDim          int      `json:"head_dim"`
	IntermediateSize int      `json:"intermediate_size"`
	VocabSize        int      `json:"vocab_size"`
	Context          int      `json:"context"`
	TiedEmbeddings   bool     `json:"tied_embeddings"`
	TorchDType       string   `json:"torch_dtype,omitempty"`
}

type inspectTensor struct {
	Name       string   `json:"name"`
	DType      string   `json:"dtype"`
	Shape      []int64  `json:"shape"`
	Parameters int64    `json:"parameters"`
	Bytes      int64    `json:"bytes"`
	Zeros      *int64   `json:"zeros"` // null for passthrough dtypes
	ZeroFrac   *float64 `json:"zero_fraction"`
	NaN        *int64   `json:"nan"`
	Inf        *int64   `json:"inf"`
	File       string   `json:"file"`
}

type inspectTotals struct {
	Tensors    int     `json:"tensors"`
	Parameters int64   `json:"parameters"`
	Bytes      int64   `json:"bytes"`
	FileBytes  int64   `json:"file_bytes"`
	Zeros      int64   `json:"zeros"`
	ZeroFrac   float64 `json:"zero_fraction"` // of scanned parameters
	NaN        int64   `json:"nan"`
	Inf        int64   `json:"inf"`
	Unscanned  int     `json:"unscanned_tensors"` // passthrough dtypes
}

func runInspect(ctx context.Context, o inspectOptions, stdout, stderr io.Writer) error {
	if file, ok := onnxPath(o.Model); ok {
		return inspectONNX(ctx, file, o, stdout)
	}
	m, err := checkpoint.Open(o.Model)
	if err != nil {
		return err
	}
	defer m.Close()
	rep, err := buildInspect(ctx, m)
	if err != nil {
		return err
	}
	if o.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return printInspect(stdout, rep)
}

func buildInspect(ctx context.Context, m *checkpoint.Model) (*inspectReport, error) {
	rep := &inspectReport{Schema: "lmsparse.inspect/v1", Path: m.Path, Format: "safetensors", Metadata: m.Metadata()}
	for _, f := range m.Files {
		st, err := os.Stat(f)
		if err != nil {
			return nil, err
		}
		rep.Files = append(rep.Files, inspectFile{Name: rel(m.Dir, f), Bytes: st.Size()})
		rep.Totals.FileBytes += st.Size()
	}
	if c := m.Config; c != nil {
		rep.Architecture = &inspectArch{
			ModelType: c.ModelType, Architectures: c.Architectures, Layers: c.NumLayers,
			HiddenSize: c.HiddenSize, Heads: c.NumHeads, KVHeads: c.NumKVHeads, HeadDim: c.HeadDim,
			IntermediateSize: c.IntermediateSize, VocabSize: c.VocabSize, Context: c.MaxPositions,
			TiedEmbeddings: c.TieWordEmbeddings, TorchDType: c.TorchDType,
		}
	}
	buf := make([]byte, 4<<20) // a multiple of every element size
	var scanned int64
	for _, name := range m.Names() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, _ := m.Tensor(name)
		params, err := info.Shape.Elems()
		if err != nil {
			return nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
		}
		row := inspectTensor{Name: name, DType: string(info.DType), Shape: []int64(info.Shape),
			Parameters: params, Bytes: info.Size, File: rel(m.Dir, info.File)}
		if row.Shape == nil {
			row.Shape = []int64{}
		}
		if info.DType.Known() {
			st, err := scanTensor(m, name, info.DType, buf)
			if err != nil {
				return nil, fmt.Errorf("%s: tensor %q: %w", info.File, name, err)
			}
			frac := 0.0
			if params > 0 {
				frac = float64(st.Zeros) / float64(params)
			}
			row.Zeros, row.ZeroFrac, row.NaN, row.Inf = &st.Zeros, &frac, &st.NaN, &st.Inf
			rep.Totals.Zeros += st.Zeros
			rep.Totals.NaN += st.NaN
			rep.Totals.Inf += st.Inf
			scanned += params
		} else {
			rep.Totals.Unscanned++
		}
		rep.Tensors = append(rep.Tensors, row)
		rep.Totals.Tensors++
		rep.Totals.Parameters += params
		rep.Totals.Bytes += info.Size
	}
	if scanned > 0 {
		rep.Totals.ZeroFrac = float64(rep.Totals.Zeros) / float64(scanned)
	}
	return rep, nil
}

// scanTensor counts zeros, NaNs and Infs, streaming the tensor through buf
// so that memory stays bounded whatever the tensor's size.
func scanTensor(m *checkpoint.Model, name string, dt tensor.DType, buf []byte) (tensor.Stats, error) {
	var st tensor.Stats
	sec, err := m.Section(name)
	if err != nil {
		return st, err
	}
	for {
		n, err := io.ReadFull(sec, buf)
		if n > 0 {
			if aerr := st.Add(dt, buf[:n]); aerr != nil {
				return st, aerr
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return st, nil
		}
		if err != nil {
			return st, err
		}
	}
}

func rel(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil {
		return r
	}
	return path
}

func printInspect(w io.Writer, rep *inspectReport) error {
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
