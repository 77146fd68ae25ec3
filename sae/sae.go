package sae

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/lmsparse/lmsparse/tensor/blas"
)

// ErrInvalid reports options or data Train cannot use: a latent count,
// k or λ out of range, a matrix of the wrong size, a NaN or infinity in
// it, or a training run that diverged.
var ErrInvalid = errors.New("invalid sparse-autoencoder input")

// Options configures [Train]. The zero value works: a zero Latents, K,
// Epochs, Batch or LR takes its default for the matrix's shape (see
// [Options.WithDefaults]); negative values are invalid.
type Options struct {
	// Latents is m, the number of dictionary rows (≥ 1); 0 means 3·d.
	Latents int
	// K is the number of nonzero codes per row of a TopK SAE, in
	// [1, Latents); 0 means max(1, d/16). It must be 0 when L1 is set.
	K int
	// L1, when positive, trains an L1 SAE instead: ReLU codes and the loss
	// MSE + L1·Σ|z|.
	L1 float64
	// Epochs is the number of passes over the rows (≥ 1); 0 means enough
	// for about DefaultSteps Adam steps: ceil(DefaultSteps·min(Batch,
	// rows)/rows).
	Epochs int
	// Batch is the number of rows per Adam step (≥ 1; capped at the rows);
	// 0 means DefaultBatch.
	Batch int
	// LR is Adam's step size (> 0); 0 means DefaultLR.
	LR float64
	// Seed seeds the dictionary initialisation and the shuffling.
	Seed uint64
	// Threads is the number of goroutines (below 1: GOMAXPROCS). Results
	// do not depend on it.
	Threads int
	// AuxK is the number of dead latents the auxiliary loss may use per
	// row (TopK only); 0 means max(K, d/2). AuxCoef is that loss's weight;
	// 0 means 1/32.
	AuxK    int
	AuxCoef float64
	// DeadRows: a latent that was in no row's codes over the last DeadRows
	// training rows is dead; 0 means one epoch (the number of rows).
	DeadRows int
	// NoRefit keeps the encoder's code values in the result instead of
	// refitting them by least squares on the encoder's support.
	NoRefit bool
	// Progress, when set, is called after every epoch.
	Progress func(Epoch)
}

// Defaults of [Options] that do not depend on the matrix's shape.
const (
	// DefaultBatch is the default number of rows per Adam step.
	DefaultBatch = 64
	// DefaultLR is the default Adam step size.
	DefaultLR = 3e-3
	// DefaultSteps is the number of Adam steps the default Epochs aims at.
	DefaultSteps = 8000
)

// WithDefaults returns o with its zero fields set to their defaults for a
// [rows, d] matrix: Latents 3·d; K max(1, d/16) unless L1 is set; Batch
// [DefaultBatch]; LR [DefaultLR]; Epochs ceil(DefaultSteps·min(Batch,
// rows)/rows), at least 1. Fields already set, valid or not, are kept;
// Threads, AuxK, AuxCoef and DeadRows keep their own meaning of zero.
func (o Options) WithDefaults(rows, d int) Options {
	if o.Latents == 0 {
		o.Latents = 3 * d
	}
	if o.K == 0 && o.L1 == 0 {
		o.K = max(1, d/16)
	}
	if o.Batch == 0 {
		o.Batch = DefaultBatch
	}
	if o.LR == 0 {
		o.LR = DefaultLR
	}
	if o.Epochs == 0 && o.Batch > 0 && rows > 0 {
		o.Epochs = max(1, (DefaultSteps*min(o.Batch, rows)+rows-1)/rows)
	}
	return o
}

// Epoch summarises one training epoch: Loss is the mean reconstruction
// loss of its steps (in units of the data's variance: an estimate of the
// FVU), Aux the mean auxiliary loss, L0 the mean number of nonzero codes
// per row and Dead the latents dead at its end.
type Epoch struct {
	Epoch int     `json:"epoch"`
	Loss  float64 `json:"loss"`
	Aux   float64 `json:"aux_loss"`
	L0    float64 `json:"l0"`
	Dead  int     `json:"dead"`
}

