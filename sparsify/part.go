package sparsify

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/safeio"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/prune"
)

// Pipeline is where a calibrated method takes each block's inputs from.
type Pipeline string

const (
	// Sequential runs the calibration windows through the blocks before
	// block i already pruned: each block is pruned on the inputs it will
	// see in the pruned model (SparseGPT's and Wanda's own setup). Block
	// i's inputs exist only once blocks 0…i−1 are pruned, so the blocks
	// are pruned one after the other, on one machine.
	Sequential Pipeline = "sequential"
	// Independent runs the windows through the dense blocks before block
	// i (llm-compressor's "independent" pipeline): each block is pruned on
	// the dense model's activations, blind to the error of the blocks
	// pruned before it. Block i's inputs depend on the input checkpoint
	// alone, so any range of blocks can be pruned on its own machine
	// ([BlockRange]).
	Independent Pipeline = "independent"
)

// ParsePipeline returns the Pipeline named s.
func ParsePipeline(s string) (Pipeline, error) {
	switch p := Pipeline(s); p {
	case Sequential, Independent:
		return p, nil
	}
	return "", invalidf("pipeline %q: want sequential or independent", s)
}

// BlockRange is the blocks [First, End) one worker of a split calibration
// prunes: given directly (N = 0; First < End), or as shard I of N, the
// blocks [⌊I·L/N⌋, ⌊(I+1)·L/N⌋) of a model of L blocks (model.Shard;
// empty when N > L), which PlanCheckpoint fills in.
type BlockRange struct {
	First, End int
	I, N       int
}

// ParseRange returns the BlockRange of "A:B" (layers) or "I/N" (shard);
// exactly one must be given.
func ParseRange(layers, shard string) (*BlockRange, error) {
	switch {
	case (layers == "") == (shard == ""):
		return nil, invalidf("give one of a block range A:B and a shard I/N")
	case shard != "":
		s, err := model.ParseShard(shard)
		if err != nil {
			return nil, invalidf("shard %q: want I/N with 0 ≤ I < N, e.g. 0/4", shard)
		}
		return &BlockRange{I: s.I, N: s.N}, nil
	}
	as, bs, ok := strings.Cut(layers, ":")
	a, err1 := strconv.Atoi(as)
	b, err2 := strconv.Atoi(bs)
	if !ok || err1 != nil || err2 != nil || a < 0 || b <= a || strconv.Itoa(a)+":"+strconv.Itoa(b) != layers {
		return nil, invalidf("blocks %q: want A:B with 0 ≤ A < B, e.g. 0:16", layers)
	}
	return &BlockRange{First: a, End: b}, nil
}

// checkPipeline refuses a pipeline or block range for magnitude pruning.
func checkPipeline(o Options) error {
	if (o.Pipeline != "" || o.Range != nil) && (o.Algorithm == "" || o.Algorithm == Magnitude) {
		return invalidf("a pipeline and a block range are for wanda and sparsegpt, which run the model; magnitude pruning needs neither")
	}
	return nil
}

// PartSchema is the schema of a part's descriptor.
const PartSchema = "lmsparse.calib-part/v1"

// PartMetadataKey is the __metadata__ key of a part file that holds its
// descriptor (a [Part] as JSON).
const PartMetadataKey = "lmsparse.calib-part"

// Part describes a part file: the tensors one worker of a split
// calibration pruned, and everything [PlanMerge] checks before it
// assembles the parts — the input checkpoint's files (sizes and SHA-256),
// the settings, the calibration data, the lmsparse build and the block
// range. A part file is a safetensors file holding the pruned tensors, in
// their dtype and shape, with the descriptor in its __metadata__ under
// [PartMetadataKey].
type Part struct {
	Schema string `json:"schema"` // PartSchema
	// Model is the checkpoint's path as the worker opened it.
	Model  string           `json:"model"`
	Inputs []manifest.Input `json:"inputs"`
	// Tool is the lmsparse build (manifest.Tool): another build may
	// compute other bits, and writes another manifest.
	Tool     string       `json:"tool"`
	Settings PartSettings `json:"settings"`
	// Layers is the model's number of blocks; the part holds the targets
	// of blocks [First, End), shard Shard of Shards when Shards > 0.
	Layers int `json:"layers"`
	// Threads is the worker's --threads (not part of the identity: the
	// pruned bits do not depend on it).
	Threads int `json:"threads"`
	First   int `json:"first"`
	End     int `json:"end"`
	Shard   int `json:"shard"`
	Shards  int `json:"shards"`
	// Calibration is the manifest's calibration block as the worker
	// computed it; its damp_raised lists the part's tensors only.
	Calibration *manifest.Calibration `json:"calibration"`
	Tensors     []PartTensor          `json:"tensors"`
}

