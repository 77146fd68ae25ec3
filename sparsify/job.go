package sparsify

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/onnx"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
)

// Job is one planned pruning of a model: its targets, their methods and,
// once executed, their plans, encodings and counts. A Job is used once.
type Job struct {
	opts Options
	// A safetensors checkpoint (m) or an ONNX model (om, read from
	// onnxFile).
	m        *checkpoint.Model
	om       *onnx.Model
	onnxFile string
	own      bool // Plan opened m and Close closes it

	targets   []*target
	buf       *tensorBuffers
	cfgBytes  []byte // config.json, nil without one
	bitmaskOK bool   // config.json can take a sparsity_config
	replaced  []replacement
	executed  bool

	notes []string              // warnings for the user
	calib *manifest.Calibration // what a calibrated method used
	spill *spillFile            // a calibrated method's pruned tensors
	parts []*partFile           // PlanMerge's parts
}

// replacement is a tensor a later stage stores in its own parts.
type replacement struct {
	name     string
	parts    []safetensors.Entry
	encoding string
	bytes    int64
	meta     map[string]string
}

// Plan opens the model at path — a Hugging Face checkpoint directory, a
// .safetensors file, or an ONNX model (a .onnx file or a directory holding
// one) — and plans pruning it: every option and the targets are checked,
// nothing is read beyond the headers and nothing is written. Close the
// job to release the model.
func Plan(ctx context.Context, path string, opts Options) (*Job, error) {
	if err := checkPipeline(opts); err != nil {
		return nil, err
	}
	if file, ok := checkpoint.ONNXPath(path); ok {
		return planONNX(file, opts)
	}
	m, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	j, err := PlanCheckpoint(ctx, m, opts)
	if err != nil {
		m.Close()
		return nil, err
	}
	j.own = true
	return j, nil
}

// PlanCheckpoint is Plan for a checkpoint the caller has opened (and
// closes after the job).
func PlanCheckpoint(ctx context.Context, m *checkpoint.Model, opts Options) (*Job, error) {
	if err := checkPipeline(opts); err != nil {
		return nil, err
	}
	opts.applyDefaults()
	switch opts.Format {
	case Dense, CSR, Bitmask, Bitmask24, Auto:
	case ONNXSparse:
		return nil, invalidf("format sparse is for ONNX models; a safetensors checkpoint takes dense, csr, bitmask, 24bitmask or auto")
	default:
		return nil, invalidf("format %q: want dense, csr, bitmask, 24bitmask or auto", opts.Format)
	}
	if opts.ExternalData {
		return nil, invalidf("external data is for ONNX models; a safetensors checkpoint takes dense, csr, bitmask, 24bitmask or auto")
	}
	j := &Job{opts: opts, m: m, buf: &tensorBuffers{m: m}}
	if !opts.CopyOnly {
		if err := validMethod(opts.Method); err != nil {
			return nil, err
		}
		targets, err := selectTargets(m, opts.Include, opts.Exclude)
		if err != nil {
			return nil, err
		}
		if err := applyMethod(targets, opts.Method, opts.Overrides); err != nil {
			return nil, err
		}
		j.targets = targets
		if opts.Format == Bitmask24 {
			if err := check24(targets); err != nil {
				return nil, err
			}
		}
		if j.calibrated() {
			if err := j.checkCalibrated(); err != nil {
				return nil, err
			}
		}
	} else if j.calibrated() {
		return nil, invalidf("%s needs targets: a copy-only job prunes nothing", opts.Algorithm)
	}
	if m.Config != nil {
		b, err := checkpoint.ReadConfigBytes(m)
		if err != nil {
			return nil, err
		}
		j.cfgBytes = b
	}
	j.bitmaskOK = j.cfgBytes != nil
	if j.cfgBytes != nil {
		if _, err := checkpoint.AddQuantizationConfig(j.cfgBytes, struct{}{}); err != nil {
			j.bitmaskOK = false
			if opts.Format == Bitmask || opts.Format == Bitmask24 {
				return nil, fmt.Errorf("%s: format %s: %w", m.Dir, opts.Format, err)
			}
		}
	} else if (opts.Format == Bitmask || opts.Format == Bitmask24) && len(j.targets) > 0 {
		return nil, fmt.Errorf("%s: format %s: %w: no config.json to record the sparsity_config in", m.Path, opts.Format, checkpoint.ErrFormat)
	}
	return j, nil
}

