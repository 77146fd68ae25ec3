package safetensors

import (
	"fmt"
	"io"
)

// Buffer is a BufferWriter over any io.Writer: it gathers up to its size
// in bytes, then writes them to the underlying writer in one call. Flush
// writes what is left. Write uses one for a stream; a Buffer of an odd
// size is also how tests make the pieces an Entry produces end in awkward
// places.
type Buffer struct {
	w       io.Writer
	buf     []byte
	n       int   // bytes gathered
	written int64 // bytes committed in all
	err     error
}

// NewBuffer returns a Buffer of size bytes (at least 1) over w.
func NewBuffer(w io.Writer, size int) *Buffer {
	return &Buffer{w: w, buf: make([]byte, max(size, 1))}
}

// Next returns the free part of the buffer, never empty.
func (b *Buffer) Next() []byte { return b.buf[b.n:] }

// Commit appends the first n bytes of what Next returned.
func (b *Buffer) Commit(n int) error {
	if b.err != nil {
		return b.err
	}
	if n < 0 || n > len(b.buf)-b.n {
		return fmt.Errorf("committing %d bytes of a buffer with %d free", n, len(b.buf)-b.n)
	}
	b.n += n
	b.written += int64(n)
	if b.n == len(b.buf) {
		return b.Flush()
	}
	return nil
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		k := copy(b.Next(), p)
		if err := b.Commit(k); err != nil {
			return total - len(p), err
		}
		p = p[k:]
	}
	return total, nil
}

// Flush writes the gathered bytes to the underlying writer.
func (b *Buffer) Flush() error {
	if b.err != nil {
		return b.err
	}
	if b.n > 0 {
		if _, err := b.w.Write(b.buf[:b.n]); err != nil {
			b.err = err
			return err
		}
		b.n = 0
	}
	return nil
}

// Written is the number of bytes committed so far (flushed or not).
func (b *Buffer) Written() int64 { return b.written }

// Write writes a safetensors file of metadata and entries to w, as
// WriteFile lays it out (the same bytes), as a stream: to a pipe, a
// socket, a hash. Entries produce their bytes in a Buffer (w itself when
// it is one, flushed at the end; otherwise one of 1 MiB over w).
func Write(w io.Writer, metadata map[string]string, entries []Entry) error {
	header, order, err := Layout(metadata, entries)
	if err != nil {
		return err
	}
	b, ok := w.(*Buffer)
	if !ok {
		b = NewBuffer(w, copyBufSize)
	}
	if err := writeTensors(b, func() (int64, error) { return b.Written(), nil }, header, entries, order); err != nil {
		return err
	}
	return b.Flush()
}
