package sparsify

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/model"
	"github.com/lmsparse/lmsparse/progress"
	"github.com/lmsparse/lmsparse/prune"
	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tensor/blas"
	"github.com/lmsparse/lmsparse/tokenizer"
)

// Algorithm is how the targets' weights are chosen for pruning.
type Algorithm string

const (
	// Magnitude prunes the smallest |w| (package prune); it needs no data.
	Magnitude Algorithm = "magnitude"
	// Wanda prunes the lowest |w|·‖x_j‖ in each output row, calibrated on
	// the inputs each projection sees.
	Wanda Algorithm = "wanda"
	// SparseGPT prunes by approximate reconstruction, updating the kept
	// weights to compensate.
	SparseGPT Algorithm = "sparsegpt"
)

// ParseAlgorithm returns the Algorithm named s.
func ParseAlgorithm(s string) (Algorithm, error) {
	switch a := Algorithm(s); a {
	case Magnitude, Wanda, SparseGPT:
		return a, nil
	}
	return "", invalidf("method %q: want magnitude, wanda or sparsegpt", s)
}

// Defaults of Calibration.
const (
	DefaultCalibSamples = 64
	DefaultCalibLen     = 128
)

// Calibration says which token windows a calibrated method sees.
//
// With Text set, the file is read whole (as UTF-8 bytes, invalid
// sequences replaced as "lmsparse eval" does), tokenized once with the
// model's tokenizer.json, special tokens added as the tokenizer says, and
// cut from the start into consecutive non-overlapping windows of Len
// tokens; the first Samples are used (fewer, with a note, when the text is
// short; none is an error).
//
// With Text empty ("self"), Samples sequences of Len tokens are sampled
// from the dense model at temperature 1 (model.Sample), each starting with
// the tokens the tokenizer puts before a sequence (Llama's BOS) or, for a
// tokenizer that adds none (GPT-2), with "<|endoftext|>". Sequence i draws
// from math/rand/v2's PCG seeded (Seed, i); the tokens depend only on the
// seed, the model and the thread count.
type Calibration struct {
	// Windows, when set, are the calibration windows themselves (token
	// ids, all of one length); Text and Samples are then not used, and
	// Source (default "windows") and Seed only describe them in the
	// manifest.
	Windows [][]int
	Source  string
	Text    string
	Samples int    // 0: DefaultCalibSamples
	Len     int    // 0: DefaultCalibLen
	Seed    uint64 // self only
}

// OWL allocates sparsity across blocks by their share of outlier
// activations (Yin et al. 2024, "Outlier Weighed Layerwise Sparsity"): a
// block's outlier ratio is the share of its targets' Wanda scores above M
// times their mean (over the block), computed on the dense model; block
// sparsities are spread linearly over [S−Lambda, S+Lambda] — the most
// outliers, the fewest zeros — and shifted so that their mean weighted by
// the blocks' target parameters is exactly S.
type OWL struct {
	M      float64 // 0: 5
	Lambda float64 // 0: 0.08
}

// CalibrationWindows returns the windows Calibration c gives for the model
// at path (cut from c.Text, or sampled from the model), for callers that
// prune several times with the same data (Calibration.Windows).
func CalibrationWindows(ctx context.Context, path string, c Calibration, threads int) ([][]int, error) {
	m, err := checkpoint.Open(path)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	c.Windows = nil
	j, err := PlanCheckpoint(ctx, m, Options{Method: prune.Method{Scope: prune.ScopeTensor}, Algorithm: Wanda, Calib: c, Threads: threads})
	if err != nil {
		return nil, err
	}
	tok, err := tokenizer.Load(m.Dir)
	if err != nil {
		return nil, err
	}
	lm, err := model.Load(m, model.Options{Threads: j.opts.Threads, Stream: "on"})
	if err != nil {
		return nil, err
	}
	defer lm.Close()
	wins, _, err := j.calibWindows(ctx, lm, tok)
	return wins, err
}

// SampleWindows samples n sequences of length tokens from lm at
// temperature 1, each starting with the tokens tok puts before a sequence
// (Llama's BOS) or, for a tokenizer that adds none (GPT-2), with
// "<|endoftext|>"; sequence i draws from math/rand/v2's PCG seeded
// (seed, i) (see model.Sample). It reports the stage "sample".
func SampleWindows(ctx context.Context, lm model.LM, tok *tokenizer.Tokenizer, n, length int, seed uint64, pf progress.Func) ([][]int, error) {
	start := tok.Prefix()
	if len(start) == 0 {
		id, ok := tok.TokenID("<|endoftext|>")
		if !ok {
			return nil, invalidf("the tokenizer adds no start token and has no <|endoftext|>: sampling has nothing to start from")
		}
		start = []int{id}
	}
	prompts, rngs := make([][]int, n), make([]*rand.Rand, n)
	for i := range prompts {
		prompts[i], rngs[i] = start, rand.New(rand.NewPCG(seed, uint64(i)))
	}
	st := pf.Start("sample", 0, "")
	wins, err := model.Sample(ctx, lm, prompts, length, rngs)
	if err != nil {
		return nil, err
	}
	st.Finish("")
	return wins, nil
}

