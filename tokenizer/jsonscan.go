package tokenizer

import (
	"encoding/json"
	"errors"
	"strconv"
	"unicode/utf8"
)

// A small validating JSON scanner for the big parts of tokenizer.json (the
// top-level object, the model, its vocab and merges), several times faster
// than encoding/json's Decoder.Token; the small components are decoded
// with encoding/json.

type jsonScanner struct {
	b []byte
	i int
}

func (s *jsonScanner) fail(what string) error {
	return errors.New("invalid JSON at byte " + strconv.Itoa(s.i) + ": " + what)
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// peek returns the next non-space byte, or 0 at the end.
func (s *jsonScanner) peek() byte {
	s.ws()
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) consume(c byte) bool {
	if s.peek() == c {
		s.i++
		return true
	}
	return false
}

// str reads a string. Strings without escapes that are valid UTF-8 are
// sliced directly; the others go through encoding/json (which, like
// JSON.parse, replaces ill-formed UTF-8 with U+FFFD).
func (s *jsonScanner) str() (string, error) {
	if s.peek() != '"' {
		return "", s.fail("expected a string")
	}
	start := s.i
	s.i++
	plain := true
	for {
		if s.i >= len(s.b) {
			return "", s.fail("unterminated string")
		}
		c := s.b[s.i]
		switch {
		case c == '"':
			s.i++
			raw := s.b[start:s.i]
			if plain && utf8.Valid(raw) {
				return string(raw[1 : len(raw)-1]), nil
			}
			var out string
			if err := json.Unmarshal(raw, &out); err != nil {
				return "", s.fail("bad string")
			}
			return out, nil
		case c == '\\':
			plain = false
			if s.i+1 >= len(s.b) {
				return "", s.fail("unterminated string")
			}
			switch s.b[s.i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.i += 2
			case 'u':
				if s.i+6 > len(s.b) {
					return "", s.fail("bad \\u escape")
				}
				for _, h := range s.b[s.i+2 : s.i+6] {
					if _, ok := hexDigit(h); !ok {
						return "", s.fail("bad \\u escape")
					}
				}
				s.i += 6
			default:
				return "", s.fail("bad escape")
			}
		case c < 0x20:
			return "", s.fail("control character in string")
		default:
			s.i++
		}
	}
}

// number reads a JSON number and returns its text.
func (s *jsonScanner) number() (string, error) {
	s.ws()
	start := s.i
	digits := func() bool {
		n := s.i
		for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
			s.i++
		}
		return s.i > n
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		s.i++
	}
	if s.i < len(s.b) && s.b[s.i] == '0' {
		s.i++
	} else if !digits() {
		return "", s.fail("bad number")
	}
	if s.i < len(s.b) && s.b[s.i] == '.' {
		s.i++
		if !digits() {
			return "", s.fail("bad number")
		}
	}
	if s.i < len(s.b) && (s.b[s.i] == 'e' || s.b[s.i] == 'E') {
		s.i++
		if s.i < len(s.b) && (s.b[s.i] == '+' || s.b[s.i] == '-') {
			s.i++
		}
		if !digits() {
			return "", s.fail("bad number")
		}
	}
	return string(s.b[start:s.i]), nil
}

// skip validates and skips one value, nested at most 10000 deep.
func (s *jsonScanner) skip(depth int) error {
	if depth > 10000 {
		return s.fail("nested too deep")
	}
	switch c := s.peek(); {
	case c == '"':
		_, err := s.str()
		return err
	case c == '{':
		s.i++
		if s.consume('}') {
			return nil
		}
		for {
			if _, err := s.str(); err != nil {
				return err
			}
			if !s.consume(':') {
				return s.fail("expected ':'")
			}
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if s.consume('}') {
				return nil
			}
			if !s.consume(',') {
				return s.fail("expected ',' or '}'")
			}
		}
	case c == '[':
		s.i++
		if s.consume(']') {
			return nil
		}
		for {
			if err := s.skip(depth + 1); err != nil {
				return err
			}
			if s.consume(']') {
				return nil
			}
			if !s.consume(',') {
				return s.fail("expected ',' or ']'")
			}
		}
	case c == '-' || c >= '0' && c <= '9':
		_, err := s.number()
		return err
	case c == 't', c == 'f', c == 'n':
		for _, lit := range []string{"true", "false", "null"} {
			if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
				s.i += len(lit)
				return nil
			}
		}
	}
	return s.fail("unexpected character")
}

// objectFields splits a JSON object into its fields (a repeated key keeps
// its last value, as in encoding/json); the values are validated and
// sliced, not copied. With whole, nothing may follow the object.
func objectFields(b []byte, whole bool) (map[string]json.RawMessage, error) {
	s := &jsonScanner{b: b}
	if !s.consume('{') {
		return nil, s.fail("expected an object")
	}
	fields := make(map[string]json.RawMessage)
	if !s.consume('}') {
		for {
			k, err := s.str()
			if err != nil {
				return nil, err
			}
			if !s.consume(':') {
				return nil, s.fail("expected ':'")
			}
			s.ws()
			start := s.i
			if err := s.skip(0); err != nil {
				return nil, err
			}
			fields[k] = json.RawMessage(b[start:s.i])
			if s.consume('}') {
				break
			}
			if !s.consume(',') {
				return nil, s.fail("expected ',' or '}'")
			}
		}
	}
	if whole && s.peek() != 0 {
		return nil, s.fail("data after the object")
	}
	return fields, nil
}
