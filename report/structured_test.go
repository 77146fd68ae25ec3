package report

import (
	"bytes"
	"strings"
	"testing"

	"github.com/lmsparse/lmsparse/manifest"
)

// TestStructuredNote: structured rows/cols and zeroed units say that
// shapes are kept; removed units name the config.json changes.
func TestStructuredNote(t *testing.T) {
	cases := []struct {
		m    manifest.Manifest
		want string
	}{
		{manifest.Manifest{Method: "structured rows 25%"}, "structured rows: the pruned rows are zeros and every shape is kept"},
		{manifest.Manifest{Method: "structured cols 50%"}, "structured cols: the pruned cols are zeros"},
		{manifest.Manifest{Method: "magnitude 50% per tensor"}, ""},
		{manifest.Manifest{Shrink: &manifest.Shrink{Units: "mlp"}}, "structured mlp: the pruned units are zeros and every shape is kept (--shrink removes them)"},
		{manifest.Manifest{Shrink: &manifest.Shrink{Units: "heads,mlp", Removed: true, Config: map[string][2]int{
			"head_dim": {8, 8}, "intermediate_size": {172, 86}, "num_attention_heads": {8, 4}, "num_key_value_heads": {4, 2}}}},
			"structured heads,mlp: units removed, shapes and config.json shrunk (intermediate_size 172 -> 86, num_attention_heads 8 -> 4, num_key_value_heads 4 -> 2)"},
		{manifest.Manifest{Shrink: &manifest.Shrink{Units: "mlp", Removed: true}}, "structured mlp: nothing removed at this sparsity"},
	}
	for _, c := range cases {
		if got := StructuredNote(&c.m); !strings.HasPrefix(got, c.want) || (c.want == "" && got != "") {
			t.Errorf("%q: got %q, want %q", c.m.Method, got, c.want)
		}
	}
	// The size report prints the note and the shape after.
	m := &manifest.Manifest{Method: "structured mlp 50% (removed)", Shrink: &manifest.Shrink{Units: "mlp", Removed: true,
		Config: map[string][2]int{"intermediate_size": {4, 2}}},
		Tensors: []manifest.Tensor{{Name: "w", DType: "F32", Shape: []int64{4, 3}, ShapeAfter: []int64{2, 3}, Pruned: true, Encoding: "dense"}}}
	var b bytes.Buffer
	if err := WriteManifest(&b, m); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"[4 3]->[2 3]", "intermediate_size 4 -> 2"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("size report lacks %q:\n%s", want, b.String())
		}
	}
}
