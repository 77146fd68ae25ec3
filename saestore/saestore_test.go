package saestore

import (
	"context"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/sae"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/testdata/gen"
)

// open writes the spec's checkpoint into a temporary directory and opens
// it.
func open(t *testing.T, s gen.Spec) *checkpoint.Model {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "in")
	if err := gen.WriteCheckpoint(dir, s); err != nil {
		t.Fatal(err)
	}
	m, err := checkpoint.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func TestWithDefaults(t *testing.T) {
	o := Options{}.WithDefaults(512, 64)
	if o.Latents != 192 || o.K != 4 || o.Epochs != 1000 || o.Batch != 64 || o.LR != 3e-3 || o.Threads != runtime.NumCPU() {
		t.Errorf("defaults for [512, 64]: %+v", o)
	}
	// An L1 SAE has no k; set fields are kept, the epochs follow the batch.
	o = Options{L1: 0.05, Latents: 10, Batch: 8, Threads: 3, Tensor: "x"}.WithDefaults(100, 4)
	if o.K != 0 || o.Latents != 10 || o.Epochs != 640 || o.Threads != 3 || o.Tensor != "x" {
		t.Errorf("L1 options: %+v", o)
	}
	if m := o.Method(); m != "sae-l1(latents=10,l1=0.05)" {
		t.Errorf("method %q", m)
	}
	f := o.Flags()
	if f["l1"] != 0.05 || f["tensor"] != "x" || f["refit"] != true || f["k"] != nil {
		t.Errorf("flags %v", f)
	}
	if err := (Options{Threads: -1}).validate(100, 4); !errors.Is(err, sae.ErrInvalid) {
		t.Errorf("threads -1: %v", err)
	}
}

// TestTarget: the token embedding by default; errors name the file and
// the tensor and wrap what the CLI maps to exit codes.
func TestTarget(t *testing.T) {
	m := open(t, gen.Llama(tensor.F32, 1))
	info, err := Target(m, "")
	if err != nil || info.Name != "model.embed_tokens.weight" {
		t.Fatalf("default target %q, %v", info.Name, err)
	}
	g := open(t, gen.GPT2(tensor.BF16, 1))
	if info, err := Target(g, ""); err != nil || info.Name != "transformer.wte.weight" {
		t.Fatalf("gpt2 default target %q, %v", info.Name, err)
	}
	var nf *NotFoundError
	_, err = Target(m, "model.embed.weight")
	if !errors.As(err, &nf) || nf.Name != "model.embed.weight" || !slices.Contains(nf.Nearest, "model.embed_tokens.weight") ||
		!strings.Contains(err.Error(), `has no tensor "model.embed.weight"; nearest names: `) {
		t.Errorf("unknown name: %v", err)
	}
	if _, err := Target(m, "model.norm.weight"); !errors.Is(err, sae.ErrInvalid) || !strings.Contains(err.Error(), `model.safetensors: tensor "model.norm.weight" has shape [16]`) {
		t.Errorf("1-D tensor: %v", err)
	}

	// A lone file without a token embedding, with an integer matrix.
	p := filepath.Join(t.TempDir(), "x.safetensors")
	f := gen.Pack([]gen.Tensor{
		{Name: "a.weight", DType: tensor.F32, Shape: []int64{2, 2}, Data: make([]byte, 16)},
		{Name: "ids", DType: tensor.I32, Shape: []int64{2, 2}, Data: make([]byte, 16)},
	}, nil)
	if err := os.WriteFile(p, f.Encode(), 0o644); err != nil {
		t.Fatal(err)
	}
	x, err := checkpoint.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	if _, err := Target(x, ""); !errors.As(err, &nf) || nf.Name != "" || !strings.Contains(err.Error(), "has no token embedding (model.embed_tokens.weight, ") {
		t.Errorf("no embedding: %v", err)
	}
	if _, err := Target(x, "ids"); !errors.Is(err, tensor.ErrDType) || !strings.Contains(err.Error(), `x.safetensors: tensor "ids"`) {
		t.Errorf("I32 tensor: %v", err)
	}
	if _, err := Target(x, "a.weight"); err != nil {
		t.Errorf("F32 matrix: %v", err)
	}
}

