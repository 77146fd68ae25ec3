package gen

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// RawTensor is one header entry, written exactly as given.
type RawTensor struct {
	Name       string
	DType      string
	Shape      []int64
	Begin, End int64
}

// RawFile is a safetensors file in pieces: header entries in the order they
// are written, optional metadata, and the data section.
type RawFile struct {
	Metadata map[string]string // written first when non-nil, keys sorted
	Tensors  []RawTensor
	Data     []byte
}

// Encode serializes f without validating anything: duplicate names,
// overlapping or out-of-range offsets and negative dimensions are written
// as given. The header is padded with spaces to a multiple of 8.
func (f RawFile) Encode() []byte {
	return f.encodeHeader(f.header(), -1)
}

// header renders the JSON header text.
func (f RawFile) header() string {
	var b bytes.Buffer
	b.WriteByte('{')
	first := true
	sep := func() {
		if !first {
			b.WriteByte(',')
		}
		first = false
	}
	if f.Metadata != nil {
		sep()
		keys := make([]string, 0, len(f.Metadata))
		for k := range f.Metadata {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%s:%s", jsonQuote(k), jsonQuote(f.Metadata[k]))
		}
		b.WriteByte('}')
	}
	for _, t := range f.Tensors {
		sep()
		fmt.Fprintf(&b, `%s:{"dtype":%s,"shape":[`, jsonQuote(t.Name), jsonQuote(t.DType))
		for i, d := range t.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(strconv.FormatInt(d, 10))
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, t.Begin, t.End)
	}
	b.WriteByte('}')
	return b.String()
}

// encodeHeader assembles length, header text (padded) and data. A
// non-negative lenOverride replaces the length field.
func (f RawFile) encodeHeader(h string, lenOverride int64) []byte {
	for (8+len(h))%8 != 0 {
		h += " "
	}
	out := make([]byte, 8, 8+len(h)+len(f.Data))
	n := uint64(len(h))
	if lenOverride >= 0 {
		n = uint64(lenOverride)
	}
	binary.LittleEndian.PutUint64(out, n)
	out = append(out, h...)
	return append(out, f.Data...)
}

// DecodeRaw splits a well-formed safetensors file into a RawFile whose
// tensors are in data order. It is a test helper: it trusts its input.
func DecodeRaw(b []byte) (RawFile, error) {
	if len(b) < 8 {
		return RawFile{}, fmt.Errorf("gen: file too short")
	}
	n := binary.LittleEndian.Uint64(b)
	if n > uint64(len(b)-8) {
		return RawFile{}, fmt.Errorf("gen: header length %d past end", n)
	}
	var hdr map[string]json.RawMessage
	if err := json.Unmarshal(b[8:8+n], &hdr); err != nil {
		return RawFile{}, fmt.Errorf("gen: %w", err)
	}
	f := RawFile{Data: append([]byte(nil), b[8+n:]...)}
	for k, v := range hdr {
		if k == "__metadata__" {
			if err := json.Unmarshal(v, &f.Metadata); err != nil {
				return RawFile{}, fmt.Errorf("gen: metadata: %w", err)
			}
			continue
		}
		var e struct {
			DType       string  `json:"dtype"`
			Shape       []int64 `json:"shape"`
			DataOffsets []int64 `json:"data_offsets"`
		}
		if err := json.Unmarshal(v, &e); err != nil || len(e.DataOffsets) != 2 {
			return RawFile{}, fmt.Errorf("gen: tensor %q: bad entry", k)
		}
		f.Tensors = append(f.Tensors, RawTensor{k, e.DType, e.Shape, e.DataOffsets[0], e.DataOffsets[1]})
	}
	sort.Slice(f.Tensors, func(i, j int) bool {
		if f.Tensors[i].Begin != f.Tensors[j].Begin {
			return f.Tensors[i].Begin < f.Tensors[j].Begin
		}
		return f.Tensors[i].Name < f.Tensors[j].Name
	})
	return f, nil
}

// jsonQuote quotes s as a JSON string (HTML characters unescaped): as
// strconv.Quote for printable text, with JSON's escapes for control
// characters.
func jsonQuote(s string) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	return strings.TrimSuffix(b.String(), "\n")
}