// calibrated reports whether the job prunes with activations.
func (j *Job) calibrated() bool {
	return j.opts.Algorithm == Wanda || j.opts.Algorithm == SparseGPT
}

// checkCalibrated validates the calibration options at planning time.
func (j *Job) checkCalibrated() error {
	o := &j.opts
	m := j.m
	switch {
	case o.Method.Structured != prune.StructNone:
		return invalidf("%s prunes unstructured or N:M, not structured %s", o.Algorithm, o.Method.Structured)
	case !o.Method.IsNM() && o.Method.Scope == prune.ScopeGlobal:
		return invalidf("%s compares weights within rows (wanda) or column blocks (sparsegpt): global scope does not apply", o.Algorithm)
	case o.OWL != nil && o.Method.IsNM():
		return invalidf("OWL varies the sparsity of blocks, which an N:M pattern fixes")
	case len(o.Overrides) > 0:
		return invalidf("per-glob sparsity overrides are for magnitude pruning, not %s", o.Algorithm)
	case o.Calib.Samples < 0 || o.Calib.Len < 0:
		return invalidf("calibration samples and length must not be negative")
	case o.Damp < 0 || math.IsNaN(o.Damp):
		return invalidf("damping %g must be positive", o.Damp)
	case o.BlockSize < 0:
		return invalidf("block size %d must be positive", o.BlockSize)
	case m.Config == nil:
		return invalidf("%s: %s runs the model on calibration data and needs config.json", m.Path, o.Algorithm)
	case o.Pipeline != Sequential && o.Pipeline != Independent:
		return invalidf("pipeline %q: want sequential or independent", o.Pipeline)
	}
	if r := o.Range; r != nil {
		L := m.Config.NumLayers
		if r.N > 0 {
			if r.I < 0 || r.I >= r.N {
				return invalidf("shard %d/%d: want 0 ≤ i < n", r.I, r.N)
			}
			r.First, r.End = model.Shard{I: r.I, N: r.N}.Range(L)
		}
		switch {
		case o.Pipeline != Independent:
			return invalidf("a block range is pruned with the independent pipeline: the sequential one needs every block before it pruned")
		case r.First < 0 || r.End > L || r.First > r.End || r.N == 0 && r.First == r.End:
			return invalidf("blocks %d:%d: want a:b with 0 ≤ a < b ≤ %d, the model's blocks", r.First, r.End, L)
		case o.Values != nil || o.Calib.Windows != nil:
			return invalidf("a block range takes its calibration from a text or samples, and no new values")
		}
	}
	switch m.Config.ModelType {
	case "llama", "mistral", "qwen2", "gpt2":
	default:
		return invalidf("%s: %s needs a forward pass, which lmsparse has for llama, mistral, qwen2 and gpt2, not %q", m.Path, o.Algorithm, m.Config.ModelType)
	}
	if T := o.Calib.Len; T > m.Config.MaxPositions {
		return invalidf("calibration windows of %d tokens exceed the model's %d positions", T, m.Config.MaxPositions)
	}
	if _, err := os.Stat(filepath.Join(m.Dir, "tokenizer.json")); err != nil {
		return invalidf("%s: %s needs the model's tokenizer.json (calibration text is tokenized, samples start with its BOS)", m.Dir, o.Algorithm)
	}
	if o.Calib.Text != "" {
		st, err := os.Stat(o.Calib.Text)
		switch {
		case err != nil:
			return fmt.Errorf("calibration text: %w", err)
		case !st.Mode().IsRegular():
			return invalidf("calibration text %s is not a regular file", o.Calib.Text)
		case st.Size() == 0:
			return invalidf("calibration text %s is empty", o.Calib.Text)
		}
	}
	return nil
}

// maxCalibText bounds the calibration text read whole.
const maxCalibText = 1 << 30

