package gen

import (
	"bytes"
	"testing"

	"github.com/lmsparse/lmsparse/tensor"
	"github.com/lmsparse/lmsparse/tokenizer"
)

func TestWeightsDeterministic(t *testing.T) {
	for _, s := range []Spec{Llama(tensor.BF16, 1), GPT2(tensor.F16, 2)} {
		a, b := Weights(s), Weights(s)
		for i := range a {
			if !bytes.Equal(a[i].Data, b[i].Data) {
				t.Fatalf("%s: seed %d gives different weights on two calls", a[i].Name, s.Seed)
			}
		}
		s.Seed++
		c, same := Weights(s), true
		for i := range a {
			same = same && bytes.Equal(a[i].Data, c[i].Data)
		}
		if same {
			t.Errorf("seeds %d and %d give the same weights", s.Seed-1, s.Seed)
		}
	}
}

func TestCorruptionsChangeTheFile(t *testing.T) {
	good := Pack(Weights(Llama(tensor.F32, 1)), map[string]string{"format": "pt"}).Encode()
	keep := append([]byte(nil), good...)
	for _, c := range Corruptions() {
		if bad := c.Apply(good); bytes.Equal(bad, good) {
			t.Errorf("%s: no change", c.Name)
		}
		if !bytes.Equal(good, keep) {
			t.Fatalf("%s modified the good file in place", c.Name)
		}
	}
	r, err := DecodeRaw(good)
	if err != nil || !bytes.Equal(r.Encode(), good) {
		t.Errorf("DecodeRaw/Encode does not round-trip the good file (err %v)", err)
	}
}

func TestDemoTokenizerIsBytes(t *testing.T) {
	u := tokenizer.ByteToUnicode()
	seen := map[rune]bool{}
	for _, r := range u {
		if seen[r] {
			t.Fatalf("rune %q mapped twice", r)
		}
		seen[r] = true
	}
	if u['A'] != 'A' || u[' '] != 'Ġ' || u['\n'] != 'Ċ' {
		t.Errorf("byte map differs from GPT-2's: space → %q, newline → %q", u[' '], u['\n'])
	}
}