// Codes is a sparse matrix [Rows, Cols] in compressed-sparse-row form: row r
// holds entries RowPtr[r] to RowPtr[r+1]-1, with columns Col (ascending
// within a row) and values Val.
type Codes struct {
	Rows, Cols int
	RowPtr     []int64
	Col        []int32
	Val        []float32
}

// NNZ returns the number of stored entries.
func (c *Codes) NNZ() int { return len(c.Val) }

// Stats measures a reconstruction X̂ of X (see [Metrics]) and its codes.
type Stats struct {
	// FVU is the fraction of variance unexplained, Σ‖x−x̂‖² / Σ‖x−mean‖².
	FVU float64 `json:"fvu"`
	// Cosine is the mean over rows of cos(x, x̂).
	Cosine float64 `json:"cosine"`
	// L0 is the mean number of stored codes per row.
	L0 float64 `json:"l0"`
	// Dead counts the latents no row uses.
	Dead int `json:"dead_latents"`
	// EncoderFVU is the FVU of the encoder's own codes, before the
	// least-squares refit (equal to FVU with NoRefit).
	EncoderFVU float64 `json:"encoder_fvu"`
}

// Result is a trained sparse autoencoder applied to its training rows: the
// rows are approximated by Codes·Dictionary + Bias.
type Result struct {
	Rows, Dim, Latents int
	Codes              *Codes    // [Rows, Latents]
	Dictionary         []float32 // [Latents, Dim], rows of unit norm
	Bias               []float32 // [Dim]
	// Encoder weights, in the units of the input: codes come from
	// TopK(ReLU(EncoderWeight·(x − Bias)/Scale + EncoderBias))·Scale.
	EncoderWeight []float32 // [Latents, Dim]
	EncoderBias   []float32 // [Latents]
	Scale         float32
	Stats         Stats
	History       []Epoch
}

// Validate checks the options for a [rows, d] matrix, with their defaults
// applied, as Train does first: errors wrap [ErrInvalid].
func (o *Options) Validate(rows, d int) error {
	v := o.WithDefaults(rows, d)
	switch {
	case rows < 1 || d < 1:
		return fmt.Errorf("%w: a [%d, %d] matrix has nothing to encode", ErrInvalid, rows, d)
	case v.Latents < 1:
		return fmt.Errorf("%w: latents %d: must be at least 1", ErrInvalid, v.Latents)
	case math.IsNaN(v.L1) || v.L1 < 0 || math.IsInf(v.L1, 0):
		return fmt.Errorf("%w: l1 %g: must be a positive number", ErrInvalid, v.L1)
	case v.L1 > 0 && v.K != 0:
		return fmt.Errorf("%w: give either k (TopK SAE) or l1 (L1 SAE), not both", ErrInvalid)
	case v.L1 == 0 && v.K < 1:
		return fmt.Errorf("%w: k %d: must be at least 1", ErrInvalid, v.K)
	case v.L1 == 0 && v.K >= v.Latents:
		return fmt.Errorf("%w: k %d: must be less than the %d latents", ErrInvalid, v.K, v.Latents)
	case v.Batch < 1:
		return fmt.Errorf("%w: batch %d: must be at least 1", ErrInvalid, v.Batch)
	case v.Epochs < 1:
		return fmt.Errorf("%w: epochs %d: must be at least 1", ErrInvalid, v.Epochs)
	case !(v.LR > 0) || math.IsInf(v.LR, 0):
		return fmt.Errorf("%w: lr %g: must be a positive number", ErrInvalid, v.LR)
	case v.AuxK < 0 || v.DeadRows < 0 || v.AuxCoef < 0 || math.IsNaN(v.AuxCoef):
		return fmt.Errorf("%w: aux_k %d, dead_rows %d and aux_coef %g must not be negative", ErrInvalid, v.AuxK, v.DeadRows, v.AuxCoef)
	}
	return nil
}