// PartTensor is one pruned tensor of a part.
type PartTensor struct {
	Name       string  `json:"name"`
	DType      string  `json:"dtype"`
	Shape      []int64 `json:"shape"`
	SHA256     string  `json:"sha256"` // of its bytes
	ReconError float64 `json:"recon_error"`
}

// PartSettings are the options of a split calibration that decide its
// output; every part of one run has the same.
type PartSettings struct {
	Command      string         `json:"command"`
	Method       prune.Method   `json:"method"`
	Include      []string       `json:"include"`
	Exclude      []string       `json:"exclude"`
	Format       Format         `json:"format"`
	MaxShardSize int64          `json:"max_shard_size"`
	Algorithm    Algorithm      `json:"algorithm"`
	CalibText    string         `json:"calib_text"`
	CalibSamples int            `json:"calib_samples"`
	CalibLen     int            `json:"calib_len"`
	Seed         uint64         `json:"seed"`
	Damp         float64        `json:"damp"`
	BlockSize    int            `json:"block_size"`
	OWL          *OWL           `json:"owl"`
	Pipeline     Pipeline       `json:"pipeline"`
	Flags        map[string]any `json:"flags"` // the manifest's
}

func (j *Job) partSettings() PartSettings {
	o := &j.opts
	return PartSettings{Command: o.Command, Method: o.Method, Include: o.Include, Exclude: o.Exclude, Format: o.Format,
		MaxShardSize: o.MaxShardSize, Algorithm: o.Algorithm, CalibText: o.Calib.Text, CalibSamples: o.Calib.Samples,
		CalibLen: o.Calib.Len, Seed: o.Calib.Seed, Damp: o.Damp, BlockSize: o.BlockSize, OWL: o.OWL, Pipeline: o.Pipeline,
		Flags: o.flags(false)}
}