// calibWindows returns the calibration windows and records them.
func (j *Job) calibWindows(ctx context.Context, lm *model.Model, tok *tokenizer.Tokenizer) ([][]int, *manifest.Calibration, error) {
	c := j.opts.Calib
	info := &manifest.Calibration{Method: string(j.opts.Algorithm), Source: "self", Samples: c.Samples, Len: c.Len, Seed: c.Seed}
	var wins [][]int
	switch {
	case len(c.Windows) > 0:
		info.Source, info.Len = c.Source, len(c.Windows[0])
		if info.Source == "" {
			info.Source = "windows"
		}
		wins = c.Windows
		for _, w := range wins {
			if err := lm.CheckIDs(w); err != nil {
				return nil, nil, invalidf("calibration windows: %v", err)
			}
		}
	case c.Text != "":
		info.Source, info.Seed = c.Text, 0
		data, err := checkpoint.ReadFileBounded(c.Text, maxCalibText)
		if err != nil {
			return nil, nil, err
		}
		ids, err := tok.EncodeLimited(string(data), true, 0)
		if err != nil {
			return nil, nil, invalidf("calibration text %s: %v", c.Text, err)
		}
		for k := 0; k < c.Samples && (k+1)*c.Len <= len(ids); k++ {
			wins = append(wins, ids[k*c.Len:(k+1)*c.Len])
		}
		if len(wins) == 0 {
			return nil, nil, invalidf("calibration text %s gives %d tokens, fewer than one window of %d", c.Text, len(ids), c.Len)
		}
		if len(wins) < c.Samples {
			j.notes = append(j.notes, fmt.Sprintf("calibration text %s gives %d tokens: %d windows of %d, not %d", c.Text, len(ids), len(wins), c.Len, c.Samples))
		}
		for _, w := range wins {
			for _, id := range w {
				if id >= lm.VocabSize() {
					return nil, nil, invalidf("the tokenizer gives id %d, outside the model's vocabulary of %d", id, lm.VocabSize())
				}
			}
		}
	default:
		var err error
		if wins, err = SampleWindows(ctx, lm, tok, c.Samples, c.Len, c.Seed, j.opts.Progress); err != nil {
			return nil, nil, err
		}
	}
	info.Samples = len(wins)
	h := sha256.New()
	var b [4]byte
	for _, w := range wins {
		for _, id := range w {
			binary.LittleEndian.PutUint32(b[:], uint32(id))
			h.Write(b[:])
		}
	}
	info.TokensSHA256 = hex.EncodeToString(h.Sum(nil))
	return wins, info, nil
}

