package saestore

import (
	"context"
	"fmt"
	"time"

	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
	"github.com/lmsparse/lmsparse/sae"
	"github.com/lmsparse/lmsparse/tensor"
)

// Compressed is one tensor compressed by a sparse autoencoder: its stored
// parts and what they measure against the original.
type Compressed struct {
	// Info is the compressed tensor as the model stores it.
	Info    checkpoint.Tensor
	Rows, D int
	// Options are the options trained with, their defaults applied.
	Options Options
	Result  *sae.Result
	// Parts are the stored tensors, their suffixes relative to the
	// tensor's name (sparse.SuffixSAECodes…, sparse.SuffixSAEDictionary,
	// sparse.SuffixSAEBias), in the tensor's dtype.
	Parts []sparse.EncodedPart
	// Bytes is the size of all parts.
	Bytes int64
	// Orig is the original tensor, Rebuilt Z·D + b decoded from the parts
	// as "lmsparse decompress" and "lmsparse eval" see it, both [Rows, D].
	Orig, Rebuilt []float32
	// Stats measure Rebuilt against Orig (FVU and Cosine) and the codes.
	Stats sae.Stats
	// Seconds is the training time.
	Seconds float64
}

// Method describes the autoencoder: see [Options.Method].
func (c *Compressed) Method() string { return c.Options.Method() }

// shape2 returns the rows and columns of a non-empty 2-D tensor.
func shape2(info checkpoint.Tensor) (rows, d int, err error) {
	if len(info.Shape) != 2 || info.Shape[0] < 1 || info.Shape[1] < 1 {
		return 0, 0, fmt.Errorf("%s: tensor %q has shape %v: %w: the autoencoder needs a non-empty 2-D matrix", info.File, info.Name, info.Shape, sae.ErrInvalid)
	}
	return int(info.Shape[0]), int(info.Shape[1]), nil
}

// Compress trains the autoencoder on tensor info of m (see [Target]) with
// opts, whose zero fields take their defaults for the tensor's shape
// (opts.Tensor is not used), and encodes the result in the tensor's dtype.
// Bad options or data (a NaN, a tensor that is not 2-D) return errors
// wrapping sae.ErrInvalid that name the file and the tensor; a cancelled
// ctx stops the training between steps. Training reports its epochs
// through opts.Progress.
func Compress(ctx context.Context, m *checkpoint.Model, info checkpoint.Tensor, opts Options) (*Compressed, error) {
	rows, d, err := shape2(info)
	if err != nil {
		return nil, err
	}
	opts = opts.WithDefaults(rows, d)
	if err := opts.validate(rows, d); err != nil {
		return nil, fmt.Errorf("%s: tensor %q %v: %w", info.File, info.Name, info.Shape, err)
	}
	x, err := m.Float32(info.Name)
	if err != nil {
		return nil, err
	}
	if err := sae.CheckFinite(x, d); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", info.File, info.Name, err)
	}
	topt := opts.train()
	var last string
	stage := opts.Progress.Start("sae", int64(opts.Epochs), "epochs")
	if stage != nil {
		topt.Progress = func(e sae.Epoch) {
			last = fmt.Sprintf("loss %.4f, L0 %.1f, %d dead", e.Loss, e.L0, e.Dead)
			stage.Set(int64(e.Epoch), last)
		}
	}
	start := time.Now()
	res, err := sae.Train(ctx, x, rows, d, topt)
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", info.File, info.Name, err)
	}
	stage.Finish(last)
	c := &Compressed{Info: info, Rows: rows, D: d, Options: opts, Result: res, Orig: x, Seconds: time.Since(start).Seconds()}
	if err := c.encode(); err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", info.File, info.Name, err)
	}
	return c, nil
}

// encode stores the trained autoencoder as parts in the tensor's dtype and
// measures what they decode to.
func (c *Compressed) encode() error {
	dt, res, rows, d := c.Info.DType, c.Result, c.Rows, c.D
	enc := func(v []float32) ([]byte, error) {
		b := make([]byte, len(v)*dt.Size())
		if err := tensor.EncodeF32(b, v, dt); err != nil {
			return nil, err
		}
		return b, nil
	}
	z := res.Codes
	vals, err := enc(z.Val)
	if err != nil {
		return err
	}
	col := make([]int64, len(z.Col))
	for i, j := range z.Col {
		col[i] = int64(j)
	}
	codes, err := sparse.EncodeCSR(dt, int64(rows), int64(z.Cols), z.RowPtr, col, vals)
	if err != nil {
		return err
	}
	dict, err := enc(res.Dictionary)
	if err != nil {
		return err
	}
	bias, err := enc(res.Bias)
	if err != nil {
		return err
	}
	for _, p := range codes {
		p.Suffix = sparse.SuffixSAECodes + p.Suffix
		c.Parts = append(c.Parts, p)
	}
	c.Parts = append(c.Parts,
		sparse.EncodedPart{Suffix: sparse.SuffixSAEDictionary, DType: dt, Shape: tensor.Shape{int64(z.Cols), int64(d)}, Data: dict},
		sparse.EncodedPart{Suffix: sparse.SuffixSAEBias, DType: dt, Shape: tensor.Shape{int64(d)}, Data: bias})
	pd := make([]sparse.PartData, len(c.Parts))
	for i, p := range c.Parts {
		c.Bytes += int64(len(p.Data))
		pd[i] = sparse.PartData{DType: p.DType, Shape: p.Shape, Data: p.Data}
	}
	dec, err := sparse.DecodeSAE(pd[0], pd[1], pd[2], pd[3], pd[4], pd[5])
	if err != nil {
		return err
	}
	c.Rebuilt = make([]float32, rows*d)
	if err := tensor.DecodeF32(c.Rebuilt, dec.Bytes(), dt); err != nil {
		return err
	}
	c.Stats = res.Stats
	c.Stats.FVU, c.Stats.Cosine = sae.Metrics(c.Orig, c.Rebuilt, rows, d)
	return nil
}

// Entries returns the parts as tensors named after the compressed tensor.
func (c *Compressed) Entries() []safetensors.Entry {
	var es []safetensors.Entry
	for _, p := range c.Parts {
		es = append(es, safetensors.BytesEntry(c.Info.Name+p.Suffix, p.DType, p.Shape, p.Data))
	}
	return es
}

// MarkMetadata adds the marker of files holding sparse-autoencoder tensors
// (sparse.SAEMetadataKey) to a file's metadata.
func MarkMetadata(meta map[string]string) {
	meta[sparse.SAEMetadataKey] = sparse.SAEVersion
}

// PatchManifest marks tensor name in a manifest's size report as stored by
// a sparse autoencoder in bytesAfter bytes, and updates the totals.
func PatchManifest(man *manifest.Manifest, name string, bytesAfter int64) {
	for i := range man.Tensors {
		t := &man.Tensors[i]
		if t.Name != name {
			continue
		}
		man.Totals.BytesAfter += bytesAfter - t.BytesAfter
		t.Encoding, t.BytesAfter = string(sparse.SAE), bytesAfter
	}
	if man.Totals.BytesAfter > 0 {
		man.Totals.Ratio = manifest.Ratio(man.Totals.BytesBefore, man.Totals.BytesAfter)
	}
}
