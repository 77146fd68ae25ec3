package sparsify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/lmsparse/lmsparse/formats/sparse"
	"github.com/lmsparse/lmsparse/manifest"
)

// CTVersion is the compressed-tensors version recorded in the
// quantization_config lmsparse writes: the first release that reads parts
// named by module (NAME.compressed for NAME.weight).
const CTVersion = "0.9.0"

// ctSparsityConfig is compressed-tensors' SparsityCompressionConfig as its
// model_dump() writes it; fields in the sorted order update_config
// writes them (json.dump(..., sort_keys=True)).
type ctSparsityConfig struct {
	Format                   string   `json:"format"`
	GlobalSparsity           float64  `json:"global_sparsity"`
	Ignore                   []string `json:"ignore"`
	RegistryRequiresSubclass bool     `json:"registry_requires_subclass"`
	SparsityStructure        string   `json:"sparsity_structure"`
	Targets                  []string `json:"targets"`
}

// ctConfig is the quantization_config block compressed-tensors'
// ModelCompressor.update_config writes for a sparsity-only model.
type ctConfig struct {
	QuantMethod    string           `json:"quant_method"`
	SparsityConfig ctSparsityConfig `json:"sparsity_config"`
	Version        string           `json:"version"`
}

// CTFormat returns compressed-tensors' name of a layout
// ("sparse-bitmask", "sparse-24-bitmask"), "" for the others.
func CTFormat(e sparse.Encoding) string {
	switch e {
	case sparse.Bitmask:
		return "sparse-bitmask"
	case sparse.Bitmask24:
		return "sparse-24-bitmask"
	}
	return ""
}

// moduleClass names the torch module class that holds weight tensor name
// (without ".weight") in a Hugging Face model of modelType:
// Embedding, Conv1D (GPT-2's attention and MLP projections) or Linear.
func moduleClass(modelType, module string) string {
	last := module[strings.LastIndexByte(module, '.')+1:]
	switch {
	case last == "embed_tokens" || last == "wte" || last == "wpe":
		return "Embedding"
	case modelType == "gpt2" && strings.HasPrefix(last, "c_"):
		return "Conv1D"
	}
	return "Linear"
}

// ctConfig builds the quantization_config of a checkpoint whose targets
// use layout ct: targets are the module classes of the compressed
// tensors, ignore every other module of those classes (the LM head
// included, also when tied and so absent from the file), so that readers
// that go by targets (transformers' in-memory path, vLLM) treat exactly
// the compressed modules as sparse.
func (j *Job) ctConfig(ct sparse.Encoding) ctConfig {
	modelType := ""
	if j.m.Config != nil {
		modelType = j.m.Config.ModelType
	}
	compressed := map[string]bool{}
	for _, t := range j.targets {
		if t.enc == ct {
			mod, _ := sparse.ModulePrefix(t.name)
			compressed[mod] = true
		}
	}
	classes := map[string]bool{}
	for mod := range compressed {
		classes[moduleClass(modelType, mod)] = true
	}
	var modules []string
	hasHead := false
	for _, name := range j.m.Names() {
		info, found := j.m.Tensor(name)
		mod, ok := sparse.ModulePrefix(name)
		if !found || !ok || len(info.Shape) != 2 {
			continue
		}
		modules = append(modules, mod)
		hasHead = hasHead || mod == "lm_head"
	}
	if !hasHead {
		modules = append(modules, "lm_head") // tied: the module exists in the model
	}
	ignore := []string{}
	for _, mod := range modules {
		if classes[moduleClass(modelType, mod)] && !compressed[mod] {
			ignore = append(ignore, mod)
		}
	}
	slices.Sort(ignore)
	targets := []string{}
	for c := range classes {
		targets = append(targets, c)
	}
	slices.Sort(targets)
	structure := "unstructured"
	if ct == sparse.Bitmask24 {
		structure = "2:4"
	} else if j.opts.Method.IsNM() {
		structure = fmt.Sprintf("%d:%d", j.opts.Method.N, j.opts.Method.M)
	}
	_, sp := targetTotals(j.targets)
	return ctConfig{
		QuantMethod: "compressed-tensors",
		SparsityConfig: ctSparsityConfig{
			Format: CTFormat(ct), GlobalSparsity: manifest.Round(sp, 6), Ignore: ignore,
			SparsityStructure: structure, Targets: targets,
		},
		Version: CTVersion,
	}
}

// check24 refuses targets the sparse-24-bitmask layout cannot hold as
// pruned: it groups along the stored last dimension, lmsparse's N:M along
// the input dimension, so only tensors stored [out, in] with a multiple of
// 4 inputs, pruned 2:4, fit (GPT-2's Conv1D weights, stored [in, out], do
// not).
// fits24 reports whether target t can be stored as sparse-24-bitmask.
func fits24(t *target) bool {
	return t.method.N == 2 && t.method.M == 4 && !t.transposed && t.sCols%4 == 0
}

func check24(targets []*target) error {
	for _, t := range targets {
		if len(t.info.Shape) != 2 {
			continue
		}
		if _, ok := sparse.ModulePrefix(t.name); !ok {
			continue // stays dense
		}
		switch {
		case t.method.N != 2 || t.method.M != 4:
			return invalidf("format 24bitmask needs --pattern 2:4 (tensor %q is pruned %s)", t.name, t.method)
		case t.transposed:
			return invalidf("format 24bitmask: tensor %q is stored [in, out] (GPT-2 Conv1D): lmsparse groups its 2:4 along the stored rows, sparse-24-bitmask along the stored columns; use --format bitmask or csr, or --exclude it", t.name)
		case t.sCols%4 != 0:
			return invalidf("format 24bitmask: tensor %q has %d columns, not a multiple of 4", t.name, t.sCols)
		}
	}
	return nil
}
