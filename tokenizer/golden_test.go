package tokenizer

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"testing"
)

// TestGolden compares with tokenizers.js on the edge cases and random
// strings of testdata/golden.json (made by testdata/mkgolden.mjs): ids for
// five tokenizers, decoded text for three.
func TestGolden(t *testing.T) {
	data, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var g struct {
		Files map[string][2]*string
		Cases []struct {
			Bytes   string
			IDs     map[string][]int
			Decoded map[string]string
		}
	}
	if err := json.Unmarshal(data, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.Cases) < 200 {
		t.Fatalf("golden.json has %d cases", len(g.Cases))
	}
	toks := make(map[string]*Tokenizer)
	for name, f := range g.Files {
		toks[name] = loadShared(t, *f[0])
	}
	for i, c := range g.Cases {
		raw, err := base64.StdEncoding.DecodeString(c.Bytes)
		if err != nil {
			t.Fatal(err)
		}
		for name, want := range c.IDs {
			tk := toks[name]
			if tk == nil {
				t.Fatalf("case %d: unknown tokenizer %q", i, name)
			}
			if t.Failed() {
				return // one report is enough
			}
			checkIDs(t, tk, fmt.Sprintf("case %d %s %q", i, name, raw), tk.Encode(string(raw)), want)
			if wantText, ok := c.Decoded[name]; ok {
				got, err := tk.Decode(want)
				if name == "gpt2" {
					got = sanitizeUTF8(got) // tokenizers.js decodes bytes with replacement
				}
				if err != nil || got != wantText {
					t.Errorf("case %d %s: Decode = %q, %v; want %q", i, name, got, err, wantText)
				}
			}
		}
	}
}
