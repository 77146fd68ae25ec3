package checkpoint

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

func TestQuantizationConfigRoundTrip(t *testing.T) {
	qc := map[string]any{"quant_method": "compressed-tensors", "sparsity_config": map[string]any{"format": "sparse-bitmask"}}
	for _, orig := range []string{
		"{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n",
		`{"a":1}`,
		"{\"a\": {\"x\": 2}}  \n\n",
	} {
		with, err := AddQuantizationConfig([]byte(orig), qc)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(with, &m); err != nil {
			t.Fatalf("%q: result is not JSON: %v\n%s", orig, err, with)
		}
		if m["quantization_config"].(map[string]any)["quant_method"] != "compressed-tensors" || m["a"] == nil {
			t.Errorf("%q: %s", orig, with)
		}
		back, err := RemoveQuantizationConfig(with)
		if err != nil || !bytes.Equal(back, []byte(orig)) {
			t.Errorf("round trip of %q gave %q (%v)", orig, back, err)
		}
	}
	if _, err := AddQuantizationConfig([]byte(`{"quantization_config":{}}`), qc); !errors.Is(err, ErrUnsupported) {
		t.Errorf("existing quantization_config: err = %v", err)
	}
	if _, err := AddQuantizationConfig([]byte(`{}`), qc); !errors.Is(err, ErrFormat) {
		t.Errorf("empty config: err = %v", err)
	}
	// Edited by hand: falls back to re-encoding without the key.
	out, err := RemoveQuantizationConfig([]byte(`{"quantization_config": {"x": 1}, "a": 2}`))
	var m map[string]any
	if err != nil || json.Unmarshal(out, &m) != nil || m["quantization_config"] != nil || m["a"] != 2.0 {
		t.Errorf("fallback: %s %v", out, err)
	}
}