// ExecutePart prunes the blocks of the job's Range (the job must have
// one) and writes them as a part file at path (atomically: a temporary
// file renamed into place). It hashes every file of the input checkpoint
// for the part's identity. It returns the part's descriptor.
func (j *Job) ExecutePart(ctx context.Context, path string) (*Part, error) {
	r := j.opts.Range
	switch {
	case j.executed:
		return nil, fmt.Errorf("sparsify: the job was already executed")
	case r == nil || j.m == nil:
		return nil, invalidf("a part is written by a job with a block range")
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || !st.IsDir() {
		return nil, fmt.Errorf("part %s: its directory must exist: %w", path, cmp.Or(err, fs.ErrNotExist))
	}
	j.executed = true
	inputs, err := manifest.HashFiles(j.m.Dir, j.m.Files)
	if err != nil {
		return nil, err
	}
	if err := j.calibrate(ctx, filepath.Dir(path)); err != nil {
		return nil, err
	}
	p := &Part{Schema: PartSchema, Model: j.m.Path, Inputs: inputs, Tool: manifest.Tool(), Settings: j.partSettings(),
		Layers: j.m.Config.NumLayers, Threads: j.opts.Threads, First: r.First, End: r.End, Shard: r.I, Shards: r.N, Calibration: j.calib, Tensors: []PartTensor{}}
	var entries []safetensors.Entry
	for _, t := range j.targets {
		if t.spill == nil { // outside the range
			continue
		}
		p.Tensors = append(p.Tensors, PartTensor{Name: t.name, DType: string(t.info.DType), Shape: nonNilShape(t.info.Shape),
			SHA256: hex.EncodeToString(t.sha256[:]), ReconError: *t.recon})
		entries = append(entries, safetensors.Entry{Name: t.name, DType: t.info.DType, Shape: t.info.Shape, Size: t.info.Size,
			Write: func(w io.Writer) error {
				b, err := t.spill.read(t, nil)
				if err == nil {
					_, err = w.Write(b)
				}
				return err
			}})
	}
	desc, err := json.Marshal(p)
	if err != nil {
		return nil, err
	}
	if err := safetensors.WriteFile(path, map[string]string{"format": "pt", PartMetadataKey: string(desc)}, entries); err != nil {
		return nil, err
	}
	return p, nil
}

// String summarizes the part in one line: "part shard 1/3: blocks 1:3 of
// 5, 14 tensors".
func (p *Part) String() string {
	s := "part"
	if p.Shards > 0 {
		s += fmt.Sprintf(" shard %d/%d:", p.Shard, p.Shards)
	}
	return fmt.Sprintf("%s blocks %d:%d of %d, %d tensors", s, p.First, p.End, p.Layers, len(p.Tensors))
}

// name is how a refusal names the part: "shard i/n (FILE)" or "blocks
// a:b (FILE)".
func (pf *partFile) name() string {
	if pf.Shards > 0 {
		return fmt.Sprintf("shard %d/%d (%s)", pf.Shard, pf.Shards, pf.path)
	}
	return fmt.Sprintf("blocks %d:%d (%s)", pf.First, pf.End, pf.path)
}

// partFile is a part opened for merging.
type partFile struct {
	*Part
	path string
	f    *safetensors.File
}

// maxPartLayers bounds a part's block count (as config.json's) and its
// shard count.
const maxPartLayers = 10_000

// ReadPart reads the descriptor of the part file at path — a safetensors
// file, read as untrusted input (formats/safetensors) — strictly (unknown
// fields are errors) and checks it against the file's tensors. A file that
// is not a part, or whose descriptor does not hold together, is an error
// wrapping [ErrInvalid] that names it.
func ReadPart(path string) (*Part, error) {
	pf, err := openPart(path)
	if err != nil {
		return nil, err
	}
	pf.f.Close()
	return pf.Part, nil
}

func openPart(path string) (*partFile, error) {
	f, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	pf, err := checkPart(path, f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return pf, nil
}

func checkPart(path string, f *safetensors.File) (*partFile, error) {
	desc, ok := f.Metadata()[PartMetadataKey]
	if !ok {
		return nil, invalidf("%s is not a calibration part: no %q in its metadata (parts are written by prune --layers or --shard)", path, PartMetadataKey)
	}
	var p Part
	if other, err := safeio.DecodeStrict([]byte(desc), &p, PartSchema); other != nil {
		return nil, invalidf("%s is not a calibration part (schema %q, want %q)", path, *other, PartSchema)
	} else if err != nil {
		return nil, invalidf("%s: not a valid calibration part: %v", path, err)
	}
	switch {
	case p.Schema != PartSchema:
		return nil, invalidf("%s is not a calibration part (schema %q, want %q)", path, p.Schema, PartSchema)
	case p.Layers < 1 || p.Layers > maxPartLayers || p.First < 0 || p.End > p.Layers || p.First > p.End:
		return nil, invalidf("%s: blocks %d:%d of %d: want 0 ≤ a ≤ b ≤ layers ≤ %d", path, p.First, p.End, p.Layers, maxPartLayers)
	case p.Shards < 0 || p.Shards > maxPartLayers || p.Shards > 0 && (p.Shard < 0 || p.Shard >= p.Shards):
		return nil, invalidf("%s: shard %d/%d: want 0 ≤ i < n ≤ %d", path, p.Shard, p.Shards, maxPartLayers)
	case p.Calibration == nil:
		return nil, invalidf("%s: a calibration part without its calibration block", path)
	case p.Settings.MaxShardSize < 0:
		return nil, invalidf("%s: max_shard_size %d must not be negative", path, p.Settings.MaxShardSize)
	}
	if p.Shards > 0 {
		if a, b := (model.Shard{I: p.Shard, N: p.Shards}).Range(p.Layers); a != p.First || b != p.End {
			return nil, invalidf("%s: shard %d/%d of %d blocks holds blocks %d:%d, not %d:%d", path, p.Shard, p.Shards, p.Layers, a, b, p.First, p.End)
		}
	} else if p.First == p.End {
		return nil, invalidf("%s: an empty block range %d:%d", path, p.First, p.End)
	}
	infos := f.Tensors()
	if len(infos) != len(p.Tensors) {
		return nil, invalidf("%s: the descriptor lists %d tensors, the file holds %d", path, len(p.Tensors), len(infos))
	}
	for _, t := range p.Tensors {
		info, ok := f.Lookup(t.Name)
		if !ok || string(info.DType) != t.DType || !slices.Equal([]int64(info.Shape), t.Shape) {
			return nil, invalidf("%s: tensor %q: the descriptor and the file disagree", path, t.Name)
		}
	}
	return &partFile{Part: &p, path: path, f: f}, nil
}

// PlanMerge opens the part files of a split calibration, checks that they
// belong together and cover the model's blocks once, opens the checkpoint
// they were pruned from (modelPath, or the parts' model path when empty)
// and plans writing it with the parts' tensors: [Job.Execute] then writes
// the checkpoint and lmsparse.json a one-machine run with the same
// settings and the Independent pipeline writes, byte for byte, and fails
// when the checkpoint's files are not those the parts were pruned from
// (sizes are checked here, SHA-256 while writing). Refusals wrap
// [ErrInvalid] and name the part, the shard or the setting:
//
//   - a file that is not a part;
//   - parts of different checkpoints, calibration data, settings or
//     lmsparse builds (naming the field: `sparsity: 0.5 vs 0.6`);
//   - a missing shard or block range, a duplicated shard, overlapping
//     ranges.
//
// Close the job to release the model and the parts.
func PlanMerge(ctx context.Context, paths []string, modelPath string) (job *Job, err error) {
	if len(paths) == 0 {
		return nil, invalidf("no parts to merge")
	}
	var parts []*partFile
	defer func() {
		if err != nil {
			for _, p := range parts {
				p.f.Close()
			}
		}
	}()
	for _, path := range paths {
		pf, err := openPart(path)
		if err != nil {
			return nil, err
		}
		parts = append(parts, pf)
	}
	if err := checkSameRun(parts); err != nil {
		return nil, err
	}
	if err := checkCover(parts); err != nil {
		return nil, err
	}
	if modelPath == "" {
		modelPath = parts[0].Model
	}
	m, err := checkpoint.Open(modelPath)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			m.Close()
		}
	}()
	if err := checkInputs(m, parts[0]); err != nil {
		return nil, err
	}
	s := parts[0].Settings
	o := Options{Method: s.Method, Include: s.Include, Exclude: s.Exclude, Format: s.Format, MaxShardSize: s.MaxShardSize,
		Command: s.Command, Flags: s.Flags, Algorithm: s.Algorithm, Damp: s.Damp, BlockSize: s.BlockSize, OWL: s.OWL,
		Pipeline: s.Pipeline, Calib: Calibration{Samples: s.CalibSamples, Len: s.CalibLen, Seed: s.Seed}}
	// The calibration text is not read: the parts carry what it gave.
	j, err := PlanCheckpoint(ctx, m, o)
	if err != nil {
		return nil, err
	}
	if m.Config.NumLayers != parts[0].Layers {
		return nil, invalidf("%s has %d blocks, the parts %d", modelPath, m.Config.NumLayers, parts[0].Layers)
	}
	j.own, j.parts = true, parts
	return j, nil
}

