package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"
)

// Config is the part of a Hugging Face config.json that lmsparse uses,
// normalized across model families.
type Config struct {
	ModelType     string   // "llama", "mistral", "qwen2" or "gpt2"
	Architectures []string // e.g. ["LlamaForCausalLM"]

	HiddenSize       int // d_model (gpt2: n_embd)
	NumLayers        int // gpt2: n_layer
	NumHeads         int // gpt2: n_head
	NumKVHeads       int // grouped-query attention; equals NumHeads for gpt2
	HeadDim          int // HiddenSize/NumHeads unless config sets head_dim
	IntermediateSize int // MLP width (gpt2: n_inner, default 4·n_embd)
	VocabSize        int
	MaxPositions     int // max_position_embeddings (gpt2: n_positions)

	NormEps           float64 // rms_norm_eps or layer_norm_epsilon
	RopeTheta         float64 // llama family only; 0 for gpt2
	TieWordEmbeddings bool    // the LM head reuses the token embedding
	Activation        string  // hidden_act / activation_function
	TorchDType        string  // torch_dtype as written, may be ""

	// Fields that change the forward pass, which lmsparse does not
	// implement: package model refuses a model that sets them (see
	// docs/SECURITY.md, "Config fields that change the math").

	// RopeScaling is rope_scaling's type ("linear", "llama3", "dynamic",
	// …), "" when absent, null or "default".
	RopeScaling string
	// AttentionBias is attention_bias (llama family): the q/k/v/o
	// projections have biases, which the checkpoint must then hold.
	AttentionBias bool
	// SlidingWindow is the attention window of mistral (sliding_window),
	// or of qwen2 with use_sliding_window; 0 when attention is full.
	SlidingWindow int
}

// Supported lists the model_type values lmsparse understands.
var supported = []string{"gpt2", "llama", "mistral", "qwen2"}

// SupportedTypes returns the model_type values lmsparse understands.
func SupportedTypes() []string { return append([]string(nil), supported...) }

// Limits on sizes read from config.json. They are far above any real model
// and keep later size arithmetic well inside int64.
const (
	maxConfigSize = 16 << 20
	maxDim        = 1 << 20 // hidden, intermediate, head counts
	maxLayers     = 10_000
	maxVocab      = 1 << 24
	maxPositions  = 1 << 24
)

// rawConfig mirrors the keys read from config.json; pointers tell absent
// from zero.
type rawConfig struct {
	ModelType     *string  `json:"model_type"`
	Architectures []string `json:"architectures"`
	TorchDType    *string  `json:"torch_dtype"`
	VocabSize     *int     `json:"vocab_size"`
	Tie           *bool    `json:"tie_word_embeddings"`

	// llama family
	HiddenSize   *int     `json:"hidden_size"`
	Intermediate *int     `json:"intermediate_size"`
	Layers       *int     `json:"num_hidden_layers"`
	Heads        *int     `json:"num_attention_heads"`
	KVHeads      *int     `json:"num_key_value_heads"`
	HeadDim      *int     `json:"head_dim"`
	MaxPos       *int     `json:"max_position_embeddings"`
	RMSEps       *float64 `json:"rms_norm_eps"`
	RopeTheta    *float64 `json:"rope_theta"`
	HiddenAct    *string  `json:"hidden_act"`
	RopeScaling  *struct {
		Type     *string `json:"type"`
		RopeType *string `json:"rope_type"`
	} `json:"rope_scaling"`
	AttentionBias    *bool `json:"attention_bias"`
	SlidingWindow    *int  `json:"sliding_window"`
	UseSlidingWindow *bool `json:"use_sliding_window"`

	// gpt2
	NEmbd  *int     `json:"n_embd"`
	NLayer *int     `json:"n_layer"`
	NHead  *int     `json:"n_head"`
	NInner *int     `json:"n_inner"`
	NPos   *int     `json:"n_positions"`
	NCtx   *int     `json:"n_ctx"`
	LNEps  *float64 `json:"layer_norm_epsilon"`
	ActFn  *string  `json:"activation_function"`
}

