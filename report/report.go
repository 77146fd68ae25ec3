package report

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"

	"github.com/lmsparse/lmsparse/manifest"

	"github.com/lmsparse/lmsparse/internal/safeio"
)

// Schema is the version of report.json this package writes and reads.
const Schema = "lmsparse.report/v1"

// ErrFormat reports a report.json that cannot be read.
var ErrFormat = errors.New("invalid report")

// Report is report.json: everything one compress run did and measured.
type Report struct {
	Schema string `json:"schema"`
	Tool   string `json:"tool"`
	Model  string `json:"model"`
	Output string `json:"output"`
	// Inputs are the input files with their sizes and sha256.
	Inputs []Input `json:"inputs"`
	// Recipe is the effective recipe (file and flags merged).
	Recipe  any       `json:"recipe"`
	Tensors []Tensor  `json:"tensors"`
	Totals  Totals    `json:"totals"`
	SAE     *SAE      `json:"sae,omitempty"`
	Fid     *Fidelity `json:"fidelity,omitempty"`
	Gates   []Gate    `json:"gates"`
	Passed  bool      `json:"passed"`
	// Sweep holds the points of the sweep (or of find-sparsity), by
	// sparsity and, within one, in the order of the recipe's
	// sweep_methods.
	Sweep []Point `json:"sweep,omitempty"`
	// Best is the highest sweep sparsity of the run's own prune method
	// (the recipe's prune.method) that passes every gate; the points of
	// the sweep's other methods are a comparison and do not count.
	Best    *float64 `json:"best_passing_sparsity,omitempty"`
	Timings []Timing `json:"timings"`
	PeakRSS int64    `json:"peak_rss_bytes"`
	Notes   []string `json:"notes,omitempty"`
	// Structured says what structured pruning did to the shapes: zeros
	// with every shape kept, or units removed (StructuredNote without its
	// "structured " prefix), e.g. "mlp: units removed, …".
	Structured string `json:"structured,omitempty"`
	// Calibration is the data a calibrated prune method (wanda,
	// sparsegpt) used, as in lmsparse.json.
	Calibration *manifest.Calibration `json:"calibration,omitempty"`
	// Recovery is the fine-tuning of a recover stage, with the fidelity
	// of the pruned model before it (Fid is the fidelity after).
	Recovery *Recovery `json:"recovery,omitempty"`
}

// Input is one input file, as in lmsparse.json.
type Input = manifest.Input

// Tensor is one tensor before and after, as in lmsparse.json.
type Tensor = manifest.Tensor

// Totals sum the tensors (the totals of lmsparse.json); file bytes are the
// weight files on disk.
type Totals struct {
	manifest.Totals
	FileBytesBefore int64 `json:"file_bytes_before"`
	FileBytesAfter  int64 `json:"file_bytes_after"`
	// AutoBytes, for a run that stored its pruned tensors dense, is the
	// tensor bytes the same tensors would take with store format auto
	// (each in its smallest layout); 0 otherwise.
	AutoBytes int64 `json:"bytes_auto,omitempty"`
}

// SAE describes the sparse-autoencoder compression of one tensor.
type SAE struct {
	Tensor      string  `json:"tensor"`
	Latents     int     `json:"latents"`
	K           int     `json:"k,omitempty"`
	L1          float64 `json:"l1,omitempty"`
	Epochs      int     `json:"epochs"`
	BytesBefore int64   `json:"bytes_before"`
	BytesAfter  int64   `json:"bytes_after"`
	FVU         float64 `json:"fvu"`
	Cosine      float64 `json:"mean_cosine"`
	L0          float64 `json:"l0"`
	Dead        int     `json:"dead_latents"`
}

