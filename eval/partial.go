package eval

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/internal/safeio"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/report"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// PartialSchema is the schema of a [Partial] in JSON.
const PartialSchema = "lmsparse.eval-partial/v1"

// MaxPartialBytes is the largest partial file [ReadPartial] reads: 4 GiB,
// the KL values of about 200 million scored tokens.
const MaxPartialBytes = 4 << 30

// RunID identifies a sharded eval run: every shard of one run has the same
// RunID, and [Merge] refuses shards whose RunIDs differ.
type RunID struct {
	Model        string `json:"model"`          // the model's label (its path)
	Base         string `json:"base,omitempty"` // the base model's label, or empty
	Text         string `json:"text"`           // the text's path
	TextSHA256   string `json:"text_sha256"`    // of the text's bytes
	TextBytes    int64  `json:"text_bytes"`
	InvalidUTF8  int    `json:"invalid_utf8_bytes"`
	Tokenizer    string `json:"tokenizer"` // the tokenizer's kind
	Tokens       int    `json:"tokens"`    // token ids scored over (after MaxTokens)
	TokensSHA256 string `json:"tokens_sha256"`
	MaxTokens    int    `json:"max_tokens"` // Options.MaxTokens
	Cut          bool   `json:"cut"`        // MaxTokens cut the text (no bits per byte)
	Ctx          int    `json:"ctx"`
	Stride       int    `json:"stride"`
	Windows      int    `json:"windows"` // of the protocol, over all shards
	Shards       int    `json:"shards"`  // n
	// Tool is the lmsparse build that scored the shard (manifest.Tool):
	// another build may compute other bits.
	Tool string `json:"tool"`
	// ModelFiles and BaseFiles are the files the model and the base model
	// are read from, with their sizes and sha256, as lmsparse.json records
	// inputs (manifest.HashFiles: the weights, or the .onnx file, and the
	// config and tokenizer files beside them): shards of one run read the
	// same bytes, not only the same paths.
	ModelFiles []manifest.Input `json:"model_files"`
	BaseFiles  []manifest.Input `json:"base_files,omitempty"`
}

// fields lists the RunID's fields by JSON name, to name a difference.
func (id RunID) fields() [][2]string {
	return [][2]string{{"model", id.Model}, {"base", id.Base}, {"text", id.Text}, {"text_sha256", id.TextSHA256},
		{"text_bytes", fmt.Sprint(id.TextBytes)}, {"invalid_utf8_bytes", fmt.Sprint(id.InvalidUTF8)},
		{"tokenizer", id.Tokenizer}, {"tokens", fmt.Sprint(id.Tokens)}, {"tokens_sha256", id.TokensSHA256},
		{"max_tokens", fmt.Sprint(id.MaxTokens)}, {"cut", fmt.Sprint(id.Cut)}, {"ctx", fmt.Sprint(id.Ctx)},
		{"stride", fmt.Sprint(id.Stride)}, {"windows", fmt.Sprint(id.Windows)}, {"shards", fmt.Sprint(id.Shards)}, {"tool", id.Tool},
		{"model_files", filesField(id.ModelFiles)}, {"base_files", filesField(id.BaseFiles)}}
}

// filesField writes files as one line: name (bytes, sha256), ….
func filesField(files []manifest.Input) string {
	var b strings.Builder
	for i, f := range files {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s (%d bytes, sha256 %s)", f.File, f.Bytes, f.SHA256)
	}
	return b.String()
}

// modelFiles hashes the files of the model at path as lmsparse.json
// records its inputs: an ONNX file, or a checkpoint's weight files, with
// the config and tokenizer files beside them.
func modelFiles(path string) ([]manifest.Input, error) {
	if file, ok := checkpoint.ONNXPath(path); ok {
		return manifest.HashFiles(filepath.Dir(file), []string{file})
	}
	m, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	return manifest.HashFiles(m.Dir, m.Files)
}

