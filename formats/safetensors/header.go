package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"unicode/utf8"

	"github.com/lmsparse/lmsparse/tensor"
)

// ErrFormat reports a file that is not a valid safetensors file. Every
// validation error wraps it, so callers can tell bad input from I/O failure.
var ErrFormat = errors.New("not a valid safetensors file")

const (
	// MaxHeaderSize bounds the JSON header (100 MB, the limit of the
	// reference implementation).
	MaxHeaderSize = 100_000_000
	// MaxNameLen bounds a tensor name or metadata key.
	MaxNameLen = 4096
	// MaxTensors bounds the tensors of one file (65,536; real checkpoints
	// hold at most a few thousand per shard), so that the memory and time
	// spent per file stay small whatever its header.
	MaxTensors = 1 << 16
	// metadataKey is the reserved header key that holds string metadata.
	metadataKey = "__metadata__"
)

// TensorInfo describes one tensor of a file.
type TensorInfo struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
	// Offset is the first byte of the tensor, relative to the start of the
	// data section; Size is its length in bytes.
	Offset, Size int64
}

// Header is a parsed and validated safetensors header.
type Header struct {
	// Metadata is the __metadata__ map, nil when the file has none.
	Metadata map[string]string
	// Tensors are in data order: ascending offset, ties by name.
	Tensors []TensorInfo
	// DataSize is the length of the data section in bytes.
	DataSize int64
}

func formatErr(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrFormat}, args...)...)
}

// ParseHeader parses and validates the JSON header buf of a file whose data
// section is dataSize bytes long. It checks that the JSON is a single object
// with no duplicate keys; that __metadata__, if present, maps strings to
// strings; that every tensor has a valid dtype, a shape with non-negative
// dimensions whose byte count fits in an int64 and equals its data_offsets
// range; and that the ranges lie inside the data section, do not overlap and
// together cover it exactly.
func ParseHeader(buf []byte, dataSize int64) (*Header, error) {
	if dataSize < 0 {
		return nil, formatErr("negative data size %d", dataSize)
	}
	if len(buf) > MaxHeaderSize {
		return nil, formatErr("header is %d bytes, more than the %d-byte limit", len(buf), MaxHeaderSize)
	}
	if !utf8.Valid(buf) {
		return nil, formatErr("header is not valid UTF-8")
	}
	trimmed := bytes.TrimLeft(buf, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, formatErr("header does not start with a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(buf))
	dec.UseNumber()
	if err := expectDelim(dec, '{', "header"); err != nil {
		return nil, err
	}
	h := &Header{DataSize: dataSize}
	seen := make(map[string]bool)
	sawMetadata := false
	for dec.More() {
		key, err := readKey(dec, "header")
		if err != nil {
			return nil, err
		}
		if seen[key] || (key == metadataKey && sawMetadata) {
			return nil, formatErr("duplicate key %q in header", key)
		}
		if key == metadataKey {
			sawMetadata = true
			if h.Metadata, err = readMetadata(dec); err != nil {
				return nil, err
			}
			continue
		}
		if len(h.Tensors) == MaxTensors {
			return nil, formatErr("more than %d tensors in one file", MaxTensors)
		}
		seen[key] = true
		info, err := readTensor(dec, key)
		if err != nil {
			return nil, err
		}
		h.Tensors = append(h.Tensors, info)
	}
	if err := expectDelim(dec, '}', "header"); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, formatErr("data after the header's JSON object")
	}
	if err := h.checkLayout(); err != nil {
		return nil, err
	}
	return h, nil
}

// checkLayout verifies that the tensors' byte ranges tile the data section.
func (h *Header) checkLayout() error {
	sort.SliceStable(h.Tensors, func(i, j int) bool {
		a, b := h.Tensors[i], h.Tensors[j]
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		if a.Size != b.Size {
			return a.Size < b.Size
		}
		return a.Name < b.Name
	})
	var end int64
	for i, t := range h.Tensors {
		if t.Offset+t.Size > h.DataSize {
			return formatErr("tensor %q: data_offsets [%d, %d] run past the end of the %d-byte data section",
				t.Name, t.Offset, t.Offset+t.Size, h.DataSize)
		}
		switch {
		case t.Offset < end:
			prev := h.Tensors[i-1]
			return formatErr("tensor %q: data_offsets [%d, %d] overlap tensor %q [%d, %d]",
				t.Name, t.Offset, t.Offset+t.Size, prev.Name, prev.Offset, prev.Offset+prev.Size)
		case t.Offset > end:
			return formatErr("tensor %q: data_offsets start at %d, leaving bytes [%d, %d) of the data section unused",
				t.Name, t.Offset, end, t.Offset)
		}
		end = t.Offset + t.Size
	}
	if end != h.DataSize {
		return formatErr("tensors cover %d bytes but the data section has %d (bytes [%d, %d) unused)",
			end, h.DataSize, end, h.DataSize)
	}
	return nil
}

func expectDelim(dec *json.Decoder, want json.Delim, where string) error {
	tok, err := dec.Token()
	if err != nil {
		return formatErr("%s: invalid JSON: %v", where, err)
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return formatErr("%s: expected %q, found %v", where, string(want), describe(tok))
	}
	return nil
}

func readKey(dec *json.Decoder, where string) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", formatErr("%s: invalid JSON: %v", where, err)
	}
	key, ok := tok.(string)
	if !ok {
		return "", formatErr("%s: expected a key, found %v", where, describe(tok))
	}
	if len(key) > MaxNameLen {
		return "", formatErr("%s: key of %d bytes (at most %d)", where, len(key), MaxNameLen)
	}
	return key, nil
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return strconv.Quote(v.String())
	case string:
		return "string " + strconv.Quote(v)
	case nil:
		return "null"
	default:
		return fmt.Sprintf("%T %v", v, v)
	}
}

