package compress

import (
	"path/filepath"
	"strings"
)

// Override changes fields of a recipe, as a command line's flags do; nil
// fields leave the recipe alone. Setting a field of an absent stage adds
// the stage.
type Override struct {
	// Prune stage. Pattern sets method nm (and drops the recipe's sparsity
	// unless Sparsity is set too); Structured sets method structured.
	Sparsity                   *float64
	Pattern, Structured, Scope *string
	// Shrink sets prune.shrink (remove the structured units).
	Shrink           bool
	Include, Exclude *[]string
	// Method sets prune.method; Calib (a file, or "self"), CalibSamples,
	// CalibLen, Damp, BlockSize and OWL tune wanda and sparsegpt.
	Method, Calib          *string
	CalibSamples, CalibLen *int
	Damp                   *float64
	BlockSize              *int
	OWL                    bool
	// SAE adds the sae stage; the other fields set its keys.
	SAE                  bool
	SAETensor            *string
	Latents, K           *int
	L1                   *float64
	Epochs, Batch        *int
	LR                   *float64
	Seed                 *uint64
	Format, MaxShardSize *string
	// Text is relative to the working directory (see Recipe.SetText).
	Text               *string
	Ctx, Stride        *int
	MaxTokens          *int
	MaxPPLRatio, MaxKL *float64
	MinTop1            *float64
	Sweep              *[]float64
	// SweepMethods sets sweep_methods (see Recipe.SweepMethods).
	SweepMethods *[]string
}

// Apply changes r as o says; call Normalize afterwards.
func (r *Recipe) Apply(o Override) {
	if o.Sparsity != nil || o.Pattern != nil || o.Structured != nil || o.Shrink || o.Scope != nil || o.Include != nil || o.Exclude != nil ||
		o.Method != nil || o.Calib != nil || o.CalibSamples != nil || o.CalibLen != nil || o.Damp != nil || o.BlockSize != nil || o.OWL {
		if r.Prune == nil {
			r.Prune = &Prune{}
		}
		p := r.Prune
		if o.Sparsity != nil {
			s := *o.Sparsity
			p.Sparsity = &s
		}
		if o.Pattern != nil {
			p.Pattern = *o.Pattern
			if p.Method != "wanda" && p.Method != "sparsegpt" {
				p.Method = "nm"
			}
			if o.Sparsity == nil {
				p.Sparsity = nil
			}
		}
		if o.Structured != nil {
			p.Structured, p.Method = *o.Structured, "structured"
		}
		p.Shrink = p.Shrink || o.Shrink
		set(&p.Scope, o.Scope)
		set(&p.Include, o.Include)
		set(&p.Exclude, o.Exclude)
		set(&p.Method, o.Method)
		if o.Calib != nil || o.CalibSamples != nil || o.CalibLen != nil {
			if p.Calib == nil {
				p.Calib = &Calib{}
			}
			set(&p.Calib.Source, o.Calib) // a file: relative to the working directory
			if o.Calib != nil && *o.Calib != "self" && r.Dir != "" && !filepath.IsAbs(*o.Calib) {
				if abs, err := filepath.Abs(*o.Calib); err == nil {
					p.Calib.Source = abs
				}
			}
			set(&p.Calib.Samples, o.CalibSamples)
			set(&p.Calib.Len, o.CalibLen)
		}
		set(&p.Damp, o.Damp)
		set(&p.BlockSize, o.BlockSize)
		if o.OWL && p.OWL == nil {
			p.OWL = &OWL{}
		}
	}
	if o.SAE || o.SAETensor != nil || o.Latents != nil || o.K != nil || o.L1 != nil || o.Epochs != nil || o.Batch != nil || o.LR != nil || o.Seed != nil {
		if r.SAE == nil {
			r.SAE = &SAE{}
		}
		s := r.SAE
		set(&s.Tensor, o.SAETensor)
		set(&s.Latents, o.Latents)
		set(&s.K, o.K)
		set(&s.L1, o.L1)
		set(&s.Epochs, o.Epochs)
		set(&s.Batch, o.Batch)
		set(&s.LR, o.LR)
		set(&s.Seed, o.Seed)
	}
	set(&r.Store.Format, o.Format)
	set(&r.Store.MaxShardSize, o.MaxShardSize)
	if o.Text != nil || o.Ctx != nil || o.Stride != nil || o.MaxTokens != nil {
		if r.Eval == nil {
			r.Eval = &Eval{}
		}
		if o.Text != nil {
			r.SetText(*o.Text)
		}
		set(&r.Eval.Ctx, o.Ctx)
		set(&r.Eval.Stride, o.Stride)
		set(&r.Eval.MaxTokens, o.MaxTokens)
	}
	if o.MaxPPLRatio != nil || o.MaxKL != nil || o.MinTop1 != nil {
		if r.Gates == nil {
			r.Gates = &Gates{}
		}
		g := r.Gates
		for _, f := range []struct {
			dst **float64
			v   *float64
		}{{&g.MaxPPLRatio, o.MaxPPLRatio}, {&g.MaxKL, o.MaxKL}, {&g.MinTop1, o.MinTop1}} {
			if f.v != nil {
				v := *f.v
				*f.dst = &v
			}
		}
	}
	if o.Sweep != nil {
		r.Sweep = append([]float64(nil), (*o.Sweep)...)
	}
	if o.SweepMethods != nil {
		r.SweepMethods = nil
		for _, m := range *o.SweepMethods {
			r.SweepMethods = append(r.SweepMethods, strings.TrimSpace(m))
		}
	}
}

// set copies *v into *dst when v is not nil.
func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}
