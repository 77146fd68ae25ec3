package main

import (
	"runtime"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/sparsify"
)

// calibFlags are the flags of the calibrated pruning methods.
type calibFlags struct {
	method, calib, layers, shard string
	samples, len                 int
	seed                         uint64
	damp, owlM, owlL             float64
	blockSize, thread            int
	owl, independent             bool
}

func (c *calibFlags) register(fs *pflag.FlagSet) {
	fs.StringVar(&c.method, "method", "magnitude", "magnitude, wanda or sparsegpt (these two run the model on calibration data)")
	fs.StringVar(&c.calib, "calib", "self", "calibration data: a text file, or self (sequences sampled from the model)")
	fs.IntVar(&c.samples, "calib-samples", sparsify.DefaultCalibSamples, "calibration windows")
	fs.IntVar(&c.len, "calib-len", sparsify.DefaultCalibLen, "tokens per calibration window")
	fs.Uint64Var(&c.seed, "seed", 0, "seed of --calib self")
	fs.Float64Var(&c.damp, "damp", 0.01, "sparsegpt: Hessian damping, relative to its mean diagonal")
	fs.IntVar(&c.blockSize, "block-size", 128, "sparsegpt: columns per block")
	fs.BoolVar(&c.owl, "owl", false, "vary the sparsity of blocks by their outliers (OWL)")
	fs.Float64Var(&c.owlM, "owl-m", 5, "OWL: outliers are scores above M × their mean")
	fs.Float64Var(&c.owlL, "owl-lambda", 0.08, "OWL: block sparsities span S ± lambda")
	fs.IntVar(&c.thread, "threads", runtime.NumCPU(), "threads of the forward pass")
	fs.BoolVar(&c.independent, "independent", false, "calibrate every block on the dense model's activations, not on those of the blocks before it pruned")
	fs.StringVar(&c.layers, "layers", "", "prune only blocks A:B (A ≤ block < B) into a part file -o for merge-shards (implies --independent)")
	fs.StringVar(&c.shard, "shard", "", "prune only shard I of N of the blocks into a part file -o for merge-shards (implies --independent)")
}

// apply validates the flags and sets them in o.
func (c *calibFlags) apply(fs *pflag.FlagSet, cmd string, o *sparsify.Options) error {
	alg, err := sparsify.ParseAlgorithm(c.method)
	if err != nil {
		return usageErrorf("%s: --%v", cmd, err)
	}
	calibOnly := []string{"calib", "calib-samples", "calib-len", "seed", "damp", "block-size", "owl", "owl-m", "owl-lambda", "independent", "layers", "shard"}
	for _, f := range calibOnly {
		if alg == sparsify.Magnitude && fs.Changed(f) {
			return usageErrorf("%s: --%s applies to --method wanda or sparsegpt", cmd, f)
		}
	}
	switch {
	case c.len < 2:
		return usageErrorf("%s: --calib-len %d: must be at least 2", cmd, c.len)
	case !(c.damp > 0):
		return usageErrorf("%s: --damp %g: must be positive", cmd, c.damp)
	}
	o.Algorithm, o.Threads, o.Damp, o.BlockSize = alg, c.thread, c.damp, c.blockSize
	o.Calib = sparsify.Calibration{Samples: c.samples, Len: c.len, Seed: c.seed}
	if c.calib != "self" {
		o.Calib.Text = c.calib
	}
	if c.owl {
		o.OWL = &sparsify.OWL{M: c.owlM, Lambda: c.owlL}
	}
	if c.independent {
		o.Pipeline = sparsify.Independent
	}
	if c.layers != "" || c.shard != "" {
		if o.Range, err = sparsify.ParseRange(c.layers, c.shard); err != nil {
			return usageErrorf("%s: --layers/--shard: %v", cmd, err)
		}
	}
	return nil
}