// checkSameRun refuses parts of different runs, naming the difference.
func checkSameRun(parts []*partFile) error {
	a := parts[0]
	for _, b := range parts[1:] {
		what := ""
		switch {
		case a.Tool != b.Tool:
			what = fmt.Sprintf("lmsparse builds: %q vs %q", a.Tool, b.Tool)
		case !slices.Equal(a.Inputs, b.Inputs):
			what = "checkpoints: " + diffInputs(a.Inputs, b.Inputs)
		case a.Layers != b.Layers:
			what = fmt.Sprintf("checkpoints: %d vs %d blocks", a.Layers, b.Layers)
		case a.Calibration.TokensSHA256 != b.Calibration.TokensSHA256:
			what = fmt.Sprintf("calibration data: tokens_sha256 %s vs %s", a.Calibration.TokensSHA256, b.Calibration.TokensSHA256)
		}
		if what == "" {
			if d := diffJSON(a.Settings, b.Settings); d != "" {
				what = "settings: " + d
			} else if d := diffJSON(calibIdentity(a.Calibration), calibIdentity(b.Calibration)); d != "" {
				what = "calibration: " + d
			}
		}
		if what != "" {
			return invalidf("%s and %s are parts of different runs: different %s", a.path, b.path, what)
		}
	}
	return nil
}