// Recovery is a recover stage: the pruned model fine-tuned (every weight
// that was not pruned; pruned ones stay zero), distilled from the original
// with weight Distill (the loss is (1−α)·CE + α·KL(original‖model)).
type Recovery struct {
	Steps       int     `json:"steps"`
	Batch       int     `json:"batch"` // windows per batch
	Accum       int     `json:"accum"` // batches per step
	Ctx         int     `json:"ctx"`   // tokens per window
	Optimizer   string  `json:"optimizer"`
	LR          float64 `json:"lr"`
	MinLR       float64 `json:"min_lr,omitempty"`
	Schedule    string  `json:"schedule"`
	Warmup      int     `json:"warmup,omitempty"`
	WeightDecay float64 `json:"weight_decay,omitempty"`
	ClipNorm    float64 `json:"clip_norm,omitempty"`
	Distill     float64 `json:"distill"`
	Teacher     string  `json:"teacher,omitempty"` // the original, with Distill > 0
	// Data is where the windows came from: "self" (sampled from the
	// original) or the text file, how many, their length and hash.
	Data manifest.TrainingData `json:"data"`
	// Tokens trained on (batch·ctx per batch), the training's wall time
	// and rate.
	Tokens     int64   `json:"tokens"`
	Seconds    float64 `json:"seconds"`
	TokensPerS float64 `json:"tokens_per_s"`
	// Loss is each step's loss, computed before its update (len Steps).
	Loss []float64 `json:"loss"`
	// Before is the fidelity of the pruned model before recovery, on the
	// eval stage's text (nil without an eval stage).
	Before *Fidelity `json:"before,omitempty"`
}

// Fidelity compares the compressed model with the original on held-out
// text (the protocol of lmsparse eval).
type Fidelity struct {
	Text            string  `json:"text"`
	TextBytes       int64   `json:"text_bytes"`
	Ctx             int     `json:"ctx"`
	Stride          int     `json:"stride"`
	Tokens          int     `json:"tokens"`
	Scored          int     `json:"scored"`
	PPL             float64 `json:"ppl"`
	BasePPL         float64 `json:"base_ppl"`
	PPLRatio        float64 `json:"ppl_ratio"`
	LogPPLRatio     float64 `json:"ln_ppl_ratio"`
	BitsPerByte     float64 `json:"bits_per_byte"`
	BaseBitsPerByte float64 `json:"base_bits_per_byte"`
	KLMean          float64 `json:"kl_mean"`
	KLMax           float64 `json:"kl_max"`
	KLP99           float64 `json:"kl_p99"`
	KLP90           float64 `json:"kl_p90"`
	KLP50           float64 `json:"kl_p50"`
	Top1            float64 `json:"top1_agreement"`
}

// Gate is one quality gate and its verdict.
type Gate struct {
	Name      string  `json:"name"` // max_ppl_ratio, max_kl, min_top1
	Op        string  `json:"op"`   // "<=" or ">="
	Threshold float64 `json:"threshold"`
	Value     float64 `json:"value"`
	Passed    bool    `json:"passed"`
}

// Point is one sparsity of a sweep, pruned by one method.
type Point struct {
	Sparsity float64 `json:"sparsity"`
	// Method is the prune method (magnitude, wanda, sparsegpt; structured
	// for a structured prune stage). Reports written before methods were
	// compared leave it empty: the run's own method ([Report.MethodOf]).
	Method   string  `json:"method,omitempty"`
	PPL      float64 `json:"ppl"`
	PPLRatio float64 `json:"ppl_ratio"`
	KLMean   float64 `json:"kl_mean"`
	Top1     float64 `json:"top1_agreement"`
	Bytes    int64   `json:"bytes_after"`
	Passed   *bool   `json:"passed,omitempty"` // nil without gates
}

// Timing is the wall time of one stage.
type Timing struct {
	Stage   string  `json:"stage"`
	Seconds float64 `json:"seconds"`
}

// maxReportSize bounds report.json as read.
const maxReportSize = 64 << 20

