package safeio

import "testing"

// TestDecodeStrict decodes documents of the right schema, with unknown
// fields, with data after them, and of other schemas (or none).
func TestDecodeStrict(t *testing.T) {
	type doc struct {
		Schema string `json:"schema"`
		N      int    `json:"n"`
	}
	for _, c := range []struct {
		in    string
		other string // "-": no other schema reported
		ok    bool
	}{
		{`{"schema": "a/v1", "n": 3}` + "\n", "-", true},
		{`{"schema": "a/v1", "n": 3, "x": 1}`, "-", false},
		{`{"schema": "a/v1", "n": 3} {}`, "-", false},
		{`{"schema": "a/v1", "n": "3"}`, "-", false},
		{`{"schema": "b/v1", "m": 3}`, "b/v1", false},
		{`{"m": 3}`, "", false},
		{`[1, 2]`, "-", false},
		{`{"schema": "a/v1", "n": 3`, "-", false},
	} {
		var d doc
		other, err := DecodeStrict([]byte(c.in), &d, "a/v1")
		got := "-"
		if other != nil {
			got = *other
		}
		if (err == nil) != c.ok || got != c.other {
			t.Errorf("%s: other %q, error %v; want other %q, ok %v", c.in, got, err, c.other, c.ok)
		}
		if c.ok && d.N != 3 {
			t.Errorf("%s: decoded %+v", c.in, d)
		}
	}
}