// CheckFinite returns an error wrapping [ErrInvalid] naming the first NaN
// or infinite element of the [rows, d] matrix x.
func CheckFinite(x []float32, d int) error {
	for i, v := range x {
		if f := float64(v); math.IsNaN(f) || math.IsInf(f, 0) {
			return fmt.Errorf("%w: element [%d, %d] is %g", ErrInvalid, i/d, i%d, v)
		}
	}
	return nil
}

// Train fits a sparse autoencoder to the rows of x ([rows, d], row-major)
// and encodes them; see the package documentation for the model, the loss
// and the training procedure, and [Options] for the defaults of its zero
// fields. It returns an error wrapping [ErrInvalid] for bad options or
// data, and ctx's error when cancelled between steps.
func Train(ctx context.Context, x []float32, rows, d int, opt Options) (*Result, error) {
	opt = opt.WithDefaults(rows, d)
	if err := opt.Validate(rows, d); err != nil {
		return nil, err
	}
	if len(x) != rows*d {
		return nil, fmt.Errorf("%w: %d values for a [%d, %d] matrix", ErrInvalid, len(x), rows, d)
	}
	if err := CheckFinite(x, d); err != nil {
		return nil, err
	}
	t := newTrainer(x, rows, d, opt)
	if err := t.train(ctx); err != nil {
		return nil, err
	}
	return t.result(ctx)
}

// trainer holds the parameters, their gradients and Adam moments, and
// the scratch memory of one training run.
type trainer struct {
	opt      Options
	rows, d  int
	m        int
	k        int // slots per row: K (TopK) or m (L1)
	l1       float32
	auxK     int
	auxCoef  float32
	deadRows int64
	threads  int
	kern     *blas.Kernel

	x     []float32 // [rows, d] input divided by scale
	scale float32

	p, g   params // parameters and gradients
	m1, m2 params // Adam first and second moments
	steps  int

	lastFired []int64 // training rows seen when each latent last fired
	seen      int64
	dead      []bool

	b       *batch
	history []Epoch
	rng     *rand.Rand // shuffles perm every epoch
	perm    []int
}

// params are the SAE's parameters, in the units of the scaled input.
type params struct {
	wEnc []float32 // [m, d]
	bEnc []float32 // [m]
	wDec []float32 // [m, d], rows of unit norm
	bPre []float32 // [d]
}

func newParams(m, d int) params {
	return params{wEnc: make([]float32, m*d), bEnc: make([]float32, m), wDec: make([]float32, m*d), bPre: make([]float32, d)}
}

// slices returns the parameter arrays, for element-wise loops.
func (p *params) slices() [][]float32 { return [][]float32{p.wEnc, p.bEnc, p.wDec, p.bPre} }

func newTrainer(x []float32, rows, d int, opt Options) *trainer {
	m := opt.Latents
	t := &trainer{opt: opt, rows: rows, d: d, m: m, threads: blas.Threads(opt.Threads), kern: blas.Best()}
	t.k, t.l1 = opt.K, float32(opt.L1)
	if opt.L1 > 0 {
		t.k = m
	} else {
		t.auxK = opt.AuxK
		if t.auxK == 0 {
			t.auxK = max(opt.K, d/2)
		}
		t.auxK = min(t.auxK, m)
		t.auxCoef = float32(opt.AuxCoef)
		if opt.AuxCoef == 0 {
			t.auxCoef = 1.0 / 32
		}
	}
	t.deadRows = int64(opt.DeadRows)
	if t.deadRows == 0 {
		t.deadRows = int64(rows)
	}

	// Scale the data so that the mean squared distance of a row to the
	// mean row is 1: the loss is then an FVU and the step sizes do not
	// depend on the data's units.
	mean := colMean(x, rows, d)
	var ss float64
	for i := 0; i < rows; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			dv := float64(v) - mean[j]
			ss += dv * dv
		}
	}
	t.scale = 1
	if ss > 0 {
		t.scale = float32(math.Sqrt(ss / float64(rows)))
	}
	t.x = make([]float32, len(x))
	for i, v := range x {
		t.x[i] = v / t.scale
	}

	// Initialise: decoder rows random unit vectors, the encoder their
	// transpose, b_enc zero and b_pre the mean row.
	rng := rand.New(rand.NewPCG(opt.Seed, 0x5ae1))
	t.p = newParams(m, d)
	for i := range t.p.wDec {
		t.p.wDec[i] = float32(rng.NormFloat64())
	}
	normalizeRows(t.p.wDec, m, d)
	copy(t.p.wEnc, t.p.wDec)
	for j := range t.p.bPre {
		t.p.bPre[j] = float32(mean[j] / float64(t.scale))
	}
	t.g, t.m1, t.m2 = newParams(m, d), newParams(m, d), newParams(m, d)
	t.lastFired = make([]int64, m)
	t.dead = make([]bool, m)
	t.b = newBatch(min(opt.Batch, rows), d, m, t.k, t.auxK, t.kern)
	t.rng = rand.New(rand.NewPCG(opt.Seed, 0x5ae2))
	t.perm = make([]int, rows)
	for i := range t.perm {
		t.perm[i] = i
	}
	return t
}