// A Partial is what one shard of a sharded eval measured ([Harness.ScoreShard]):
// the per-window sums of its contiguous range of windows and the KL of each
// of their scored positions, which [Merge] combines into the [Report] of
// one run over all windows, bit for bit (see "Sharded runs" in the package
// documentation). Its JSON is the partial file, schema [PartialSchema].
type Partial struct {
	Schema string `json:"schema"` // PartialSchema
	Shard  int    `json:"shard"`  // i, 0 ≤ i < Shards
	RunID
	// FirstWindow and EndWindow are the shard's windows [FirstWindow,
	// EndWindow), model.Shard{Shard, Shards}.Range(Windows).
	FirstWindow int `json:"first_window"`
	EndWindow   int `json:"end_window"`
	// Sums has one entry per window of the shard, in window order.
	Sums []WindowSums `json:"sums"`
	// KL is every scored position's KL(base‖model), in position order
	// (with a base model).
	KL []float64 `json:"kl,omitempty"`
	// FirstNLL is the NLL of the shard's first (up to) 8 scored tokens.
	FirstNLL  []float64 `json:"first_nll"`
	Threads   int       `json:"threads"` // of the model's forward pass
	Kernel    string    `json:"kernel"`
	Streamed  bool      `json:"streamed"`
	Seconds   float64   `json:"seconds"`   // scoring time
	Positions int       `json:"positions"` // token positions of the shard's windows
}

// WindowSums are one window's sums in a [Partial] (model.WindowSums).
type WindowSums struct {
	Scored  int     `json:"scored"`
	NLL     float64 `json:"nll"`
	BaseNLL float64 `json:"base_nll,omitempty"`
	KL      float64 `json:"kl,omitempty"`
	Top1    int     `json:"top1,omitempty"`
}

// ScoreShard scores shard of the windows of m on the text, as
// [Harness.Score] scores them all, and returns the shard's [Partial]; label
// names m (its path). The shard must have N ≥ 1.
func (h *Harness) ScoreShard(ctx context.Context, m model.LM, label string, shard model.Shard) (*Partial, error) {
	if shard.N < 1 || shard.Valid() != nil {
		return nil, inputErrorf("shard %d/%d: want 0 ≤ i < n", shard.I, shard.N)
	}
	run, err := h.run(ctx, m, label, shard)
	if err != nil {
		return nil, err
	}
	res, id := run.res, run.id
	id.Shards = shard.N
	ts := sha256.Sum256(h.text.Data)
	id.TextSHA256 = hex.EncodeToString(ts[:])
	id.TokensSHA256 = tokensSHA256(h.ids)
	id.Tool = manifest.Tool()
	p := &Partial{Schema: PartialSchema, Shard: shard.I, RunID: id, FirstWindow: res.FirstWindow,
		EndWindow: res.FirstWindow + len(res.Sums), KL: res.KLs, FirstNLL: slices.Clone(res.NLL[:min(8, len(res.NLL))]),
		Threads: run.perf.Threads, Kernel: run.perf.Kernel, Streamed: run.perf.Streamed, Seconds: run.seconds, Positions: run.positions, Sums: make([]WindowSums, len(res.Sums))}
	for i, s := range res.Sums {
		p.Sums[i] = WindowSums(s)
	}
	return p, nil
}

// Scored returns the number of tokens the shard scored.
func (p *Partial) Scored() int {
	n := 0
	for _, s := range p.Sums {
		n += s.Scored
	}
	return n
}

// String summarizes the shard in one line: "shard 1/3: windows [27, 53) of
// 80, 6,630 tokens scored".
func (p *Partial) String() string {
	return fmt.Sprintf("shard %d/%d: windows [%d, %d) of %d, %s tokens scored", p.Shard, p.Shards, p.FirstWindow,
		p.EndWindow, p.Windows, report.Commas(int64(p.Scored())))
}

