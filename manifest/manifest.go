package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/lmsparse/lmsparse/internal/safeio"
)

// File is the name of the manifest in an output directory.
const File = "lmsparse.json"

// Schema is the version of the manifest this package writes.
const Schema = "lmsparse.manifest/v1"

// Manifest is lmsparse.json: what produced an output directory, from what,
// and how big each tensor is before and after.
type Manifest struct {
	Schema  string         `json:"schema"`
	Tool    string         `json:"tool"`
	Command string         `json:"command"`
	Method  string         `json:"method,omitempty"`
	Flags   map[string]any `json:"flags"`
	Inputs  []Input        `json:"inputs"`
	Tensors []Tensor       `json:"tensors"`
	Totals  Totals         `json:"totals"`
	// SAE is the sparse-autoencoder report of "lmsparse sae".
	SAE *SAE `json:"sae,omitempty"`
	// Calibration describes the data a calibrated method (wanda,
	// sparsegpt) pruned with.
	Calibration *Calibration `json:"calibration,omitempty"`
	// Training describes the fine-tuning of "lmsparse finetune" (or a
	// recipe's recover stage): the setup, the data and the loss curve.
	Training *Training `json:"training,omitempty"`
	// Shrink describes structured pruning of MLP channels and attention
	// heads.
	Shrink *Shrink `json:"shrink,omitempty"`
}

// Training is the record of a fine-tuning run.
type Training struct {
	Optimizer   string    `json:"optimizer"` // "sgd" or "adamw"
	LR          float64   `json:"lr"`
	MinLR       float64   `json:"min_lr,omitempty"`
	Schedule    string    `json:"schedule"` // "constant" or "cosine"
	Warmup      int       `json:"warmup,omitempty"`
	Betas       []float64 `json:"betas,omitempty"` // adamw
	Eps         float64   `json:"eps,omitempty"`   // adamw
	WeightDecay float64   `json:"weight_decay"`
	ClipNorm    float64   `json:"clip_norm,omitempty"`
	Steps       int       `json:"steps"`
	Batch       int       `json:"batch"`
	Accum       int       `json:"accum"`
	Ctx         int       `json:"ctx"`
	// Distill is α of the loss (1−α)·CE + α·KL(teacher‖model); Teacher the
	// dense original's path.
	Distill        float64 `json:"distill,omitempty"`
	Teacher        string  `json:"teacher,omitempty"`
	L1             float64 `json:"l1,omitempty"`
	KeepMask       bool    `json:"keep_mask"`
	TargetSparsity float64 `json:"target_sparsity,omitempty"`
	RecoverSteps   int     `json:"recover_steps,omitempty"`
	// SparsityReached is the share of target weights that were zero after
	// the main steps, before TargetSparsity pruned.
	SparsityReached float64      `json:"sparsity_reached"`
	Data            TrainingData `json:"data"`
	Tokens          int64        `json:"tokens"`
	Seconds         float64      `json:"seconds"`
	TokensPerS      float64      `json:"tokens_per_s"`
	// Loss is each step's loss, computed before its update; RecoverLoss
	// that of the steps after TargetSparsity.
	Loss        []float64    `json:"loss"`
	RecoverLoss []float64    `json:"recover_loss,omitempty"`
	Before      *EvalSummary `json:"before,omitempty"`
	After       *EvalSummary `json:"after,omitempty"`
}

// String summarizes the evaluation on one line.
func (e *EvalSummary) String() string {
	s := fmt.Sprintf("ppl %.4f on %s (ctx %d)", e.PPL, e.Text, e.Ctx)
	if e.Top1 > 0 {
		s += fmt.Sprintf(", KL %.4f, top-1 %.2f%% vs the original", e.KLMean, 100*e.Top1)
	}
	return s
}