// calibrate prunes every target with the job's calibrated method, block
// by block: the windows run through block i with the blocks before it
// already pruned (Sequential) or dense (Independent); each projection's
// inputs (computed with block i's dense weights) give its statistics; the
// block's targets are pruned and, Sequential, the block runs again, pruned,
// to give the next block its inputs (Independent: the dense run gave
// them). With a Range, the blocks before it only run dense, and those
// after it not at all. The pruned tensors go to a spill file in dir, which
// the writer reads.
func (j *Job) calibrate(ctx context.Context, dir string) error {
	o := &j.opts
	m := j.m
	tok, err := tokenizer.Load(m.Dir)
	if err != nil {
		return err
	}
	lm, err := model.Load(m, model.Options{Threads: o.Threads, Stream: "on"})
	if err != nil {
		return err
	}
	defer lm.Close()
	byName := map[string]*target{}
	for _, t := range j.targets {
		byName[t.name] = t
	}
	proj := map[string]bool{}
	for li := 0; li < lm.Layers(); li++ {
		for _, p := range lm.Projections(li) {
			proj[p.Name] = true
		}
	}
	for _, t := range j.targets {
		if !proj[t.name] {
			return invalidf("tensor %q is not a block projection: %s prunes only the projections the forward pass runs", t.name, o.Algorithm)
		}
	}
	wins, info, err := j.calibWindows(ctx, lm, tok)
	if err != nil {
		return err
	}
	if o.Algorithm == SparseGPT {
		info.Damp, info.BlockSize = o.Damp, o.BlockSize
	}
	layerS := make([]float64, lm.Layers())
	for li := range layerS {
		layerS[li] = o.Method.Sparsity
	}
	if o.OWL != nil {
		if layerS, err = j.owl(ctx, lm, wins, byName); err != nil {
			return err
		}
		info.LayerSparsity = layerS
	}
	blocks, err := lm.NewBlocks(wins, 0)
	if err != nil {
		return err
	}
	sp, err := newSpill(dir)
	if err != nil {
		return err
	}
	j.spill = sp
	info.Pipeline = string(o.Pipeline)
	first, end := 0, lm.Layers()
	if r := o.Range; r != nil {
		first, end = r.First, r.End
	}
	st := o.Progress.Start("calibrate", int64(end), "blocks")
	for li := 0; li < end && first < end; li++ { // an empty shard runs nothing
		projs := lm.Projections(li)
		weights, err := readProjections(m, projs)
		if err != nil {
			return err
		}
		if li < first { // only the inputs of block first are needed
			if err := blocks.Run(ctx, weights, nil); err != nil {
				return err
			}
			blocks.Advance()
			st.Add(1)
			continue
		}
		var stats [4]*prune.Stats
		err = blocks.Run(ctx, weights, func(g int, in []float32, rows, k, ld int) {
			if stats[g] == nil {
				stats[g] = prune.NewStats(k, true)
				stats[g].Threads = o.Threads
			}
			stats[g].Add(in, rows, k, ld)
		})
		if err != nil {
			return err
		}
		pruned := make(map[string][]float32, len(projs))
		hess := map[int][]float64{}
		for _, p := range projs {
			t := byName[p.Name]
			if t == nil {
				pruned[p.Name] = weights[p.Name]
				continue
			}
			if hess[p.Group] == nil {
				hess[p.Group] = stats[p.Group].Hessian()
			}
			method := t.method
			if !method.IsNM() {
				method.Sparsity = layerS[li]
			}
			x := &prune.Matrix{Name: p.Name, Vals: append([]float32(nil), weights[p.Name]...), Rows: p.Rows, Cols: p.Cols, Transposed: p.Transposed}
			if o.Algorithm == Wanda {
				_, err = prune.Wanda(method, x, stats[p.Group].Norms())
			} else {
				var res *prune.SparseGPTResult
				res, err = prune.SparseGPT(method, x, hess[p.Group], prune.SparseGPTOptions{Damp: o.Damp, BlockSize: o.BlockSize})
				if err == nil && res.Retries > 0 {
					if info.DampRaised == nil {
						info.DampRaised = map[string]float64{}
					}
					info.DampRaised[p.Name] = res.Damp
				}
			}
			if err != nil {
				return fmt.Errorf("%s: %w", t.info.File, err)
			}
			// The next blocks see the weights as stored (rounded to the dtype).
			raw := make([]byte, len(x.Vals)*t.info.DType.Size())
			if err := tensor.EncodeF32(raw, x.Vals, t.info.DType); err != nil {
				return fmt.Errorf("tensor %q: %w", t.name, err)
			}
			if err := tensor.DecodeF32(x.Vals, raw, t.info.DType); err != nil {
				return fmt.Errorf("tensor %q: %w", t.name, err)
			}
			if t.spillOff, err = sp.write(raw); err != nil {
				return err
			}
			t.spill, t.sha256 = sp, sha256.Sum256(raw)
			r := reconError(weights[p.Name], x.Vals, p, hess[p.Group], o.Threads)
			t.recon = &r
			pruned[p.Name] = x.Vals
		}
		if o.Pipeline == Sequential {
			if err := blocks.Run(ctx, pruned, nil); err != nil {
				return err
			}
		}
		blocks.Advance()
		st.Add(1)
	}
	st.Finish("")
	// The written tensors are the pruned ones as they are: no further
	// selection (zeros count as pruned).
	for _, t := range j.targets {
		t.method = prune.Method{Scope: prune.ScopeTensor}
	}
	j.calib = info
	return nil
}

// readProjections decodes the projection tensors of a block to float32.
func readProjections(m *checkpoint.Model, projs []model.Projection) (map[string][]float32, error) {
	w := make(map[string][]float32, len(projs))
	for _, p := range projs {
		v, err := m.Float32(p.Name)
		if err != nil {
			return nil, err
		}
		w[p.Name] = v
	}
	return w, nil
}

// reconError is ‖(W−Ŵ)X‖²/‖WX‖² = tr(ΔW·H·ΔWᵀ)/tr(W·H·Wᵀ) for H ∝ XᵀX,
// over the logical [out, in] matrices stored as p says: the products by H
// run on the float32 GEMM kernels, the traces are summed in float64.
func reconError(w, pruned []float32, p model.Projection, h []float64, threads int) float64 {
	rows, k := p.Rows, p.Cols
	d := make([]float32, rows*k)
	o := make([]float32, rows*k)
	for i := 0; i < rows; i++ {
		for j := 0; j < k; j++ {
			idx := i*k + j
			if p.Transposed {
				idx = j*rows + i
			}
			o[i*k+j] = w[idx]
			d[i*k+j] = w[idx] - pruned[idx]
		}
	}
	hf := make([]float32, k*k)
	for i, v := range h {
		hf[i] = float32(v)
	}
	quad := func(a []float32) float64 { // tr(A·H·Aᵀ)
		c := make([]float32, rows*k)
		blas.MatMulT(c, a, hf, rows, k, k, threads) // A·Hᵀ = A·H
		var t float64
		for i, v := range c {
			t += float64(v) * float64(a[i])
		}
		return t
	}
	den := quad(o)
	if den == 0 {
		return 0
	}
	return quad(d) / den
}