// tokensSHA256 hashes token ids, each as 4 bytes little-endian.
func tokensSHA256(ids []int) string {
	h := sha256.New()
	var b [4]byte
	for _, id := range ids {
		binary.LittleEndian.PutUint32(b[:], uint32(id))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CompareShard is [Compare] for one shard: it opens the model and the base,
// scores shard of the windows and returns the [Partial], with the model's
// and the base's files hashed into its RunID (ModelFiles, BaseFiles;
// [Harness.ScoreShard], given a model.LM, leaves them empty).
func CompareShard(ctx context.Context, modelPath, basePath string, text *Text, tok *tokenizer.Tokenizer, opts Options, mopts model.Options, shard model.Shard) (*Partial, error) {
	var p *Partial
	err := withModels(modelPath, basePath, text, tok, opts, mopts, func(h *Harness, m model.LM) (err error) {
		p, err = h.ScoreShard(ctx, m, modelPath, shard)
		return err
	})
	if err == nil {
		p.ModelFiles, err = modelFiles(modelPath)
	}
	if err == nil && basePath != "" {
		p.BaseFiles, err = modelFiles(basePath)
	}
	return p, err
}

// WritePartial writes p as JSON (one line) to path, atomically.
func WritePartial(path string, p *Partial) error {
	b, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, append(b, '\n'))
}

// WriteReport writes rep's JSON ([Report.JSON]) to path, atomically.
func WriteReport(path string, rep *Report) error {
	b, err := rep.JSON()
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteBytes(path, b)
}

// ReadPartial reads a partial file — a regular file (package safeio: a
// FIFO, device or directory is refused without blocking) of at most
// [MaxPartialBytes] — strictly
// (unknown fields are errors), and checks that it is whole: a schema other
// than [PartialSchema], a shard outside [0, shards), a window range or sums
// that do not fit the protocol's windows, or KL values that do not match
// the scored positions are errors wrapping [ErrInput] naming the file.
func ReadPartial(path string) (*Partial, error) {
	data, err := safeio.ReadFile(path, MaxPartialBytes)
	if errors.Is(err, safeio.ErrInput) {
		return nil, &inputError{msg: err.Error()}
	}
	if err != nil {
		return nil, err
	}
	var p Partial
	if other, err := safeio.DecodeStrict(data, &p, PartialSchema); other != nil {
		return nil, inputErrorf("%s is not an eval partial file (schema %q, want %q)", path, *other, PartialSchema)
	} else if err != nil {
		return nil, inputErrorf("%s: not a valid eval partial file: %v", path, err)
	}
	if err := p.check(); err != nil {
		return nil, inputErrorf("%s: %v", path, err)
	}
	return &p, nil
}

// MaxShards bounds the N of a partial file, so that a corrupt or hostile
// one cannot make Merge count to an arbitrary number.
const MaxShards = 10000

// check verifies that p is consistent in itself.
func (p *Partial) check() error {
	if p.Schema != PartialSchema {
		return fmt.Errorf("schema %q, want %q: not an eval partial file", p.Schema, PartialSchema)
	}
	id := p.RunID
	switch {
	case id.Shards < 1 || id.Shards > MaxShards || p.Shard < 0 || p.Shard >= id.Shards:
		return fmt.Errorf("shard %d/%d: want 0 ≤ i < n ≤ %d", p.Shard, id.Shards, MaxShards)
	case id.TextBytes < 1 || id.TextBytes > MaxTextBytes:
		return fmt.Errorf("text_bytes %d outside [1, %d]", id.TextBytes, MaxTextBytes)
	case id.Tokens < 2 || int64(id.Tokens) > 4*id.TextBytes+16:
		return fmt.Errorf("tokens %d: want at least 2 and at most 4 per text byte", id.Tokens)
	case id.Ctx < 2 || id.Stride < 1 || id.Stride > id.Ctx:
		return fmt.Errorf("ctx %d, stride %d: want ctx ≥ 2 and 1 ≤ stride ≤ ctx", id.Ctx, id.Stride)
	case id.Windows != model.WindowCount(id.Tokens, id.Ctx, id.Stride):
		return fmt.Errorf("windows %d, but %d tokens make %d windows of ctx %d, stride %d", id.Windows, id.Tokens,
			model.WindowCount(id.Tokens, id.Ctx, id.Stride), id.Ctx, id.Stride)
	}
	first, end := model.Shard{I: p.Shard, N: id.Shards}.Range(id.Windows)
	if p.FirstWindow != first || p.EndWindow != end || len(p.Sums) != end-first {
		return fmt.Errorf("shard %d/%d of %d windows holds windows [%d, %d), but the file has [%d, %d) and %d sums",
			p.Shard, id.Shards, id.Windows, first, end, p.FirstWindow, p.EndWindow, len(p.Sums))
	}
	scored := 0
	for _, s := range p.Sums {
		if s.Scored < 0 || s.Scored > id.Ctx || s.Top1 < 0 || s.Top1 > s.Scored {
			return fmt.Errorf("window sums %+v out of range", s)
		}
		scored += s.Scored
	}
	if want := scored; id.Base == "" && len(p.KL) != 0 || id.Base != "" && len(p.KL) != want {
		return fmt.Errorf("%d KL values for %d scored positions", len(p.KL), want)
	}
	return nil
}

// Merge combines the partials of every shard of one run, given in any
// order, into the [Report] one run over all windows gives: the same JSON
// apart from the timing fields (seconds, tokens_per_second), with the
// perplexity, bits per byte, KL statistics and top-1 agreement bit for
// bit. names label the partials in errors (their files; nil numbers them).
// Partials of different runs (any [RunID] field differs), a missing or
// duplicated shard, or an inconsistent partial are errors wrapping
// [ErrInput] that name the field or the shard. The report's seconds are
// the sum of the shards' scoring times; threads, kernel and streamed are
// shard 0's, its kernel followed by the others' when they differ.
func Merge(parts []*Partial, names []string) (*Report, error) {
	if len(parts) == 0 {
		return nil, inputErrorf("no partial files to merge")
	}
	name := model.PartLabels(names)
	for i, p := range parts {
		if p == nil {
			return nil, inputErrorf("%s: no partial", name(i))
		}
		if err := p.check(); err != nil {
			return nil, inputErrorf("%s: %v", name(i), err)
		}
		if i > 0 {
			a, b := parts[0].RunID.fields(), p.RunID.fields()
			for k := range a {
				if a[k] != b[k] {
					return nil, inputErrorf("%s and %s are not shards of one run: %s %q vs %q", name(0), name(i), a[k][0], a[k][1], b[k][1])
				}
			}
		}
	}
	ordered, err := model.OrderShards(parts, func(p *Partial) int { return p.Shard }, parts[0].Shards, name, nil)
	if err != nil {
		return nil, inputErrorf("%v (got %d partial files)", err, len(parts))
	}
	var (
		sums      []model.WindowSums
		kls       []float64
		firstNLL  []float64
		seconds   float64
		positions int
		kernels   []string
	)
	for _, p := range ordered {
		for _, s := range p.Sums {
			sums = append(sums, model.WindowSums(s))
		}
		kls = append(kls, p.KL...)
		firstNLL = append(firstNLL, p.FirstNLL...)
		seconds += p.Seconds
		positions += p.Positions
		if !slices.Contains(kernels, p.Kernel) {
			kernels = append(kernels, p.Kernel)
		}
	}
	sort.Strings(kernels[1:])
	id := parts[0].RunID
	textBytes := id.TextBytes
	if id.Cut {
		textBytes = 0
	}
	res := model.Totals(sums, kls, textBytes, id.Base != "")
	pf := perf{Threads: ordered[0].Threads, Kernel: strings.Join(kernels, ", "), Streamed: ordered[0].Streamed}
	return newReport(id, res, slices.Clone(firstNLL[:min(8, len(firstNLL))]), pf, seconds, positions), nil
}

// withModels opens the model at modelPath and, unless basePath is empty,
// the base model, builds the Harness and calls fn; both are closed after.
func withModels(modelPath, basePath string, text *Text, tok *tokenizer.Tokenizer, opts Options, mopts model.Options, fn func(h *Harness, m model.LM) error) error {
	m, err := Open(modelPath, mopts)
	if err != nil {
		return err
	}
	defer closeLM(m)
	var base model.LM // stays a nil interface without basePath
	if basePath != "" {
		if base, err = Open(basePath, mopts); err != nil {
			return err
		}
		defer closeLM(base)
		if opts.BaseLabel == "" {
			opts.BaseLabel = basePath
		}
	}
	h, err := NewHarness(base, tok, text, opts)
	if err != nil {
		return err
	}
	return fn(h, m)
}

// MergeFiles reads the partial files at paths with [ReadPartial] and
// merges them with [Merge], naming them by their paths.
func MergeFiles(paths []string) (*Report, error) {
	parts := make([]*Partial, len(paths))
	for i, path := range paths {
		p, err := ReadPartial(path)
		if err != nil {
			return nil, err
		}
		parts[i] = p
	}
	return Merge(parts, paths)
}