func readMetadata(dec *json.Decoder) (map[string]string, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, formatErr("__metadata__: invalid JSON: %v", err)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, formatErr("__metadata__ must be an object of strings, found %v", describe(tok))
	}
	m := make(map[string]string)
	for dec.More() {
		key, err := readKey(dec, "__metadata__")
		if err != nil {
			return nil, err
		}
		if _, dup := m[key]; dup {
			return nil, formatErr("__metadata__: duplicate key %q", key)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, formatErr("__metadata__: invalid JSON: %v", err)
		}
		v, ok := tok.(string)
		if !ok {
			return nil, formatErr("__metadata__[%q] must be a string, found %v", key, describe(tok))
		}
		m[key] = v
	}
	if err := expectDelim(dec, '}', "__metadata__"); err != nil {
		return nil, err
	}
	return m, nil
}

func readTensor(dec *json.Decoder, name string) (TensorInfo, error) {
	info := TensorInfo{Name: name}
	where := fmt.Sprintf("tensor %q", name)
	if name == "" {
		return info, formatErr("tensor with an empty name")
	}
	if err := expectDelim(dec, '{', where); err != nil {
		return info, err
	}
	var haveDType, haveShape, haveOffsets bool
	var offsets []int64
	for dec.More() {
		key, err := readKey(dec, where)
		if err != nil {
			return info, err
		}
		switch key {
		case "dtype":
			if haveDType {
				return info, formatErr("%s: duplicate key \"dtype\"", where)
			}
			haveDType = true
			tok, err := dec.Token()
			if err != nil {
				return info, formatErr("%s: invalid JSON: %v", where, err)
			}
			s, ok := tok.(string)
			if !ok || !tensor.DType(s).Valid() {
				return info, formatErr("%s: invalid dtype %v", where, describe(tok))
			}
			info.DType = tensor.DType(s)
		case "shape":
			if haveShape {
				return info, formatErr("%s: duplicate key \"shape\"", where)
			}
			haveShape = true
			dims, err := readInts(dec, where+" shape", tensor.MaxDims)
			if err != nil {
				return info, err
			}
			info.Shape = tensor.Shape(dims)
			if info.Shape == nil {
				info.Shape = tensor.Shape{}
			}
		case "data_offsets":
			if haveOffsets {
				return info, formatErr("%s: duplicate key \"data_offsets\"", where)
			}
			haveOffsets = true
			if offsets, err = readInts(dec, where+" data_offsets", 2); err != nil {
				return info, err
			}
			if len(offsets) != 2 {
				return info, formatErr("%s: data_offsets must hold 2 numbers, found %d", where, len(offsets))
			}
		default:
			return info, formatErr("%s: unknown key %q", where, key)
		}
	}
	if err := expectDelim(dec, '}', where); err != nil {
		return info, err
	}
	switch {
	case !haveDType:
		return info, formatErr("%s: missing dtype", where)
	case !haveShape:
		return info, formatErr("%s: missing shape", where)
	case !haveOffsets:
		return info, formatErr("%s: missing data_offsets", where)
	}
	if offsets[1] < offsets[0] {
		return info, formatErr("%s: data_offsets [%d, %d] end before they begin", where, offsets[0], offsets[1])
	}
	info.Offset, info.Size = offsets[0], offsets[1]-offsets[0]
	if info.DType.Known() {
		want, err := info.Shape.Bytes(info.DType)
		if err != nil {
			return info, fmt.Errorf("%w: %s: %w", ErrFormat, where, err)
		}
		if want != info.Size {
			return info, formatErr("%s: data_offsets [%d, %d] span %d bytes but shape %v of %s needs %d",
				where, offsets[0], offsets[1], info.Size, info.Shape, info.DType, want)
		}
	} else if _, err := info.Shape.Elems(); err != nil {
		return info, fmt.Errorf("%w: %s: %w", ErrFormat, where, err)
	}
	return info, nil
}

// readInts reads a JSON array of at most max non-negative integers that fit
// in an int64.
func readInts(dec *json.Decoder, where string, max int) ([]int64, error) {
	if err := expectDelim(dec, '[', where); err != nil {
		return nil, err
	}
	var out []int64
	for dec.More() {
		if len(out) == max {
			return nil, formatErr("%s: more than %d entries", where, max)
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, formatErr("%s: invalid JSON: %v", where, err)
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, formatErr("%s: expected a number, found %v", where, describe(tok))
		}
		v, err := strconv.ParseInt(string(num), 10, 64)
		if err != nil {
			if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
				return nil, formatErr("%s: %s overflows int64", where, num)
			}
			return nil, formatErr("%s: %s is not an integer", where, num)
		}
		if v < 0 {
			return nil, formatErr("%s: negative value %d", where, v)
		}
		out = append(out, v)
	}
	if err := expectDelim(dec, ']', where); err != nil {
		return nil, err
	}
	return out, nil
}
