package model

import (
	"fmt"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// Tensors supplies float32 weights by Hugging Face name to [NewFromTensors]:
// the way a model is built from weights that live elsewhere (an ONNX
// file's initializers) without first decoding all of them at once.
type Tensors interface {
	// Shape returns the dimensions of the tensor called name, and whether
	// it exists.
	Shape(name string) ([]int, bool)
	// Read decodes the whole tensor, row-major, into dst (of exactly its
	// element count).
	Read(name string, dst []float32) error
}

// NewFromTensors builds a resident model (Options.Stream must be "",
// "auto" or "off") reading each weight from t once, as [New] reads its
// map: only one tensor is decoded at a time besides the model itself.
func NewFromTensors(cfg *checkpoint.Config, t Tensors, opt Options) (*Model, error) {
	if cfg == nil {
		return nil, fmt.Errorf("%w: nil config", ErrInput)
	}
	if s, err := streamMode(opt.Stream); err != nil {
		return nil, err
	} else if s == "on" {
		return nil, fmt.Errorf("%w: NewFromTensors builds resident models only (Stream %q)", ErrInput, opt.Stream)
	}
	return build(cfg, tensorsSource{t}, opt, nil)
}

type tensorsSource struct{ t Tensors }

func (s tensorsSource) has(name string) bool { _, ok := s.t.Shape(name); return ok }

func (s tensorsSource) check(name string, want ...int) error {
	sh, ok := s.t.Shape(name)
	if !ok {
		return fmt.Errorf("%w: tensor %q is missing", checkpoint.ErrFormat, name)
	}
	if len(sh) != len(want) {
		return fmt.Errorf("%w: tensor %q has shape %v, want %v", checkpoint.ErrFormat, name, sh, want)
	}
	for i := range sh {
		if sh[i] != want[i] {
			return fmt.Errorf("%w: tensor %q has shape %v, want %v", checkpoint.ErrFormat, name, sh, want)
		}
	}
	return nil
}

func (s tensorsSource) read(name string, off int, dst []float32, _ *[]byte) error {
	sh, ok := s.t.Shape(name)
	if !ok {
		return fmt.Errorf("%w: tensor %q is missing", checkpoint.ErrFormat, name)
	}
	n := 1
	for _, d := range sh {
		n *= d
	}
	if off == 0 && len(dst) == n {
		return s.t.Read(name, dst)
	}
	if off < 0 || off+len(dst) > n {
		return fmt.Errorf("%w: tensor %q: values [%d, %d) of %d", checkpoint.ErrFormat, name, off, off+len(dst), n)
	}
	all := make([]float32, n)
	if err := s.t.Read(name, all); err != nil {
		return err
	}
	copy(dst, all[off:])
	return nil
}

func (s tensorsSource) partial(string) bool { return false }