// TrainingData is the text a run trained on.
type TrainingData struct {
	// Source is "self" (sequences sampled from the teacher), "windows" or
	// the text file.
	Source  string `json:"source"`
	Windows int    `json:"windows"`
	Len     int    `json:"len"`
	Seed    uint64 `json:"seed"`
	Shuffle bool   `json:"shuffle,omitempty"`
	// TokensSHA256 is the sha256 of the windows' token ids, each as 4
	// bytes little-endian, window after window.
	TokensSHA256 string `json:"tokens_sha256"`
}

// EvalSummary is a held-out evaluation before or after training.
type EvalSummary struct {
	Text    string  `json:"text"`
	Ctx     int     `json:"ctx"`
	PPL     float64 `json:"ppl"`
	MeanNLL float64 `json:"mean_nll"`
	KLMean  float64 `json:"kl_mean,omitempty"` // KL(original‖model)
	Top1    float64 `json:"top1,omitempty"`
}

// Calibration is the calibration data and settings of a method that looks
// at activations.
type Calibration struct {
	Method string `json:"method"` // "wanda" or "sparsegpt"
	// Source is "self" (sequences sampled from the model) or the text
	// file the windows were cut from.
	Source  string `json:"source"`
	Samples int    `json:"samples"` // windows used
	Len     int    `json:"len"`     // tokens per window
	Seed    uint64 `json:"seed"`
	// TokensSHA256 is the sha256 of the windows' token ids, each as 4
	// bytes little-endian, window after window.
	TokensSHA256 string  `json:"tokens_sha256"`
	Damp         float64 `json:"damp,omitempty"`       // sparsegpt
	BlockSize    int     `json:"block_size,omitempty"` // sparsegpt
	// DampRaised lists tensors whose Hessian needed more damping than
	// asked (the Cholesky factorization failed), with the damping used.
	DampRaised map[string]float64 `json:"damp_raised,omitempty"`
	// LayerSparsity is the sparsity each block got (OWL varies it).
	LayerSparsity []float64 `json:"layer_sparsity,omitempty"`
	// Pipeline is where each block's calibration inputs came from:
	// "sequential" (the blocks before it pruned) or "independent" (the
	// dense model).
	Pipeline string `json:"pipeline,omitempty"`
}