// ParseConfig parses config.json. Errors wrap ErrFormat (malformed or
// inconsistent values) or ErrUnsupported (a model_type lmsparse does not
// handle, named in the message).
func ParseConfig(data []byte) (*Config, error) {
	if len(data) > maxConfigSize {
		return nil, fmt.Errorf("%w: config.json is %d bytes (at most %d)", ErrFormat, len(data), maxConfigSize)
	}
	if !utf8.Valid(data) {
		return nil, fmt.Errorf("%w: config.json is not valid UTF-8", ErrFormat)
	}
	var raw rawConfig
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			return nil, fmt.Errorf("%w: config.json: %q has the wrong type (%s, want %s)", ErrFormat, te.Field, te.Value, te.Type)
		}
		return nil, fmt.Errorf("%w: config.json: invalid JSON: %v", ErrFormat, err)
	}
	if rest := bytes.TrimLeft(data[dec.InputOffset():], " \t\r\n"); len(rest) > 0 {
		return nil, fmt.Errorf("%w: config.json: %d bytes after the JSON object (trailing garbage, or a second value)", ErrFormat, len(rest))
	}
	if raw.ModelType == nil || *raw.ModelType == "" {
		return nil, fmt.Errorf("%w: config.json has no model_type", ErrFormat)
	}
	c := &Config{ModelType: *raw.ModelType, Architectures: raw.Architectures}
	if raw.TorchDType != nil {
		c.TorchDType = *raw.TorchDType
	}
	if i := sort.SearchStrings(supported, c.ModelType); i == len(supported) || supported[i] != c.ModelType {
		return nil, fmt.Errorf("%w: model_type %q (supported: %s)", ErrUnsupported, c.ModelType, strings.Join(supported, ", "))
	}
	var err error
	req := func(p *int, key string, max int) int {
		if err != nil {
			return 0
		}
		if p == nil {
			err = fmt.Errorf("%w: config.json: %s is missing", ErrFormat, key)
			return 0
		}
		if *p <= 0 || *p > max {
			err = fmt.Errorf("%w: config.json: %s = %d is out of range (1..%d)", ErrFormat, key, *p, max)
			return 0
		}
		return *p
	}
	opt := func(p *int, key string, max, def int) int {
		if p == nil {
			return def
		}
		return req(p, key, max)
	}
	str := func(p *string, def string) string {
		if p == nil {
			return def
		}
		return *p
	}
	flt := func(p *float64, key string, def float64) float64 {
		if p == nil {
			return def
		}
		if !(*p > 0) || *p > 1e12 {
			if err == nil {
				err = fmt.Errorf("%w: config.json: %s = %g must be positive", ErrFormat, key, *p)
			}
		}
		return *p
	}
	if c.ModelType == "gpt2" {
		c.HiddenSize = req(raw.NEmbd, "n_embd", maxDim)
		c.NumLayers = req(raw.NLayer, "n_layer", maxLayers)
		c.NumHeads = req(raw.NHead, "n_head", maxDim)
		c.NumKVHeads = c.NumHeads
		c.VocabSize = req(raw.VocabSize, "vocab_size", maxVocab)
		pos := raw.NPos
		if pos == nil {
			pos = raw.NCtx
		}
		c.MaxPositions = req(pos, "n_positions", maxPositions)
		c.IntermediateSize = opt(raw.NInner, "n_inner", maxDim, 4*c.HiddenSize)
		c.NormEps = flt(raw.LNEps, "layer_norm_epsilon", 1e-5)
		c.Activation = str(raw.ActFn, "gelu_new")
		c.TieWordEmbeddings = raw.Tie == nil || *raw.Tie
	} else {
		c.HiddenSize = req(raw.HiddenSize, "hidden_size", maxDim)
		c.NumLayers = req(raw.Layers, "num_hidden_layers", maxLayers)
		c.NumHeads = req(raw.Heads, "num_attention_heads", maxDim)
		c.NumKVHeads = opt(raw.KVHeads, "num_key_value_heads", maxDim, c.NumHeads)
		c.IntermediateSize = req(raw.Intermediate, "intermediate_size", maxDim)
		c.VocabSize = req(raw.VocabSize, "vocab_size", maxVocab)
		c.MaxPositions = req(raw.MaxPos, "max_position_embeddings", maxPositions)
		c.NormEps = flt(raw.RMSEps, "rms_norm_eps", 1e-6)
		c.RopeTheta = flt(raw.RopeTheta, "rope_theta", 10000)
		c.Activation = str(raw.HiddenAct, "silu")
		c.TieWordEmbeddings = raw.Tie != nil && *raw.Tie
		if rs := raw.RopeScaling; rs != nil {
			c.RopeScaling = "unknown"
			for _, t := range []*string{rs.RopeType, rs.Type} {
				if t != nil && *t != "" {
					c.RopeScaling = *t
					break
				}
			}
			if c.RopeScaling == "default" {
				c.RopeScaling = ""
			}
		}
		c.AttentionBias = raw.AttentionBias != nil && *raw.AttentionBias
		if raw.SlidingWindow != nil && (c.ModelType == "mistral" || c.ModelType == "qwen2" && raw.UseSlidingWindow != nil && *raw.UseSlidingWindow) {
			c.SlidingWindow = opt(raw.SlidingWindow, "sliding_window", maxPositions, 0)
		}
	}
	if err != nil {
		return nil, err
	}
	if c.ModelType != "gpt2" && raw.HeadDim != nil {
		c.HeadDim = req(raw.HeadDim, "head_dim", maxDim)
	} else {
		if c.HiddenSize%c.NumHeads != 0 {
			return nil, fmt.Errorf("%w: config.json: hidden size %d is not a multiple of %d heads", ErrFormat, c.HiddenSize, c.NumHeads)
		}
		c.HeadDim = c.HiddenSize / c.NumHeads
	}
	if err != nil {
		return nil, err
	}
	if c.NumHeads%c.NumKVHeads != 0 {
		return nil, fmt.Errorf("%w: config.json: %d attention heads are not a multiple of %d key/value heads", ErrFormat, c.NumHeads, c.NumKVHeads)
	}
	return c, nil
}