// TestPlanErrors: bad options fail in Plan, before any training, naming
// the file and the tensor.
func TestPlanErrors(t *testing.T) {
	m := open(t, gen.Llama(tensor.F32, 1))
	for _, o := range []Options{
		{Latents: 8, K: 8}, {Latents: -5, K: 1}, {K: -1}, {L1: 0.1, K: 2}, {Batch: -1}, {LR: -1}, {Epochs: -1}, {Threads: -2},
	} {
		_, err := Plan(context.Background(), m, o)
		if !errors.Is(err, sae.ErrInvalid) || !strings.Contains(err.Error(), `model.safetensors: tensor "model.embed_tokens.weight" [32 16]: `) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Plan(ctx, m, Options{}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled plan: %v", err)
	}
	j, err := Plan(context.Background(), m, Options{Epochs: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if j.Options.Latents != 48 || j.Options.K != 1 || j.Tensor.Name != "model.embed_tokens.weight" {
		t.Errorf("planned %+v for %s", j.Options, j.Tensor.Name)
	}
	if _, err := j.Execute(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled execute: %v", err)
	}
}

// rebuild computes Z·D + b from the stored parts directly, in float64.
func rebuild(t *testing.T, c *Compressed) []float32 {
	t.Helper()
	parts := map[string][]byte{}
	for _, p := range c.Parts {
		parts[p.Suffix] = p.Data
	}
	f32 := func(suffix string) []float32 {
		v := make([]float32, len(parts[suffix])/c.Info.DType.Size())
		if err := tensor.DecodeF32(v, parts[suffix], c.Info.DType); err != nil {
			t.Fatal(err)
		}
		return v
	}
	vals, dict, bias := f32(sparse.SuffixSAECodes+".values"), f32(sparse.SuffixSAEDictionary), f32(sparse.SuffixSAEBias)
	col, crow := parts[sparse.SuffixSAECodes+".col_indices"], parts[sparse.SuffixSAECodes+".crow_indices"]
	out := make([]float32, c.Rows*c.D)
	for r := 0; r < c.Rows; r++ {
		lo, hi := binary.LittleEndian.Uint32(crow[4*r:]), binary.LittleEndian.Uint32(crow[4*r+4:])
		for j := 0; j < c.D; j++ {
			s := float64(bias[j])
			for p := lo; p < hi; p++ {
				s += float64(vals[p]) * float64(dict[int(binary.LittleEndian.Uint16(col[2*p:]))*c.D+j])
			}
			out[r*c.D+j] = float32(s)
		}
	}
	return out
}

// TestCompress: the parts decode to Rebuilt (checked by an independent
// product), their bytes add up, and the entries replace the tensor.
func TestCompress(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
		m := open(t, gen.Llama(dt, 1))
		info, err := Target(m, "")
		if err != nil {
			t.Fatal(err)
		}
		c, err := Compress(context.Background(), m, info, Options{Latents: 24, K: 3, Epochs: 20, Batch: 8, Seed: 4, Threads: 2})
		if err != nil {
			t.Fatal(err)
		}
		if c.Rows != 32 || c.D != 16 || len(c.Parts) != 6 || c.Stats.L0 != 3 || c.Method() != "sae-topk(latents=24,k=3)" {
			t.Fatalf("%s: %d×%d, %d parts, L0 %g, %s", dt, c.Rows, c.D, len(c.Parts), c.Stats.L0, c.Method())
		}
		var bytes int64
		for _, p := range c.Parts {
			bytes += int64(len(p.Data))
			if p.DType != dt && !strings.Contains(p.Suffix, "indices") && !strings.HasSuffix(p.Suffix, ".shape") {
				t.Errorf("%s: part %s is %s", dt, p.Suffix, p.DType)
			}
		}
		if bytes != c.Bytes {
			t.Errorf("%s: parts hold %d bytes, Bytes %d", dt, bytes, c.Bytes)
		}
		want := rebuild(t, c)
		tol := 1e-6
		if dt == tensor.BF16 {
			tol = 0x1p-7 // Rebuilt is rounded to BF16 as the checkpoint stores it
		}
		for i := range want {
			if d := math.Abs(float64(want[i]) - float64(c.Rebuilt[i])); d > tol*(1e-6+math.Abs(float64(want[i]))) {
				t.Fatalf("%s: element %d: Rebuilt %g, Z·D+b %g", dt, i, c.Rebuilt[i], want[i])
			}
		}
		if fvu, _ := sae.Metrics(c.Orig, c.Rebuilt, c.Rows, c.D); fvu != c.Stats.FVU || !(fvu < 1) {
			t.Errorf("%s: FVU %g, Stats %g", dt, fvu, c.Stats.FVU)
		}
		es, err := m.Entries()
		if err != nil {
			t.Fatal(err)
		}
		out := safetensors.Replace(es, info.Name, c.Entries())
		var names []string
		for _, e := range out {
			names = append(names, e.Name)
		}
		if len(out) != len(es)+5 || slices.Contains(names, info.Name) || !slices.Contains(names, info.Name+sparse.SuffixSAEDictionary) {
			t.Errorf("%s: entries %v", dt, names)
		}
	}
}

// TestProgress: an event per epoch, then a final one, with the detail
// the package documents.
func TestProgress(t *testing.T) {
	m := open(t, gen.Llama(tensor.F32, 1))
	var evs []progress.Event
	j, err := Plan(context.Background(), m, Options{Latents: 24, K: 3, Epochs: 5, Threads: 1, Progress: func(e progress.Event) { evs = append(evs, e) }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Execute(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(evs) != 7 || evs[0].Done != 0 || !evs[6].Final || evs[6].Done != 5 {
		t.Fatalf("events %+v", evs)
	}
	detail := regexp.MustCompile(`^loss [0-9.]+, L0 [0-9.]+, [0-9]+ dead$`)
	for i, e := range evs {
		if e.Stage != "sae" || e.Unit != "epochs" || e.Total != 5 || (i > 0 && (e.Done != int64(min(i, 5)) || !detail.MatchString(e.Detail))) {
			t.Errorf("event %d: %+v", i, e)
		}
	}
}

// TestResult: the report, the SVD row, fidelity, the manifest and the
// metadata of a run.
func TestResult(t *testing.T) {
	m := open(t, gen.GPT2(tensor.BF16, 1))
	j, err := Plan(context.Background(), m, Options{Latents: 32, K: 2, Epochs: 10, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Execute(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	r, c := res.Report, res.Compressed
	if r.Tensor != "transformer.wte.weight" || r.DType != "BF16" || !r.TiedHead || r.Variant != "topk" || r.Latents != 32 ||
		r.K != 2 || r.Epochs != 10 || r.Batch != 64 || r.Threads != runtime.NumCPU() || !r.Refit || len(r.Rows) != 1 {
		t.Fatalf("report %+v", r)
	}
	if r.TensorSize.Before != 40*16*2 || r.TensorSize.After != c.Bytes ||
		r.ModelSize.Before-r.ModelSize.After != r.TensorSize.Before-r.TensorSize.After {
		t.Errorf("sizes: tensor %+v, model %+v", r.TensorSize, r.ModelSize)
	}
	if err := res.SetFidelity(MethodSVD, Fidelity{}); err == nil {
		t.Errorf("fidelity of a missing svd row: no error")
	}
	b, err := res.CompareSVD()
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Rows) != 2 || r.Rows[1].Method != MethodSVD || r.Rows[1].Rank != b.Rank || b.Bytes > c.Bytes || r.Rows[1].Bytes != b.Bytes {
		t.Errorf("svd row %+v, baseline rank %d, %d bytes (SAE %d)", r.Rows, b.Rank, b.Bytes, c.Bytes)
	}
	if err := res.SetFidelity(MethodSAE, Fidelity{PPL: 2, Top1: 0.5}); err != nil {
		t.Fatal(err)
	}
	if s := r.Rows[0]; *s.PPL != 2 || *s.Top1 != 0.5 || *s.KLMean != 0 || r.Rows[1].PPL != nil {
		t.Errorf("rows after SetFidelity: %+v", r.Rows)
	}

	man, err := res.Manifest(map[string]any{"text": "t.txt", "seed": "given"})
	if err != nil {
		t.Fatal(err)
	}
	if man.Command != "sae" || man.Method != "sae-topk(latents=32,k=2)" || man.SAE != r || man.Flags["text"] != "t.txt" ||
		man.Flags["seed"] != "given" || man.Flags["latents"] != 32 || man.Flags["tensor"] != nil || len(man.Inputs) == 0 {
		t.Errorf("manifest %+v", man)
	}
	if man.Totals.BytesBefore != r.ModelSize.Before || man.Totals.BytesAfter != r.ModelSize.After || man.Totals.Tensors != len(m.Names()) {
		t.Errorf("totals %+v, model sizes %+v", man.Totals, r.ModelSize)
	}
	for _, mt := range man.Tensors {
		if (mt.Name == r.Tensor) != (mt.Encoding == "sae") {
			t.Errorf("row %+v", mt)
		}
		if mt.Name == r.Tensor && (mt.BytesAfter != c.Bytes || mt.Stored != 80) {
			t.Errorf("sae row %+v", mt)
		}
	}
	if meta := res.Metadata(); meta[sparse.SAEMetadataKey] != sparse.SAEVersion || meta["format"] != "pt" {
		t.Errorf("metadata %v", meta)
	}
	es, err := res.Entries()
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != len(m.Names())+5 {
		t.Errorf("%d entries for %d tensors", len(es), len(m.Names()))
	}

	// PatchManifest does to a plain size report what Manifest did.
	plain := manifest.New("compress")
	for _, mt := range man.Tensors {
		mt.Encoding, mt.BytesAfter, mt.Stored = "dense", mt.BytesBefore, 0
		plain.Add(mt)
	}
	plain.Finish(false)
	PatchManifest(plain, r.Tensor, c.Bytes)
	if plain.Totals != man.Totals {
		t.Errorf("patched totals %+v, want %+v", plain.Totals, man.Totals)
	}
}

// TestFitSVD: a matrix of rank r around its mean is rebuilt exactly with a
// budget for rank r; the rank follows the budget; BF16 factors are
// rounded.
func TestFitSVD(t *testing.T) {
	seed := uint64(8)
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	const rows, d, rank = 40, 12, 3
	u, v := make([]float64, rows*rank), make([]float64, rank*d)
	for i := range u {
		u[i] = rng.NormFloat64()
	}
	for i := range v {
		v[i] = rng.NormFloat64()
	}
	x := make([]float32, rows*d)
	for i := 0; i < rows; i++ {
		for j := 0; j < d; j++ {
			s := 0.5 * float64(j)
			for k := 0; k < rank; k++ {
				s += u[i*rank+k] * v[k*d+j]
			}
			x[i*d+j] = float32(s)
		}
	}
	exact := int64((rows*rank + rank*d + d) * 4)
	b, err := FitSVD(x, rows, d, exact, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rank != rank || b.Bytes != exact || b.FVU > 1e-10 || b.Cosine < 1-1e-6 {
		t.Errorf("budget for rank %d: rank %d, %d bytes, FVU %g, cosine %g", rank, b.Rank, b.Bytes, b.FVU, b.Cosine)
	}
	b, err = FitSVD(x, rows, d, exact-1, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rank != rank-1 || b.Bytes >= exact || !(b.FVU > 1e-3) {
		t.Errorf("one byte less: rank %d, %d bytes, FVU %g", b.Rank, b.Bytes, b.FVU)
	}
	// No budget for a component: the mean row alone, FVU 1.
	b, err = FitSVD(x, rows, d, 10, tensor.F32)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rank != 0 || b.Bytes != d*4 || math.Abs(b.FVU-1) > 1e-6 {
		t.Errorf("no budget: rank %d, %d bytes, FVU %g", b.Rank, b.Bytes, b.FVU)
	}
	for j := 0; j < d; j++ {
		var mean float64
		for i := 0; i < rows; i++ {
			mean += float64(x[i*d+j]) / rows
		}
		if math.Abs(float64(b.Rebuilt[5*d+j])-mean) > 1e-5 {
			t.Fatalf("no budget: element [5, %d] is %g, not the column mean %g", j, b.Rebuilt[5*d+j], mean)
		}
	}
	// BF16: half the bytes per factor, and the rebuilt matrix is BF16.
	b, err = FitSVD(x, rows, d, exact/2, tensor.BF16)
	if err != nil {
		t.Fatal(err)
	}
	if b.Rank != rank || b.Bytes != exact/2 || b.FVU > 1e-3 {
		t.Errorf("BF16: rank %d, %d bytes, FVU %g", b.Rank, b.Bytes, b.FVU)
	}
	for i, v := range b.Rebuilt {
		if tensor.BF16ToF32(tensor.F32ToBF16(v)) != v {
			t.Fatalf("BF16: element %d (%g) is not a BF16 value", i, v)
		}
	}
	if _, err := FitSVD(x[:5], rows, d, exact, tensor.F32); !errors.Is(err, sae.ErrInvalid) {
		t.Errorf("short matrix: %v", err)
	}
}
