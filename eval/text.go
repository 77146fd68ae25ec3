package eval

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"unicode/utf8"

	"github.com/lmsparse/lmsparse/tokenizer"
)

// MaxTextBytes is the largest text [ReadText] reads: 1 GiB, far beyond
// what a CPU forward pass scores in reasonable time.
const MaxTextBytes = 1 << 30

// Text is held-out text to score: bytes, unmodified.
type Text struct {
	// Path names the text in reports and errors.
	Path string
	// Data is the text's bytes. Bits per byte counts them all.
	Data []byte
	// InvalidUTF8 counts the bytes of Data that are not valid UTF-8; the
	// tokenizer sees U+FFFD for each maximal invalid sequence.
	InvalidUTF8 int
}

// NewText returns the Text of data, named path, counting its invalid
// UTF-8 bytes.
func NewText(path string, data []byte) *Text {
	return &Text{Path: path, Data: data, InvalidUTF8: countInvalidUTF8(data)}
}

// ReadText reads the file at path, at most [MaxTextBytes]. An empty file or
// a longer one is an error wrapping [ErrInput]; I/O errors name the file.
func ReadText(path string) (*Text, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var buf bytes.Buffer
	if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
		if st.Size() > MaxTextBytes {
			return nil, inputErrorf("%s is %d bytes, more than the %d eval reads", path, st.Size(), MaxTextBytes)
		}
		buf.Grow(int(st.Size()) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(io.LimitReader(f, MaxTextBytes+1)); err != nil {
		return nil, err // a *fs.PathError naming the file
	}
	switch {
	case buf.Len() == 0:
		return nil, inputErrorf("%s is empty: there is nothing to score", path)
	case buf.Len() > MaxTextBytes:
		return nil, inputErrorf("%s is more than the %d bytes eval reads", path, MaxTextBytes)
	}
	return NewText(path, buf.Bytes()), nil
}

// LoadTokenizer loads the tokenizer of a model: override (a tokenizer.json
// or its directory) when it is not empty, else the tokenizer.json beside
// modelPath (in it when it is a directory, in its directory when it is a
// file). A missing tokenizer.json is an error wrapping [ErrNoTokenizer];
// an unsupported one wraps tokenizer.ErrUnsupported and names the
// component.
func LoadTokenizer(modelPath, override string) (*tokenizer.Tokenizer, error) {
	if override != "" {
		return tokenizer.Load(override)
	}
	dir := modelPath
	if st, err := os.Stat(modelPath); err == nil && !st.IsDir() {
		dir = filepath.Dir(modelPath)
	}
	if _, err := os.Stat(filepath.Join(dir, "tokenizer.json")); errors.Is(err, fs.ErrNotExist) {
		return nil, &inputError{msg: "no tokenizer.json in " + dir, kind: ErrNoTokenizer}
	}
	return tokenizer.Load(dir)
}

// countInvalidUTF8 counts the bytes of b that do not start a valid UTF-8
// sequence.
func countInvalidUTF8(b []byte) int {
	n := 0
	for len(b) > 0 {
		r, size := utf8.DecodeRune(b)
		if r == utf8.RuneError && size == 1 {
			n++
		}
		b = b[size:]
	}
	return n
}
