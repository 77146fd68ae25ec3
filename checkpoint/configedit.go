package checkpoint

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// quantKey is the config.json key compressed-tensors readers look for.
const quantKey = `"quantization_config": `

// AddQuantizationConfig returns config.json content with a
// "quantization_config" entry holding qc appended as the object's last key.
// The rest of the text is kept byte for byte, so RemoveQuantizationConfig
// restores the original exactly. It fails if the config already has one.
func AddQuantizationConfig(orig []byte, qc any) ([]byte, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(orig, &probe); err != nil {
		return nil, fmt.Errorf("%w: config.json: invalid JSON: %v", ErrFormat, err)
	}
	if _, ok := probe["quantization_config"]; ok {
		return nil, fmt.Errorf("%w: config.json already has a quantization_config; lmsparse will not replace it", ErrUnsupported)
	}
	end := bytes.LastIndexByte(orig, '}')
	body := bytes.TrimRight(orig[:end], " \t\r\n")
	if len(body) == 0 || body[len(body)-1] == '{' {
		return nil, fmt.Errorf("%w: config.json is an empty object", ErrFormat)
	}
	block, err := json.MarshalIndent(qc, "  ", "  ")
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Write(body)
	out.WriteString(",\n  " + quantKey)
	out.Write(block)
	out.Write(orig[len(body):])
	return out.Bytes(), nil
}

// RemoveQuantizationConfig undoes AddQuantizationConfig: when the text holds
// the entry exactly as AddQuantizationConfig wrote it, the original bytes
// come back; otherwise the config is re-encoded without the key (same
// content, different formatting). It returns the input unchanged when
// there is no quantization_config.
func RemoveQuantizationConfig(cfg []byte) ([]byte, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(cfg, &probe); err != nil {
		return nil, fmt.Errorf("%w: config.json: invalid JSON: %v", ErrFormat, err)
	}
	if _, ok := probe["quantization_config"]; !ok {
		return cfg, nil
	}
	marker := []byte(",\n  " + quantKey)
	if i := bytes.LastIndex(cfg, marker); i >= 0 {
		dec := json.NewDecoder(bytes.NewReader(cfg[i+len(marker):]))
		var v json.RawMessage
		if err := dec.Decode(&v); err == nil {
			rest := cfg[i+len(marker)+int(dec.InputOffset()):]
			if t := bytes.TrimLeft(rest, " \t\r\n"); len(t) > 0 && t[0] == '}' {
				out := append(append([]byte(nil), cfg[:i]...), rest...)
				if json.Valid(out) {
					return out, nil
				}
			}
		}
	}
	delete(probe, "quantization_config")
	out, err := json.MarshalIndent(probe, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