// Input is one input file with its size and sha256.
type Input struct {
	File   string `json:"file"`
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Tensor is one tensor of the output, before and after.
type Tensor struct {
	Name       string  `json:"name"`
	Pruned     bool    `json:"pruned"`
	Encoding   string  `json:"encoding"`
	DType      string  `json:"dtype"`
	Shape      []int64 `json:"shape"`
	Parameters int64   `json:"parameters"`
	// Nonzeros counts values that are not zero after pruning (null for a
	// dtype lmsparse does not decode); Stored counts the elements a sparse
	// encoding keeps (nonzero bits, so -0.0 too).
	Nonzeros    *int64  `json:"nnz"`
	Stored      int64   `json:"stored,omitempty"`
	Sparsity    float64 `json:"sparsity"`
	BytesBefore int64   `json:"bytes_before"`
	BytesAfter  int64   `json:"bytes_after"`
	// ReconError is ‖WX − ŴX‖²/‖WX‖² on the calibration inputs X, for a
	// tensor pruned by a calibrated method.
	ReconError *float64 `json:"recon_error,omitempty"`
	// ShapeAfter is the shape written when structured pruning removed
	// rows or columns (--shrink); absent when the shape is kept.
	ShapeAfter []int64 `json:"shape_after,omitempty"`
}

// Shrink records structured pruning of whole units (package shrink): MLP
// channels and attention key/value groups, removed or zeroed in place.
type Shrink struct {
	Units    string  `json:"units"` // "mlp", "heads", "qheads", "heads,mlp", …
	Sparsity float64 `json:"sparsity"`
	// Removed is true when the units were removed (smaller shapes,
	// config.json updated), false when zeroed with every shape kept.
	Removed bool   `json:"removed"`
	Score   string `json:"score"`
	// MLPRemoved and GroupsRemoved list, per block, the indices of the
	// MLP channels and key/value groups pruned.
	MLPRemoved    [][]int `json:"mlp_channels,omitempty"`
	GroupsRemoved [][]int `json:"kv_groups,omitempty"`
	// QHeadsRemoved lists, per block, the query heads pruned (alone, or
	// with their key/value group).
	QHeadsRemoved [][]int `json:"query_heads,omitempty"`
	// Config is each config.json key changed: [before, after].
	Config map[string][2]int `json:"config,omitempty"`
}

// Shown is the tensor's encoding for a table: its Encoding when it was
// pruned or re-encoded (a sparse layout, "sae"), "untouched" when it was
// copied as it was.
func (t Tensor) Shown() string {
	if t.Pruned || t.Encoding != "" && t.Encoding != "dense" {
		return t.Encoding
	}
	return "untouched"
}

// Totals sum the tensors.
type Totals struct {
	Tensors        int     `json:"tensors"`
	PrunedTensors  int     `json:"pruned_tensors"`
	Parameters     int64   `json:"parameters"`
	Nonzeros       int64   `json:"nnz"`
	Sparsity       float64 `json:"sparsity"`
	TargetSparsity float64 `json:"pruned_tensors_sparsity"`
	BytesBefore    int64   `json:"bytes_before"`
	BytesAfter     int64   `json:"bytes_after"`
	Ratio          float64 `json:"ratio"`
}

// SAE is the report of "lmsparse sae": the autoencoder, its bytes and
// fidelity, and optionally an SVD baseline of equal bytes.
type SAE struct {
	Tensor     string   `json:"tensor"`
	DType      string   `json:"dtype"`
	Shape      []int64  `json:"shape"`
	TiedHead   bool     `json:"tied_lm_head"`
	Variant    string   `json:"variant"` // "topk" or "l1"
	Latents    int      `json:"latents"`
	K          int      `json:"k,omitempty"`
	L1         float64  `json:"l1,omitempty"`
	Epochs     int      `json:"epochs"`
	Batch      int      `json:"batch"`
	LR         float64  `json:"lr"`
	Seed       uint64   `json:"seed"`
	Threads    int      `json:"threads"`
	Refit      bool     `json:"refit"`
	FinalLoss  float64  `json:"final_loss"`
	TensorSize Bytes    `json:"tensor_bytes"`
	ModelSize  Bytes    `json:"model_bytes"`
	Eval       *SAEEval `json:"eval,omitempty"`
	Rows       []SAERow `json:"rows"` // sae, then svd when compared
}

// Bytes is a size before and after, and their ratio.
type Bytes struct {
	Before int64   `json:"before"`
	After  int64   `json:"after"`
	Ratio  float64 `json:"ratio"`
}

// SAEEval describes the held-out text the SAE rows were scored on.
type SAEEval struct {
	Text    string  `json:"text"`
	Ctx     int     `json:"ctx"`
	Tokens  int     `json:"tokens"`
	Scored  int     `json:"scored"`
	BasePPL float64 `json:"base_ppl"`
}

// SAERow is one method of compressing the tensor: the SAE or the SVD
// baseline.
type SAERow struct {
	Method     string   `json:"method"` // "sae" or "svd"
	Rank       int      `json:"rank,omitempty"`
	Bytes      int64    `json:"bytes"`
	FVU        float64  `json:"fvu"`
	Cosine     float64  `json:"mean_cosine"`
	L0         *float64 `json:"l0,omitempty"`
	Dead       *int     `json:"dead_latents,omitempty"`
	EncoderFVU *float64 `json:"encoder_fvu,omitempty"`
	PPL        *float64 `json:"ppl,omitempty"`
	LnPPLRatio *float64 `json:"ln_ppl_ratio,omitempty"`
	KLMean     *float64 `json:"kl_mean,omitempty"`
	KLP99      *float64 `json:"kl_p99,omitempty"`
	Top1       *float64 `json:"top1_agreement,omitempty"`
}

// New returns an empty manifest of command, stamped with the tool version.
func New(command string) *Manifest {
	return &Manifest{Schema: Schema, Tool: Tool(), Command: command}
}

// JSON returns the manifest as indented JSON with a final newline, the
// bytes of lmsparse.json.
func (m *Manifest) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Add appends a tensor row and adds it to the totals (tensors, parameters,
// nonzeros, bytes); call Finish once every row is added.
func (m *Manifest) Add(t Tensor) {
	m.Tensors = append(m.Tensors, t)
	tot := &m.Totals
	tot.Tensors++
	tot.Parameters += t.Parameters
	if t.Nonzeros != nil {
		tot.Nonzeros += *t.Nonzeros
	}
	tot.BytesBefore += t.BytesBefore
	tot.BytesAfter += t.BytesAfter
}

// Finish computes the sparsity of the whole model (when withSparsity) and
// the size ratio from the totals.
func (m *Manifest) Finish(withSparsity bool) {
	tot := &m.Totals
	if withSparsity && tot.Parameters > 0 {
		tot.Sparsity = 1 - float64(tot.Nonzeros)/float64(tot.Parameters)
	}
	tot.Ratio = Ratio(tot.BytesBefore, tot.BytesAfter)
}

// Ratio is before/after, 0 when after is 0.
func Ratio(before, after int64) float64 {
	if after == 0 {
		return 0
	}
	return float64(before) / float64(after)
}

// Round rounds x to the given number of decimal digits.
func Round(x float64, digits int) float64 {
	p := math.Pow(10, float64(digits))
	return math.Round(x*p) / p
}

// AuxInputs are the files beside the weights that HashFiles adds.
var auxInputs = []string{"config.json", "tokenizer.json", "tokenizer_config.json"}

// HashFiles returns files and the config and tokenizer files of dir (those
// present) with their sizes and sha256, named relative to dir.
func HashFiles(dir string, files []string) ([]Input, error) {
	files = append([]string(nil), files...)
	aux := map[string]bool{}
	for _, name := range auxInputs {
		p := filepath.Join(dir, name)
		if _, err := os.Lstat(p); err == nil {
			files = append(files, p)
			aux[p] = true
		}
	}
	var out []Input
	buf := make([]byte, 1<<20)
	for _, p := range files {
		open := safeio.Open
		if aux[p] { // a file of the model directory: links must stay inside it
			open = func(p string) (*os.File, fs.FileInfo, error) { return safeio.OpenIn(dir, p) }
		}
		f, _, err := open(p)
		if err != nil {
			return nil, err
		}
		h := sha256.New()
		// Hide File.WriteTo, which would copy through a 32 KiB buffer.
		n, err := io.CopyBuffer(h, struct{ io.Reader }{f}, buf)
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, Input{File: Rel(dir, p), Bytes: n, SHA256: hex.EncodeToString(h.Sum(nil))})
	}
	return out, nil
}

// Rel names path relative to dir (as given when it cannot be).
func Rel(dir, path string) string {
	if r, err := filepath.Rel(dir, path); err == nil {
		return r
	}
	return path
}

// module is lmsparse's module path, looked up in the build information.
const module = "github.com/lmsparse/lmsparse"

// Tool describes the build of lmsparse: module version, VCS revision and
// time (with "+dirty" when built from a modified tree), and Go version.
// Built into another program, the lmsparse module's version is given.
func Tool() string {
	version, rev, when, dirty := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Path == module || bi.Main.Path == "" {
			version = bi.Main.Version
			for _, s := range bi.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.time":
					when = s.Value
				case "vcs.modified":
					dirty = s.Value == "true"
				}
			}
		} else {
			for _, d := range bi.Deps {
				if d.Path == module {
					version = d.Version
				}
			}
		}
	}
	s := "lmsparse " + version
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " (revision " + rev
		if dirty {
			s += "+dirty"
		}
		if when != "" {
			s += ", " + when
		}
		s += ")"
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}
