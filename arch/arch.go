package arch

import (
	"regexp"
	"strings"
)

// Arch is the per-architecture knowledge lmsparse uses outside the forward
// pass.
type Arch struct {
	// Family is "llama", "gpt2" or "" (generic).
	Family string
	// Embeddings are the token embedding's possible names, most likely
	// first.
	Embeddings []string
	// Head is the untied LM head's name ("" when unknown).
	Head string
	// conv1D matches weights stored [in, out].
	conv1D *regexp.Regexp
}

var (
	blockWeight = regexp.MustCompile(`(^|\.)(layers|layer|h|blocks|block)\.[0-9]+\.`)
	gpt2Conv1D  = regexp.MustCompile(`(^|\.)(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$`)
)

// embeddingNames are the token embedding names of every family, in the
// order lmsparse looks for them.
var embeddingNames = []string{"model.embed_tokens.weight", "transformer.wte.weight", "wte.weight", "embed_tokens.weight"}

// Lookup returns the architecture of a config.json model_type.
func Lookup(modelType string) Arch {
	switch modelType {
	case "llama", "mistral", "qwen2":
		return Arch{Family: "llama", Embeddings: embeddingNames, Head: "lm_head.weight"}
	case "gpt2":
		return Arch{Family: "gpt2", Embeddings: embeddingNames, Head: "lm_head.weight", conv1D: gpt2Conv1D}
	}
	return Arch{Embeddings: embeddingNames}
}

// EmbeddingNames returns the token embedding names lmsparse knows, in the
// order it looks for them.
func EmbeddingNames() []string { return append([]string(nil), embeddingNames...) }

// IsBlockWeight reports whether name is a weight inside a transformer
// block (model.layers.N.…weight, transformer.h.N.…weight, …).
func IsBlockWeight(name string) bool {
	return strings.HasSuffix(name, ".weight") && blockWeight.MatchString(name)
}

// DefaultTarget reports whether a tensor of this shape is pruned by
// default: a 2-D weight inside a transformer block.
func (a Arch) DefaultTarget(name string, shape []int64) bool {
	return len(shape) == 2 && IsBlockWeight(name)
}

// Transposed reports whether the 2-D weight name is stored [in, out]
// (GPT-2's Conv1D) rather than [out, in].
func (a Arch) Transposed(name string) bool {
	return a.conv1D != nil && a.conv1D.MatchString(name)
}

// IsEmbedding reports whether name is a token embedding name.
func IsEmbedding(name string) bool {
	for _, n := range embeddingNames {
		if n == name {
			return true
		}
	}
	return false
}
