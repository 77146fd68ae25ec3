package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/lmsparse/lmsparse/internal/atomicfile"
	"github.com/lmsparse/lmsparse/tensor"
)

// Entry is one tensor to write. Write must write exactly Size bytes to w
// and is called once, after every earlier tensor has been written. The
// writer passes its *os.File as w, unbuffered, so Write should write in
// large chunks.
type Entry struct {
	Name  string
	DType tensor.DType
	Shape tensor.Shape
	// Size is the byte length. For a known dtype it must equal
	// Shape.Bytes(DType); for a passthrough dtype it is taken as given.
	Size  int64
	Write func(w io.Writer) error
}

// BytesEntry returns an Entry that writes data.
func BytesEntry(name string, dt tensor.DType, shape tensor.Shape, data []byte) Entry {
	return Entry{Name: name, DType: dt, Shape: shape, Size: int64(len(data)),
		Write: func(w io.Writer) error { _, err := w.Write(data); return err }}
}

// Layout returns the header that WriteFile would write for these entries
// (with data offsets assigned) and the order in which the tensors are laid
// out. Tensors are ordered by element size, largest first, then by name, so
// every tensor starts at a multiple of its element size and the result does
// not depend on the order of entries.
func Layout(metadata map[string]string, entries []Entry) (header []byte, order []int, err error) {
	order = make([]int, len(entries))
	seen := make(map[string]bool, len(entries))
	for i, e := range entries {
		order[i] = i
		if err := checkEntry(e); err != nil {
			return nil, nil, err
		}
		if seen[e.Name] {
			return nil, nil, fmt.Errorf("tensor %q: duplicate name", e.Name)
		}
		seen[e.Name] = true
	}
	for k := range metadata {
		if len(k) > MaxNameLen {
			return nil, nil, fmt.Errorf("metadata key of %d bytes (at most %d)", len(k), MaxNameLen)
		}
	}
	sort.Slice(order, func(i, j int) bool {
		a, b := entries[order[i]], entries[order[j]]
		if sa, sb := align(a.DType), align(b.DType); sa != sb {
			return sa > sb
		}
		return a.Name < b.Name
	})

	var buf bytes.Buffer
	buf.WriteByte('{')
	if metadata != nil {
		buf.WriteString(`"__metadata__":`)
		writeJSON(&buf, metadata) // encoding/json sorts map keys
	}
	var off int64
	for n, i := range order {
		e := entries[i]
		if n > 0 || metadata != nil {
			buf.WriteByte(',')
		}
		end, err := tensor.AddInt64(off, e.Size)
		if err != nil {
			return nil, nil, fmt.Errorf("tensor %q: data section too large: %w", e.Name, err)
		}
		writeJSON(&buf, e.Name)
		buf.WriteString(`:{"dtype":`)
		writeJSON(&buf, string(e.DType))
		buf.WriteString(`,"shape":`)
		shape := []int64(e.Shape)
		if shape == nil {
			shape = []int64{}
		}
		writeJSON(&buf, shape)
		fmt.Fprintf(&buf, `,"data_offsets":[%d,%d]}`, off, end)
		off = end
	}
	buf.WriteByte('}')
	// Pad with spaces so that the data section starts at a multiple of 8.
	for (8+buf.Len())%8 != 0 {
		buf.WriteByte(' ')
	}
	if buf.Len() > MaxHeaderSize {
		return nil, nil, fmt.Errorf("header would be %d bytes, over the %d-byte limit", buf.Len(), MaxHeaderSize)
	}
	return buf.Bytes(), order, nil
}

func align(d tensor.DType) int {
	if s := d.Size(); s > 0 {
		return s
	}
	return 1
}

func writeJSON(buf *bytes.Buffer, v any) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		panic(err) // strings, string maps and int slices always encode
	}
	buf.Truncate(buf.Len() - 1) // Encode appends a newline
}

func checkEntry(e Entry) error {
	switch {
	case e.Name == "" || e.Name == metadataKey:
		return fmt.Errorf("invalid tensor name %q", e.Name)
	case len(e.Name) > MaxNameLen:
		return fmt.Errorf("tensor name of %d bytes (at most %d)", len(e.Name), MaxNameLen)
	case !e.DType.Valid():
		return fmt.Errorf("tensor %q: invalid dtype %q", e.Name, string(e.DType))
	case e.Write == nil:
		return fmt.Errorf("tensor %q: no data source", e.Name)
	case e.Size < 0:
		return fmt.Errorf("tensor %q: negative size %d", e.Name, e.Size)
	}
	if e.DType.Known() {
		want, err := e.Shape.Bytes(e.DType)
		if err != nil {
			return fmt.Errorf("tensor %q: %w", e.Name, err)
		}
		if want != e.Size {
			return fmt.Errorf("tensor %q: %d bytes given but shape %v of %s needs %d", e.Name, e.Size, e.Shape, e.DType, want)
		}
	} else if _, err := e.Shape.Elems(); err != nil {
		return fmt.Errorf("tensor %q: %w", e.Name, err)
	}
	return nil
}

// WriteFile writes a safetensors file at path, streaming one tensor at a
// time: the header is computed first from the entries' names, dtypes and
// shapes, then each Entry.Write is called in layout order. The same
// metadata and entries always give the same bytes. The file is written to
// a temporary file in the same directory, synced, and renamed over path, so
// readers never see a partial file; on error nothing is left behind. On
// Linux a file of 64 MiB or more is written with O_DIRECT (see
// directWriter), falling back to ordinary writes where that is refused.
func WriteFile(path string, metadata map[string]string, entries []Entry) (err error) {
	return writeFile(path, metadata, entries, directMin)
}

// writeFile is WriteFile writing files of at least minDirect bytes with
// O_DIRECT where the system allows it (see directWriter).
func writeFile(path string, metadata map[string]string, entries []Entry, minDirect int64) error {
	header, order, err := Layout(metadata, entries)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	total := int64(8 + len(header))
	for _, e := range entries {
		total += e.Size
	}
	return atomicfile.Write(path, func(f *os.File) error {
		var w io.Writer = f
		// pos reports how many bytes have been written.
		pos := func() (int64, error) { return f.Seek(0, io.SeekCurrent) }
		var d *directWriter
		if total >= minDirect {
			d = newDirectWriter(f)
		}
		if d != nil {
			w = d
			pos = func() (int64, error) { return d.pos(), nil }
		}
		if err := writeTensors(w, pos, header, entries, order); err != nil {
			if d != nil {
				d.wait()
				d.release()
			}
			return err
		}
		if d != nil {
			return d.finish()
		}
		return nil
	})
}

// writeTensors writes the length, the header and the entries in order to
// w, checking each entry's size against pos.
func writeTensors(w io.Writer, pos func() (int64, error), header []byte, entries []Entry, order []int) error {
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(header)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return err
	}
	if _, err := w.Write(header); err != nil {
		return err
	}
	at := int64(8 + len(header))
	for _, i := range order {
		e := entries[i]
		if err := e.Write(w); err != nil {
			return fmt.Errorf("tensor %q: %w", e.Name, err)
		}
		got, err := pos()
		if err != nil {
			return err
		}
		if got != at+e.Size {
			return fmt.Errorf("tensor %q: wrote %d bytes, want %d", e.Name, got-at, e.Size)
		}
		at = got
	}
	return nil
}

// Replace returns entries with the one called name replaced by with (in
// its place); entries is not modified.
func Replace(entries []Entry, name string, with []Entry) []Entry {
	var out []Entry
	for _, e := range entries {
		if e.Name == name {
			out = append(out, with...)
			continue
		}
		out = append(out, e)
	}
	return out
}