// validMethod checks a pruning method in library terms.
func validMethod(m prune.Method) error {
	if err := m.Validate(); err != nil {
		return &invalidError{msg: err.Error(), causes: []error{prune.ErrInvalid}}
	}
	return nil
}

// Notes returns warnings about the job's input (a calibration text
// shorter than asked), for the user.
func (j *Job) Notes() []string { return append([]string(nil), j.notes...) }

// Close releases the model when Plan opened it.
func (j *Job) Close() error {
	j.closeParts()
	j.spill.close()
	j.spill = nil
	if j.own && j.m != nil {
		return j.m.Close()
	}
	return nil
}

// Model is the checkpoint being pruned (nil for an ONNX model).
func (j *Job) Model() *checkpoint.Model { return j.m }

// InputDir is the directory of the model's files.
func (j *Job) InputDir() string {
	if j.om != nil {
		return filepath.Dir(j.onnxFile)
	}
	return j.m.Dir
}

// Method is the job's pruning method.
func (j *Job) Method() prune.Method { return j.opts.Method }

// Describe names the job's method as the manifest does ("magnitude 50%
// per tensor", "sparsegpt 50%", "wanda 2:4").
func (j *Job) Describe() string { return j.opts.methodString() }

// Targets lists the tensors the job prunes, in name order; after Execute
// they carry their encodings and counts.
func (j *Job) Targets() []Target {
	out := make([]Target, len(j.targets))
	for i, t := range j.targets {
		out[i] = t.public()
	}
	return out
}

// Replace has Execute store tensor name as parts instead of the tensor (a
// later stage's encoding of it, such as a sparse autoencoder's codes and
// dictionary); the manifest records the encoding and the parts' bytes, and
// meta is added to the files' __metadata__. The tensor must exist and not
// be a pruning target. Safetensors checkpoints only; call before Execute.
func (j *Job) Replace(name string, parts []safetensors.Entry, encoding string, bytes int64, meta map[string]string) error {
	if j.m == nil {
		return invalidf("tensor %q: replacing tensors needs a safetensors checkpoint", name)
	}
	if _, ok := j.m.Tensor(name); !ok {
		return invalidf("tensor %q: no such tensor in %s", name, j.m.Path)
	}
	for _, t := range j.targets {
		if t.name == name {
			return invalidf("tensor %q is a pruning target and cannot also be replaced", name)
		}
	}
	j.replaced = append(j.replaced, replacement{name, parts, encoding, bytes, meta})
	return nil
}

// Execute prunes the model into out: the weights (or the ONNX model), the
// configuration and tokenizer files of the input, and lmsparse.json. It
// does not commit out; the caller commits it (adding its own files first)
// or aborts it. It returns the manifest written as lmsparse.json.
func (j *Job) Execute(ctx context.Context, out *checkpoint.Output) (*manifest.Manifest, error) {
	if j.executed {
		return nil, fmt.Errorf("sparsify: the job was already executed")
	}
	if j.opts.Range != nil {
		return nil, invalidf("a job with a block range writes a part (ExecutePart), not a checkpoint")
	}
	j.executed = true
	if j.om != nil {
		return j.executeONNX(ctx, out)
	}
	m := j.m
	if j.parts != nil {
		if err := j.loadParts(); err != nil {
			return nil, err
		}
	} else if j.calibrated() {
		if err := j.calibrate(ctx, filepath.Dir(out.Staging())); err != nil {
			return nil, err
		}
	}
	if j.opts.Values != nil {
		if err := j.applyValues(filepath.Dir(out.Staging())); err != nil {
			return nil, err
		}
	}
	// The input hash runs beside everything that follows, from now on. A
	// calibrated method's targets come from its spill file, but the hash
	// is of the input as it is.
	bg := startBackground(ctx, m)
	defer bg.stop()
	if err := j.prepare(ctx); err != nil {
		return nil, err
	}
	meta, config, err := j.metadataAndConfig()
	if err != nil {
		return nil, err
	}
	entries, pf, err := pruneEntries(ctx, m, j.targets, j.buf)
	if err != nil {
		return nil, err
	}
	for _, r := range j.replaced {
		entries = safetensors.Replace(entries, r.name, r.parts)
		for k, v := range r.meta {
			meta[k] = v
		}
	}
	entries = j.reportWrites(entries)
	pf.plan(entries, j.opts.MaxShardSize)
	pf.run(ctx)
	defer pf.stop()
	if _, err := out.WriteTensors(entries, checkpoint.TensorOptions{MaxShardSize: j.opts.MaxShardSize, Metadata: meta}); err != nil {
		return nil, err
	}
	if err := out.CopyAux(m.Dir, config); err != nil {
		return nil, err
	}
	nonzero, err := pf.untouchedNonzero(j.targets)
	if err != nil {
		return nil, err
	}
	res, err := bg.wait()
	if err != nil {
		return nil, err
	}
	if j.parts != nil {
		if err := j.checkMergedInputs(res.inputs); err != nil {
			return nil, err
		}
	}
	man := j.manifest(nonzero)
	man.Inputs = res.inputs
	js, err := man.JSON()
	if err != nil {
		return nil, err
	}
	if err := out.WriteFile(manifest.File, js); err != nil {
		return nil, err
	}
	return man, nil
}