// calibIdentity is a part's calibration block without what differs by
// part (damp_raised lists the part's own tensors).
func calibIdentity(c *manifest.Calibration) manifest.Calibration {
	v := *c
	v.DampRaised = nil
	return v
}

// diffInputs names the first file that differs between two input lists.
func diffInputs(a, b []manifest.Input) string {
	for i := range max(len(a), len(b)) {
		switch {
		case i >= len(a):
			return fmt.Sprintf("file %s in one only", b[i].File)
		case i >= len(b):
			return fmt.Sprintf("file %s in one only", a[i].File)
		case a[i].File != b[i].File:
			return fmt.Sprintf("file %s vs %s", a[i].File, b[i].File)
		case a[i] != b[i]:
			return fmt.Sprintf("file %s: %d bytes, sha256 %s vs %d bytes, sha256 %s", a[i].File, a[i].Bytes, a[i].SHA256, b[i].Bytes, b[i].SHA256)
		}
	}
	return ""
}

// diffJSON names the first top-level JSON field whose value differs
// between a and b ("sparsity: 0.5 vs 0.6"), or "".
func diffJSON(a, b any) string {
	fields := func(v any) map[string]json.RawMessage {
		out := map[string]json.RawMessage{}
		if data, err := json.Marshal(v); err == nil {
			json.Unmarshal(data, &out)
		}
		return out
	}
	fa, fb := fields(a), fields(b)
	keys := slices.Sorted(maps.Keys(fa))
	for k := range fb {
		if _, ok := fa[k]; !ok {
			keys = append(keys, k)
		}
	}
	for _, k := range keys {
		if !bytes.Equal(fa[k], fb[k]) {
			if k == "method" || k == "flags" {
				if d := diffJSON(fa[k], fb[k]); d != "" {
					return d
				}
			}
			return fmt.Sprintf("%s: %s vs %s", k, orNone(fa[k]), orNone(fb[k]))
		}
	}
	return ""
}

func orNone(b json.RawMessage) string {
	if b == nil {
		return "(none)"
	}
	return string(b)
}

// checkCover checks that the parts hold every block once: for shards,
// every index 0…n−1 once; for ranges, no overlap and no gap.
func checkCover(parts []*partFile) error {
	L := parts[0].Layers
	if n := parts[0].Shards; n > 0 && !slices.ContainsFunc(parts, func(p *partFile) bool { return p.Shards != n }) {
		_, err := model.OrderShards(parts, func(p *partFile) int { return p.Shard }, n, func(i int) string { return parts[i].path }, func(s int) string {
			a, b := model.Shard{I: s, N: n}.Range(L)
			return fmt.Sprintf("%d/%d (blocks %d:%d)", s, n, a, b)
		})
		if err != nil {
			return invalidf("%v (%d parts)", err, len(parts))
		}
		return nil
	}
	sorted := slices.Clone(parts)
	slices.SortStableFunc(sorted, func(a, b *partFile) int { return a.First - b.First })
	at := 0
	var prev *partFile
	for _, p := range sorted {
		if p.First == p.End {
			continue // an empty shard
		}
		switch {
		case p.First < at:
			return invalidf("%s and %s overlap: both hold blocks %d:%d", prev.name(), p.name(), p.First, min(at, p.End))
		case p.First > at:
			return invalidf("missing blocks %d:%d: no part holds them", at, p.First)
		}
		at, prev = p.End, p
	}
	if at < L {
		return invalidf("missing blocks %d:%d: no part holds them", at, L)
	}
	return nil
}

// checkInputs compares the checkpoint's files, by name and size, with the
// part's (their SHA-256 are compared while the merge writes).
func checkInputs(m *checkpoint.Model, p *partFile) error {
	have, err := fileSizes(m)
	if err != nil {
		return err
	}
	for _, in := range p.Inputs {
		if sz, ok := have[in.File]; !ok || sz != in.Bytes {
			return invalidf("%s is not the checkpoint the parts were pruned from: %s is %d bytes in the parts, %s", m.Path, in.File, in.Bytes, sizeOrMissing(sz, ok))
		}
		delete(have, in.File)
	}
	for name := range have {
		return invalidf("%s is not the checkpoint the parts were pruned from: it has %s, the parts do not", m.Path, name)
	}
	return nil
}

