package gen

import (
	"encoding/binary"
	"strings"
)

// Corruption turns a good safetensors file into a bad one.
type Corruption struct {
	Name string
	// Want is a phrase the reader's error message must contain.
	Want string
	// Apply returns a corrupted copy; it does not modify good. The good file
	// must hold at least two tensors with non-empty data, the first one at
	// least 4 bytes long, and __metadata__.
	Apply func(good []byte) []byte
}

// Corruptions lists the bad-input cases of the safetensors reader, each made
// by mutating a good file.
func Corruptions() []Corruption {
	return []Corruption{
		{"too short", "too short", func(g []byte) []byte { return clone(g[:5]) }},
		{"truncated data", "past the end", func(g []byte) []byte { return clone(g[:len(g)-5]) }},
		{"truncated header", "larger than", func(g []byte) []byte {
			n := binary.LittleEndian.Uint64(g)
			return clone(g[:8+n/2])
		}},
		{"header length past end of file", "larger than", func(g []byte) []byte {
			return setLen(g, uint64(len(g)))
		}},
		{"header length over limit", "over the", func(g []byte) []byte { return setLen(g, 100_000_001) }},
		{"header length huge", "over the", func(g []byte) []byte { return setLen(g, 1<<63+5) }},
		{"invalid JSON", "invalid JSON", func(g []byte) []byte {
			return editHeader(g, func(h string) string { return strings.Replace(h, `{"`, `{,"`, 1) })
		}},
		{"header not an object", "JSON object", func(g []byte) []byte {
			return editHeader(g, func(h string) string { return "[" + strings.Repeat(" ", len(h)-2) + "]" })
		}},
		{"header not UTF-8", "UTF-8", func(g []byte) []byte {
			return editHeader(g, func(h string) string { return strings.Replace(h, `":{"dtype"`, "\xff\":{\"dtype\"", 1) })
		}},
		{"trailing data after JSON", "after the header", func(g []byte) []byte {
			return editHeader(g, func(h string) string { return strings.TrimRight(h, " ") + "{}" })
		}},
		{"overlapping ranges", "overlap", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Tensors[1].Begin -= 2; f.Tensors[1].End -= 2 })
		}},
		{"range out of bounds", "past the end", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { last := &f.Tensors[len(f.Tensors)-1]; last.Begin += 8; last.End += 8 })
		}},
		{"gap in data section", "unused", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Data = append(f.Data, 0, 0, 0, 0) })
		}},
		{"end before begin", "end before", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Tensors[0].End = f.Tensors[0].Begin; f.Tensors[0].Begin += 4 })
		}},
		{"byte size not shape times dtype", "needs", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Tensors[0].Shape = append([]int64{2}, f.Tensors[0].Shape...) })
		}},
		{"negative dimension", "negative", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Tensors[0].Shape = []int64{-1} })
		}},
		{"overflowing dimensions", "overflows int64", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Tensors[0].Shape = []int64{1 << 62, 1 << 62} })
		}},
		{"dimension too large for int64", "overflows int64", func(g []byte) []byte {
			return editHeader(g, func(h string) string {
				return strings.Replace(h, `"shape":[`, `"shape":[99999999999999999999,`, 1)
			})
		}},
		{"fractional dimension", "not an integer", func(g []byte) []byte {
			return editHeader(g, func(h string) string { return strings.Replace(h, `"shape":[`, `"shape":[1.5,`, 1) })
		}},
		{"duplicate names", "duplicate", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Tensors[1].Name = f.Tensors[0].Name })
		}},
		{"invalid dtype", "invalid dtype", func(g []byte) []byte {
			return editRaw(g, func(f *RawFile) { f.Tensors[0].DType = "F 32" })
		}},
		{"metadata value not a string", "must be a string", func(g []byte) []byte {
			return editHeader(g, func(h string) string {
				i := strings.Index(h, `"__metadata__":{`) + len(`"__metadata__":{`)
				return h[:i] + `"n":1,` + h[i:]
			})
		}},
		{"unknown tensor key", "unknown key", func(g []byte) []byte {
			return editHeader(g, func(h string) string { return strings.Replace(h, `{"dtype"`, `{"dtypo":"x","dtype"`, 1) })
		}},
		{"missing data_offsets", "missing data_offsets", func(g []byte) []byte {
			return editHeader(g, func(h string) string {
				i := strings.Index(h, `,"data_offsets":[`)
				j := i + strings.Index(h[i:], "]")
				return h[:i] + h[j+1:]
			})
		}},
	}
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

func setLen(g []byte, n uint64) []byte {
	b := clone(g)
	binary.LittleEndian.PutUint64(b, n)
	return b
}

// editHeader rewrites the header text (padding included) and re-encodes.
func editHeader(g []byte, edit func(string) string) []byte {
	n := binary.LittleEndian.Uint64(g)
	h := edit(string(g[8 : 8+n]))
	return RawFile{Data: g[8+n:]}.encodeHeader(h, -1)
}

// editRaw decodes g, lets edit change the pieces, and re-encodes.
func editRaw(g []byte, edit func(*RawFile)) []byte {
	f, err := DecodeRaw(g)
	if err != nil {
		panic(err) // the good file is ours
	}
	edit(&f)
	return f.Encode()
}
