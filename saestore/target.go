package saestore

import (
	"fmt"
	"strings"

	"github.com/lmsparse/lmsparse/arch"
	"github.com/lmsparse/lmsparse/checkpoint"
	"github.com/lmsparse/lmsparse/internal/match"
	"github.com/lmsparse/lmsparse/tensor"
)

// NotFoundError reports that the tensor to compress is not in the model:
// a name it does not have, or, when no name was given, a model without a
// token embedding.
type NotFoundError struct {
	// Model is the checkpoint's path.
	Model string
	// Name is the tensor asked for; "" when looking for the token
	// embedding.
	Name string
	// Nearest are the model's names closest to Name.
	Nearest []string
}

func (e *NotFoundError) Error() string {
	if e.Name == "" {
		return fmt.Sprintf("%s has no token embedding (%s)", e.Model, strings.Join(arch.EmbeddingNames(), ", "))
	}
	return fmt.Sprintf("%s has no tensor %q; nearest names: %s", e.Model, e.Name, strings.Join(e.Nearest, ", "))
}

// Target returns the tensor of m to compress: name, or when name is "" the
// first token embedding of arch.EmbeddingNames that m has. A missing tensor
// is a [*NotFoundError]; a tensor that is not a non-empty 2-D matrix
// returns an error wrapping sae.ErrInvalid, and one whose dtype is not F32,
// F64, F16 or BF16 (those lmsparse can write) an error wrapping
// tensor.ErrDType; both name the file and the tensor.
func Target(m *checkpoint.Model, name string) (checkpoint.Tensor, error) {
	if name == "" {
		for _, n := range arch.EmbeddingNames() {
			if _, ok := m.Tensor(n); ok {
				name = n
				break
			}
		}
		if name == "" {
			return checkpoint.Tensor{}, &NotFoundError{Model: m.Path}
		}
	}
	info, ok := m.Tensor(name)
	if !ok {
		return info, &NotFoundError{Model: m.Path, Name: name, Nearest: match.Nearest(name, m.Names(), 3)}
	}
	if _, _, err := shape2(info); err != nil {
		return info, err
	}
	switch info.DType {
	case tensor.F32, tensor.F64, tensor.F16, tensor.BF16:
	default:
		return info, fmt.Errorf("%s: tensor %q: %w: the autoencoder stores F32, F64, F16 or BF16, not %s", info.File, name, tensor.ErrDType, info.DType)
	}
	return info, nil
}