// owl returns each block's sparsity (see OWL), from a pass of the windows
// through the dense model.
func (j *Job) owl(ctx context.Context, lm *model.Model, wins [][]int, byName map[string]*target) ([]float64, error) {
	o := *j.opts.OWL
	if o.M == 0 {
		o.M = 5
	}
	if o.Lambda == 0 {
		o.Lambda = 0.08
	}
	if !(o.M > 0) || !(o.Lambda >= 0) {
		return nil, invalidf("OWL M %g and lambda %g must be positive", o.M, o.Lambda)
	}
	blocks, err := lm.NewBlocks(wins, 0)
	if err != nil {
		return nil, err
	}
	n := lm.Layers()
	ratio := make([]float64, n)
	params := make([]float64, n)
	st := j.opts.Progress.Start("owl", int64(n), "blocks")
	for li := 0; li < n; li++ {
		projs := lm.Projections(li)
		weights, err := readProjections(j.m, projs)
		if err != nil {
			return nil, err
		}
		var stats [4]*prune.Stats
		err = blocks.Run(ctx, weights, func(g int, in []float32, rows, k, ld int) {
			if stats[g] == nil {
				stats[g] = prune.NewStats(k, false)
			}
			stats[g].Add(in, rows, k, ld)
		})
		if err != nil {
			return nil, err
		}
		blocks.Advance()
		var scores []float64
		for _, p := range projs {
			if byName[p.Name] == nil {
				continue
			}
			norms := stats[p.Group].Norms()
			w := weights[p.Name]
			for i := 0; i < p.Rows; i++ {
				for c := 0; c < p.Cols; c++ {
					v := w[i*p.Cols+c]
					if p.Transposed {
						v = w[c*p.Rows+i]
					}
					scores = append(scores, math.Abs(float64(v))*norms[c])
				}
			}
		}
		var mean float64
		for _, s := range scores {
			mean += s
		}
		if len(scores) > 0 {
			mean /= float64(len(scores))
			out := 0
			for _, s := range scores {
				if s > o.M*mean {
					out++
				}
			}
			ratio[li] = float64(out) / float64(len(scores))
		}
		params[li] = float64(len(scores))
		st.Add(1)
	}
	st.Finish("")
	return owlSparsity(ratio, params, j.opts.Method.Sparsity, o.Lambda), nil
}

// owlSparsity spreads sparsities linearly over [S−λ, S+λ] by outlier
// ratio (the highest ratio the lowest sparsity) and shifts them so that
// their mean weighted by params is S; each is kept in [0, 1).
func owlSparsity(ratio, params []float64, S, lambda float64) []float64 {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, r := range ratio {
		lo, hi = math.Min(lo, r), math.Max(hi, r)
	}
	out := make([]float64, len(ratio))
	var mean, total float64
	for i, r := range ratio {
		if hi > lo {
			out[i] = S + lambda - 2*lambda*(r-lo)/(hi-lo)
		} else {
			out[i] = S
		}
		mean += out[i] * params[i]
		total += params[i]
	}
	if total > 0 {
		mean /= total
	}
	for i := range out {
		out[i] = math.Min(math.Max(out[i]-mean+S, 0), math.Nextafter(1, 0))
	}
	return out
}

// spillFile holds pruned tensors between calibration and writing. It is
// unlinked as soon as it is created, so nothing is left behind.
type spillFile struct {
	f   *os.File
	off int64
}

func newSpill(dir string) (*spillFile, error) {
	f, err := os.CreateTemp(dir, ".lmsparse-calib-*")
	if err != nil {
		return nil, err
	}
	os.Remove(f.Name())
	return &spillFile{f: f}, nil
}

func (s *spillFile) write(b []byte) (int64, error) {
	off := s.off
	if _, err := s.f.WriteAt(b, off); err != nil {
		return 0, fmt.Errorf("calibration spill file: %w", err)
	}
	s.off += int64(len(b))
	return off, nil
}

// read reads target t's bytes into buf (grown when too small).
func (s *spillFile) read(t *target, buf []byte) ([]byte, error) {
	n := int(t.info.Size)
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := s.f.ReadAt(buf, t.spillOff); err != nil {
		return nil, fmt.Errorf("tensor %q: calibration spill file: %w", t.name, err)
	}
	return buf, nil
}

func (s *spillFile) close() {
	if s != nil {
		s.f.Close()
	}
}