func sizeOrMissing(sz int64, ok bool) string {
	if !ok {
		return "missing here"
	}
	return fmt.Sprintf("%d bytes here", sz)
}

// fileSizes lists the input files manifest.HashFiles hashes (the weights,
// and its auxiliary files), by the name it gives them, with their sizes.
func fileSizes(m *checkpoint.Model) (map[string]int64, error) {
	out := map[string]int64{}
	files := slices.Clone(m.Files)
	for _, name := range []string{"config.json", "tokenizer.json", "tokenizer_config.json"} {
		if p := filepath.Join(m.Dir, name); fileSize(p) >= 0 {
			files = append(files, p)
		}
	}
	for _, p := range files {
		sz := fileSize(p)
		if sz < 0 {
			return nil, fmt.Errorf("%s: cannot stat %s", m.Dir, p)
		}
		out[manifest.Rel(m.Dir, p)] = sz
	}
	return out, nil
}

// loadParts points each target at its tensor in a part file (read in
// place of the input's), checking it against the target and its SHA-256,
// and sets the calibration block.
func (j *Job) loadParts() error {
	byName := map[string]*target{}
	for _, t := range j.targets {
		byName[t.name] = t
	}
	calib := calibIdentity(j.parts[0].Calibration)
	for _, p := range j.parts {
		for _, pt := range p.Tensors {
			t := byName[pt.Name]
			if t == nil {
				return invalidf("%s: tensor %q is not a target of the merge (or is in two parts)", p.path, pt.Name)
			}
			delete(byName, pt.Name)
			if string(t.info.DType) != pt.DType || !slices.Equal([]int64(t.info.Shape), pt.Shape) {
				return invalidf("%s: tensor %q: %s %v in the part, %s %v in the checkpoint", p.path, pt.Name, pt.DType, pt.Shape, t.info.DType, t.info.Shape)
			}
			sec, err := p.f.Section(pt.Name)
			if err != nil {
				return fmt.Errorf("%s: %w", p.path, err)
			}
			h := sha256.New()
			if _, err := io.Copy(h, io.NewSectionReader(sec, 0, sec.Size())); err != nil {
				return fmt.Errorf("%s: tensor %q: %w", p.path, pt.Name, err)
			}
			if hex.EncodeToString(h.Sum(nil)) != pt.SHA256 {
				return invalidf("%s: tensor %q: its bytes do not match the descriptor's SHA-256", p.path, pt.Name)
			}
			r := pt.ReconError
			t.part, t.recon, t.method = sec, &r, prune.Method{Scope: prune.ScopeTensor}
			if d, ok := p.Calibration.DampRaised[pt.Name]; ok {
				if calib.DampRaised == nil {
					calib.DampRaised = map[string]float64{}
				}
				calib.DampRaised[pt.Name] = d
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(byName)) {
		return invalidf("tensor %q is a target but in no part", name)
	}
	j.calib = &calib
	return nil
}

// readPart reads a merged target's bytes from its part into buf (grown
// when too small).
func readPart(t *target, buf []byte) ([]byte, error) {
	n := int(t.info.Size)
	if t.part.Size() != t.info.Size {
		return nil, fmt.Errorf("tensor %q: %d bytes in its part, want %d", t.name, t.part.Size(), n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := t.part.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("tensor %q: its part: %w", t.name, err)
	}
	return buf, nil
}

// checkMergedInputs fails when the checkpoint's files hash otherwise than
// the parts say.
func (j *Job) checkMergedInputs(inputs []manifest.Input) error {
	if want := j.parts[0].Inputs; !slices.Equal(inputs, want) {
		return invalidf("%s is not the checkpoint the parts were pruned from: here vs in the parts, %s", j.m.Path, diffInputs(inputs, want))
	}
	return nil
}

// closeParts releases the merged parts' files.
func (j *Job) closeParts() {
	for _, p := range j.parts {
		p.f.Close()
	}
	j.parts = nil
}
