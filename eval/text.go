package eval

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"

	"github.com/lmsparse/lmsparse/internal/safeio"
	"path/filepath"
	"unicode/utf8"

	"github.com/lmsparse/lmsparse/tokenizer"
)

// MaxTextBytes is the largest text [ReadText] reads whole: 256 MiB, far
// beyond what a CPU forward pass scores in reasonable time, and small
// enough that its tokens fit in memory. [ReadTextTokens] reads only the
// beginning of a longer file.
const MaxTextBytes = 256 << 20

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

// ReadText reads the file at path, at most [MaxTextBytes], without
// blocking: a FIFO, device or directory is refused (package safeio). An
// empty file, a longer one or one that is not regular is an error wrapping
// [ErrInput]; I/O errors name the file.
func ReadText(path string) (*Text, error) {
	t, _, err := readTextPrefix(path, MaxTextBytes, true)
	return t, err
}

// ReadTextTokens reads what scoring the first maxTokens tokens of the file
// at path needs (everything when maxTokens is 0): it reads a prefix, and a
// longer one until tok gives more than maxTokens tokens plus a margin of 64
// (so the cut does not change them) or the file ends, at most
// [MaxTextBytes]. A file longer than that is an error only when its whole
// is needed. Tokenization is bounded (tokenizer.EncodeLimited).
func ReadTextTokens(path string, tok *tokenizer.Tokenizer, maxTokens int) (*Text, error) {
	if maxTokens <= 0 {
		return ReadText(path)
	}
	for n := min(int64(maxTokens)*16+4096, MaxTextBytes); ; n = min(n*4, MaxTextBytes) {
		t, whole, err := readTextPrefix(path, n, false)
		if err != nil || whole || n == MaxTextBytes {
			return t, err
		}
		ids, err := tok.EncodeLimited(string(t.Data), true, maxTokens+64)
		if err != nil {
			return nil, inputErrorf("%s: %v", path, err)
		}
		if len(ids) > maxTokens+64 {
			return t, nil
		}
	}
}

// readTextPrefix reads at most max bytes of the file at path; whole tells
// whether that is the whole file. With needWhole, a longer file is an error.
func readTextPrefix(path string, max int64, needWhole bool) (*Text, bool, error) {
	f, st, err := safeio.Open(path)
	if err != nil {
		if errors.Is(err, safeio.ErrInput) {
			return nil, false, inputErrorf("%v", err)
		}
		return nil, false, err
	}
	defer f.Close()
	if st.Size() > max && needWhole {
		return nil, false, inputErrorf("%s is %d bytes, more than the %d eval reads (use --max-tokens to score its beginning)", path, st.Size(), max)
	}
	var buf bytes.Buffer
	buf.Grow(int(min(st.Size(), max)) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, false, err // a *fs.PathError naming the file
	}
	whole := int64(buf.Len()) <= max
	switch {
	case buf.Len() == 0:
		return nil, false, inputErrorf("%s is empty: there is nothing to score", path)
	case !whole && needWhole:
		return nil, false, inputErrorf("%s is more than the %d bytes eval reads", path, max)
	case !whole:
		buf.Truncate(int(max))
	}
	return NewText(path, buf.Bytes()), whole, nil
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