// Load reads and checks a report.json.
func Load(path string) (*Report, error) {
	b, err := safeio.ReadFile(path, maxReportSize)
	if errors.Is(err, safeio.ErrInput) {
		return nil, fmt.Errorf("%w (%w)", err, ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", path, ErrFormat, err)
	}
	if r.Schema != Schema {
		return nil, fmt.Errorf("%s: %w: schema %q, this lmsparse reads %q", path, ErrFormat, r.Schema, Schema)
	}
	if len(r.Tensors) == 0 {
		return nil, fmt.Errorf("%s: %w: \"tensors\" is missing, null or empty", path, ErrFormat)
	}
	return &r, nil
}

// PruneStage returns the prune method and sparsity of the run, as its
// recipe (prune.method, prune.sparsity) says: "" without a prune stage,
// and a nil sparsity for an N:M pattern.
func (r *Report) PruneStage() (method string, sparsity *float64) {
	var rec struct {
		Prune *struct {
			Method   string   `json:"method"`
			Sparsity *float64 `json:"sparsity"`
		} `json:"prune"`
	}
	b, err := json.Marshal(r.Recipe) // a compress.Recipe, or its JSON map after Load
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.Prune == nil {
		return "", nil
	}
	if rec.Prune.Method == "" {
		rec.Prune.Method = "magnitude"
	}
	return rec.Prune.Method, rec.Prune.Sparsity
}

// StoreFormat returns the run's store format, as its recipe
// (store.format) says ("dense" when it says nothing).
func (r *Report) StoreFormat() string {
	var rec struct {
		Store struct {
			Format string `json:"format"`
		} `json:"store"`
	}
	b, err := json.Marshal(r.Recipe)
	if err != nil || json.Unmarshal(b, &rec) != nil || rec.Store.Format == "" {
		return "dense"
	}
	return rec.Store.Format
}

// MethodOf returns the prune method of sweep point p: its Method, or the
// run's own when it is empty.
func (r *Report) MethodOf(p Point) string {
	if p.Method != "" {
		return p.Method
	}
	m, _ := r.PruneStage()
	return m
}

// SweepMethods returns the prune methods of the sweep's points, in the
// order they first appear.
func (r *Report) SweepMethods() []string {
	var out []string
	for _, p := range r.Sweep {
		if m := r.MethodOf(p); !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out
}

// Comparison returns the sweep points at the run's own sparsity, one per
// method, best (lowest perplexity ratio) first, when the sweep has points
// of another method than the run's there; otherwise nil.
func (r *Report) Comparison() []Point {
	own, s := r.PruneStage()
	if s == nil {
		return nil
	}
	var out []Point
	other := false
	for _, p := range r.Sweep {
		m := r.MethodOf(p)
		if math.Abs(p.Sparsity-*s) > 1e-9 || slices.ContainsFunc(out, func(q Point) bool { return q.Method == m }) {
			continue
		}
		p.Method = m
		out = append(out, p)
		other = other || m != own
	}
	if !other {
		return nil
	}
	slices.SortStableFunc(out, func(a, b Point) int { return cmp.Compare(a.PPLRatio, b.PPLRatio) })
	return out
}

// JSON returns the report as indented JSON with a final newline.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// FailedGates returns the names of the gates that failed.
func (r *Report) FailedGates() []string {
	var out []string
	for _, g := range r.Gates {
		if !g.Passed {
			out = append(out, g.Name)
		}
	}
	return out
}

// Layer sums the tensors of one transformer block (or of everything outside
// the blocks, Index -1).
type Layer struct {
	Index       int
	Name        string
	Parameters  int64
	NNZ         int64
	BytesBefore int64
	BytesAfter  int64
	// ReconError is the mean reconstruction error of the layer's tensors
	// that have one (calibrated methods), ReconTensors how many.
	ReconError   float64
	ReconTensors int
}

// Sparsity is the fraction of zero parameters.
func (l Layer) Sparsity() float64 {
	if l.Parameters == 0 {
		return 0
	}
	return 1 - float64(l.NNZ)/float64(l.Parameters)
}

var layerIndex = regexp.MustCompile(`(?:^|\.)(?:layers|layer|h|blocks|block)\.([0-9]+)\.`)

// Layers groups the tensors by transformer block, in block order, with the
// tensors outside any block last, as "other".
func (r *Report) Layers() []Layer {
	by := map[int]*Layer{}
	for _, t := range r.Tensors {
		idx := -1
		if m := layerIndex.FindStringSubmatch(t.Name); m != nil {
			idx, _ = strconv.Atoi(m[1])
		}
		l := by[idx]
		if l == nil {
			l = &Layer{Index: idx, Name: "other"}
			if idx >= 0 {
				l.Name = "layer " + strconv.Itoa(idx)
			}
			by[idx] = l
		}
		l.Parameters += t.Parameters
		if t.Nonzeros != nil {
			l.NNZ += *t.Nonzeros
		} else {
			l.NNZ += t.Parameters
		}
		l.BytesBefore += t.BytesBefore
		l.BytesAfter += t.BytesAfter
		if t.ReconError != nil {
			l.ReconError += *t.ReconError
			l.ReconTensors++
		}
	}
	var out []Layer
	for _, l := range by {
		if l.ReconTensors > 0 {
			l.ReconError /= float64(l.ReconTensors)
		}
		out = append(out, *l)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i].Index, out[j].Index
		if (a < 0) != (b < 0) {
			return b < 0
		}
		return a < b
	})
	return out
}