// applyValues stores Options.Values: targets go to a spill file (read as
// the calibrated methods' are) with a selection that keeps them as they
// are, other tensors replace the input's as dense entries.
func (j *Job) applyValues(dir string) error {
	byName := map[string]*target{}
	for _, t := range j.targets {
		byName[t.name] = t
	}
	names := make([]string, 0, len(j.opts.Values))
	for name := range j.opts.Values {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		vals := j.opts.Values[name]
		info, ok := j.m.Tensor(name)
		if !ok {
			return invalidf("tensor %q: no such tensor in %s", name, j.m.Path)
		}
		n, err := info.Shape.Elems()
		if err != nil || n != int64(len(vals)) {
			return invalidf("tensor %q: %d new values for shape %v", name, len(vals), info.Shape)
		}
		raw := make([]byte, len(vals)*info.DType.Size())
		if err := tensor.EncodeF32(raw, vals, info.DType); err != nil {
			return fmt.Errorf("tensor %q: %w", name, err)
		}
		t := byName[name]
		if t == nil {
			if err := j.Replace(name, []safetensors.Entry{safetensors.BytesEntry(name, info.DType, info.Shape, raw)}, "dense", int64(len(raw)), nil); err != nil {
				return err
			}
			continue
		}
		if j.spill == nil {
			if j.spill, err = newSpill(dir); err != nil {
				return err
			}
		}
		if t.spillOff, err = j.spill.write(raw); err != nil {
			return err
		}
		t.spill = j.spill
		t.method = prune.Method{Scope: prune.ScopeTensor}
	}
	return nil
}

// reportWrites wraps the entries' writers to report progress, one unit
// per entry written.
func (j *Job) reportWrites(entries []safetensors.Entry) []safetensors.Entry {
	if j.opts.Progress == nil {
		return entries
	}
	st := j.opts.Progress.Start("write", int64(len(entries)), "tensors")
	n := 0
	for i := range entries {
		write := entries[i].Write
		entries[i].Write = func(w io.Writer) error {
			if err := write(w); err != nil {
				return err
			}
			if n++; n == len(entries) {
				st.Finish("")
			} else {
				st.Add(1)
			}
			return nil
		}
	}
	return entries
}

// needsPlanning reports whether prepare reads the targets: for sparse
// sizes or a global threshold.
func (j *Job) needsPlanning() bool {
	return len(j.targets) > 0 && (j.opts.Format != Dense || global(j.opts.Method))
}

// prepare plans the targets when the output needs it before writing
// (sparse sizes, global thresholds) and picks each target's encoding.
func (j *Job) prepare(ctx context.Context) error {
	if j.needsPlanning() {
		st := j.opts.Progress.Start("plan", int64(len(j.targets)), "tensors")
		if err := planTargets(ctx, j.m, j.opts.Method, j.targets, j.buf, st); err != nil {
			return err
		}
		st.Finish("")
	}
	for _, t := range j.targets {
		t.enc = chooseEncoding(j.opts.Format, t, j.bitmaskOK)
	}
	return nil
}

