package shrink

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// EditConfig returns config.json content with each key of set given its
// new value (set[key][1]) and any quantization_config removed (the output
// is dense). Other keys keep their values; the object is re-encoded with sorted keys and two-space indentation, as transformers'
// save_pretrained writes it. Without changes and without a
// quantization_config the input is returned as is.
func EditConfig(orig []byte, set map[string][2]int) ([]byte, error) {
	cfg, err := checkpoint.RemoveQuantizationConfig(orig)
	if err != nil {
		return nil, err
	}
	if len(set) == 0 {
		return cfg, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &obj); err != nil {
		return nil, fmt.Errorf("%w: config.json: invalid JSON: %v", checkpoint.ErrFormat, err)
	}
	for k, v := range set {
		obj[k] = json.RawMessage(fmt.Sprint(v[1]))
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(obj); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}
