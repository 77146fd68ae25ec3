package prune

import (
	"errors"
	"testing"
)

func TestParsePattern(t *testing.T) {
	for _, c := range []struct {
		in   string
		n, m int
		err  string
	}{
		{"2:4", 2, 4, ""},
		{"1:8", 1, 8, ""},
		{"0:3", 0, 3, ""},
		{"2-4", 0, 0, "want N:M, e.g. 2:4"},
		{"2:", 0, 0, "want N:M, e.g. 2:4"},
		{"a:4", 0, 0, "want N:M, e.g. 2:4"},
		{"2:0", 0, 0, "M must be at least 1"},
	} {
		m, err := ParsePattern(c.in)
		if c.err != "" {
			if err == nil || !errors.Is(err, ErrInvalid) || Reason(err) != c.err {
				t.Errorf("ParsePattern(%q) = %v, %v; want error %q", c.in, m, err, c.err)
			}
			continue
		}
		if err != nil || m.N != c.n || m.M != c.m {
			t.Errorf("ParsePattern(%q) = %+v, %v; want %d:%d", c.in, m, err, c.n, c.m)
		}
	}
}
