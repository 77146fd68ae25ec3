package safetensors

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/lmsparse/lmsparse/internal/mmap"
	"github.com/lmsparse/lmsparse/internal/safeio"
)

// File is an open safetensors file. Its methods are safe for concurrent
// use; the byte slices returned by [File.Bytes] stay valid until Close.
type File struct {
	path   string      // for error messages; empty for a plain io.ReaderAt
	r      io.ReaderAt // the whole file
	size   int64
	hdr    *Header
	base   int64    // file offset of the data section: 8 + header length
	mapped []byte   // the whole file when memory-mapped, else nil
	osFile *os.File // non-nil when opened with Open
	byName map[string]int
}

// Open opens and validates the safetensors file at path. On Linux the file is
// memory-mapped, so [File.Bytes] returns views of it without copying.
// Errors name the path and wrap ErrFormat for invalid files.
func Open(path string) (*File, error) {
	f, st, err := safeio.Open(path)
	if err != nil {
		if errors.Is(err, safeio.ErrInput) {
			return nil, fmt.Errorf("%w (%w)", err, ErrFormat)
		}
		return nil, err
	}
	sf, err := newFile(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	sf.osFile = f
	sf.mapped = mmap.File(f, st.Size())
	return sf, nil
}

// NewReader reads and validates the header of the safetensors data in r,
// which holds size bytes. Tensor bytes are read on demand.
func NewReader(r io.ReaderAt, size int64) (*File, error) {
	return newFile(r, size, "")
}

func newFile(r io.ReaderAt, size int64, path string) (*File, error) {
	if size < 8 {
		return nil, formatErr("file is %d bytes, too short for the 8-byte header length", size)
	}
	var lenBuf [8]byte
	if err := readAt(r, lenBuf[:], 0); err != nil {
		return nil, fmt.Errorf("reading header length: %w", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, formatErr("header length %d is over the %d-byte limit", n, MaxHeaderSize)
	}
	if int64(n) > size-8 {
		return nil, formatErr("header length %d is larger than the %d bytes after it (truncated file?)", n, size-8)
	}
	buf := make([]byte, n)
	if err := readAt(r, buf, 8); err != nil {
		return nil, fmt.Errorf("reading %d-byte header: %w", n, err)
	}
	base := 8 + int64(n)
	hdr, err := ParseHeader(buf, size-base)
	if err != nil {
		return nil, err
	}
	f := &File{path: path, r: r, size: size, hdr: hdr, base: base, byName: make(map[string]int, len(hdr.Tensors))}
	for i, t := range hdr.Tensors {
		f.byName[t.Name] = i
	}
	return f, nil
}

// Close releases the mapping and the file. Slices from Bytes must not be
// used afterwards.
func (f *File) Close() error {
	var err error
	if f.mapped != nil {
		err = mmap.Unmap(f.mapped)
		f.mapped = nil
	}
	if f.osFile != nil {
		if cerr := f.osFile.Close(); err == nil {
			err = cerr
		}
		f.osFile = nil
	}
	return err
}

// Path returns the path given to Open, or "" for NewReader.
func (f *File) Path() string { return f.path }

// Size returns the file size in bytes.
func (f *File) Size() int64 { return f.size }

// HeaderSize returns the byte length of the JSON header including padding.
func (f *File) HeaderSize() int64 { return f.base - 8 }

// Metadata returns the __metadata__ map (nil if absent). Do not modify it.
func (f *File) Metadata() map[string]string { return f.hdr.Metadata }

// Tensors returns the tensors in data order. Do not modify the slice.
func (f *File) Tensors() []TensorInfo { return f.hdr.Tensors }

// Lookup returns the tensor called name.
func (f *File) Lookup(name string) (TensorInfo, bool) {
	i, ok := f.byName[name]
	if !ok {
		return TensorInfo{}, false
	}
	return f.hdr.Tensors[i], true
}

func (f *File) info(name string) (TensorInfo, error) {
	t, ok := f.Lookup(name)
	if !ok {
		return t, fmt.Errorf("tensor %q: not in file", name)
	}
	return t, nil
}

// Mapped reports whether the file is memory-mapped.
func (f *File) Mapped() bool { return f.mapped != nil }

// Bytes returns the raw little-endian bytes of a tensor. For a mapped file it
// is a read-only view into the mapping (writing to it faults); otherwise a
// fresh copy is read.
func (f *File) Bytes(name string) ([]byte, error) {
	t, err := f.info(name)
	if err != nil {
		return nil, err
	}
	off := f.base + t.Offset
	if f.mapped != nil {
		return f.mapped[off : off+t.Size : off+t.Size], nil
	}
	buf := make([]byte, t.Size)
	if err := readAt(f.r, buf, off); err != nil {
		return nil, fmt.Errorf("tensor %q: %w", name, err)
	}
	return buf, nil
}

// Section returns a reader of the tensor's bytes that reads through the file
// descriptor, not the mapping, so streaming a large tensor does not grow
// the process's resident memory.
func (f *File) Section(name string) (*io.SectionReader, error) {
	t, err := f.info(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(f.r, f.base+t.Offset, t.Size), nil
}

// Entry returns a writer entry that copies the named tensor unchanged,
// in-kernel (copy_file_range) when both ends are files on Linux.
func (f *File) Entry(name string) (Entry, error) {
	t, err := f.info(name)
	if err != nil {
		return Entry{}, err
	}
	off := f.base + t.Offset
	return Entry{
		Name: t.Name, DType: t.DType, Shape: t.Shape.Clone(), Size: t.Size,
		Write: func(w io.Writer) error {
			if dst, ok := w.(*os.File); ok && f.osFile != nil {
				if done, err := copyRange(dst, f.osFile, off, t.Size); done {
					return err
				}
			}
			if _, ok := w.(BufferWriter); ok && f.osFile != nil {
				return ReadFull(w, f.osFile, off, t.Size, 1, nil)
			}
			_, err := io.CopyBuffer(w, io.NewSectionReader(f.r, off, t.Size), make([]byte, copyBufSize))
			return err
		},
	}, nil
}

// copyBufSize is the buffer of user-space copies.
const copyBufSize = 1 << 20

// readAt fills buf from offset off. As io.ReaderAt allows, a read that
// fills buf may report io.EOF; that is not an error here.
func readAt(r io.ReaderAt, buf []byte, off int64) error {
	if len(buf) == 0 {
		return nil
	}
	n, err := r.ReadAt(buf, off)
	if n == len(buf) {
		return nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}