// metadataAndConfig returns the output's __metadata__ and, when a target
// is stored as bitmask, its config.json (nil: copy the input's).
func (j *Job) metadataAndConfig() (map[string]string, []byte, error) {
	meta := CopyMetadata(j.m.Metadata())
	var usesCSR bool
	ct := sparse.Dense // the compressed-tensors layout used, if any
	for _, t := range j.targets {
		usesCSR = usesCSR || t.enc == sparse.CSR
		if t.enc.CompressedTensors() {
			ct = t.enc
		}
	}
	if usesCSR {
		meta[sparse.MetadataKey] = sparse.CSRVersion
	}
	if ct == sparse.Dense {
		return meta, nil, nil
	}
	config, err := checkpoint.AddQuantizationConfig(j.cfgBytes, j.ctConfig(ct))
	return meta, config, err
}

// CopyMetadata returns a copy of a file's __metadata__, {"format": "pt"}
// when it is empty.
func CopyMetadata(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		out[k] = v
	}
	if len(in) == 0 {
		out["format"] = "pt"
	}
	return out
}

// Bytes returns the model's tensor bytes with the targets stored in
// format f, as planned or written (call after Execute).
func (j *Job) Bytes(f Format) int64 {
	byName := map[string]*target{}
	for _, t := range j.targets {
		byName[t.name] = t
	}
	var bytes int64
	for _, name := range j.m.Names() {
		info, _ := j.m.Tensor(name)
		t := byName[name]
		if t == nil {
			bytes += info.Size
			continue
		}
		enc := chooseEncoding(f, t, j.bitmaskOK)
		if enc == sparse.Bitmask24 && !fits24(t) {
			enc = sparse.Bitmask // a sweep point that is not 2:4
		}
		bytes += sparse.Sizes(info.DType, t.sRows, t.sCols, t.stored, t.nonzero)[enc]
	}
	return bytes
}

// manifest builds lmsparse.json once every tensor is written; nonzero
// gives the nonzero counts of the untouched tensors.
func (j *Job) manifest(nonzero map[string]int64) *manifest.Manifest {
	m := j.m
	byName := map[string]*target{}
	for _, t := range j.targets {
		byName[t.name] = t
	}
	rep := manifest.New(j.opts.Command)
	rep.Flags = j.opts.flags(false)
	if !j.opts.CopyOnly {
		rep.Method = j.opts.methodString()
	}
	rep.Calibration = j.calib
	for _, name := range m.Names() {
		info, _ := m.Tensor(name)
		params, _ := info.Shape.Elems()
		row := manifest.Tensor{Name: name, DType: string(info.DType), Shape: nonNilShape(info.Shape),
			Parameters: params, BytesBefore: info.Size, BytesAfter: info.Size, Encoding: string(sparse.Dense)}
		if t := byName[name]; t != nil {
			nz := t.nonzero
			row.Pruned, row.Encoding, row.Nonzeros, row.Stored, row.ReconError = true, string(t.enc), &nz, t.stored, t.recon
			sizes := sparse.Sizes(info.DType, t.sRows, t.sCols, t.stored, t.nonzero)
			row.BytesAfter = sizes[t.enc]
		} else if nz, ok := nonzero[name]; ok {
			row.Nonzeros = &nz
		}
		if row.Nonzeros != nil && params > 0 {
			row.Sparsity = 1 - float64(*row.Nonzeros)/float64(params)
		}
		rep.Add(row)
	}
	tot := &rep.Totals
	tot.PrunedTensors = len(j.targets)
	_, sp := targetTotals(j.targets)
	tot.TargetSparsity = manifest.Round(sp, 6)
	rep.Finish(true)
	for _, r := range j.replaced {
		for i := range rep.Tensors {
			t := &rep.Tensors[i]
			if t.Name == r.name {
				tot.BytesAfter += r.bytes - t.BytesAfter
				t.Encoding, t.BytesAfter = r.encoding, r.bytes
			}
		}
		if tot.BytesAfter > 0 {
			tot.Ratio = float64(tot.BytesBefore) / float64(tot.BytesAfter)
		}
	}
	return rep
}

func nonNilShape(s []int64) []int64 {
	if s == nil {
		return []int64{}
	}
	return s
}

// fileSize is the size of a written file, -1 when it cannot be read.
func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return -1
	}
	return st.Size()
}