// colMean returns the mean row of x in float64.
func colMean(x []float32, rows, d int) []float64 {
	mean := make([]float64, d)
	for i := 0; i < rows; i++ {
		for j, v := range x[i*d : (i+1)*d] {
			mean[j] += float64(v)
		}
	}
	for j := range mean {
		mean[j] /= float64(rows)
	}
	return mean
}

// normalizeRows scales each row of w ([m, d]) to unit norm (a zero row
// stays zero).
func normalizeRows(w []float32, m, d int) {
	for j := 0; j < m; j++ {
		row := w[j*d : (j+1)*d]
		var ss float64
		for _, v := range row {
			ss += float64(v) * float64(v)
		}
		if ss == 0 {
			continue
		}
		inv := float32(1 / math.Sqrt(ss))
		for i := range row {
			row[i] *= inv
		}
	}
}

// train runs the epochs: each shuffles the rows with the seeded generator
// and takes one Adam step per batch.
func (t *trainer) train(ctx context.Context) error {
	for e := 1; e <= t.opt.Epochs; e++ {
		ep, err := t.epoch(ctx, e)
		if err != nil {
			return err
		}
		t.history = append(t.history, ep)
		if t.opt.Progress != nil {
			t.opt.Progress(ep)
		}
	}
	return nil
}

// epoch runs epoch number e.
func (t *trainer) epoch(ctx context.Context, e int) (Epoch, error) {
	t.rng.Shuffle(len(t.perm), func(i, j int) { t.perm[i], t.perm[j] = t.perm[j], t.perm[i] })
	ep := Epoch{Epoch: e}
	steps := 0
	var nnz int64
	bs := t.b.capRows
	for lo := 0; lo < t.rows; lo += bs {
		if err := ctx.Err(); err != nil {
			return ep, err
		}
		hi := min(lo+bs, t.rows)
		t.b.load(t.x, t.perm[lo:hi], t.d)
		loss := t.forwardBackward(t.b, t.dead)
		if !isFinite(loss.mse) || !isFinite(loss.aux) || !isFinite(loss.l1) {
			return ep, fmt.Errorf("%w: training diverged at epoch %d (loss %g); try a smaller lr", ErrInvalid, e, loss.mse)
		}
		t.update()
		t.track(t.b)
		ep.Loss += loss.mse
		ep.Aux += loss.aux
		nnz += t.b.active()
		steps++
	}
	ep.Loss /= float64(steps)
	ep.Aux /= float64(steps)
	ep.L0 = float64(nnz) / float64(t.rows)
	for _, dd := range t.dead {
		if dd {
			ep.Dead++
		}
	}
	return ep, nil
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// track updates the dead-latent bookkeeping after a step.
func (t *trainer) track(b *batch) {
	t.seen += int64(b.n)
	for i := 0; i < b.n; i++ {
		for s := 0; s < int(b.cnt[i]); s++ {
			t.lastFired[b.idx[i*b.k+s]] = t.seen
		}
	}
	for j := range t.dead {
		t.dead[j] = t.seen-t.lastFired[j] >= t.deadRows
	}
}
