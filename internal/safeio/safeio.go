package safeio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrInput reports an input file lmsparse refuses to read: not a regular
// file, a symbolic link leading out of its model directory or in a loop,
// or larger than the cap for its kind.
var ErrInput = errors.New("refused input file")

// Open opens path for reading without blocking on special files and
// returns it with its fstat information. Only a regular file is returned;
// anything else is an error wrapping [ErrInput].
func Open(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|oNonblock, 0)
	if err != nil {
		if errors.Is(err, errLoop) {
			return nil, nil, fmt.Errorf("%s: %w: symbolic link loop", path, ErrInput)
		}
		return nil, nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w: %s, not a regular file", path, ErrInput, kind(st.Mode()))
	}
	if err := setBlocking(f); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return f, st, nil
}

// kind names a file mode for an error message.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a FIFO"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeDevice != 0:
		return "a device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "a special file"
}

// Resolve returns path (a file of the directory dir, or under it) with
// every symbolic link resolved, after checking that the result lies inside
// dir, itself resolved. A missing file wraps fs.ErrNotExist; a link out of
// dir or a loop wraps [ErrInput].
func Resolve(dir, path string) (string, error) {
	rdir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", wrapEval(dir, err)
	}
	rdir, err = filepath.Abs(rdir)
	if err != nil {
		return "", err
	}
	rp, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", wrapEval(path, err)
	}
	rp, err = filepath.Abs(rp)
	if err != nil {
		return "", err
	}
	if !Within(rdir, rp) {
		return "", fmt.Errorf("%s: %w: it resolves to %s, outside the model directory %s", path, ErrInput, rp, rdir)
	}
	return rp, nil
}

// Within reports whether path is dir or lies under it (both absolute and
// clean).
func Within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}

func wrapEval(path string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if errors.Is(err, errLoop) || strings.Contains(err.Error(), "too many links") {
		return fmt.Errorf("%s: %w: symbolic link loop", path, ErrInput)
	}
	return err
}

// OpenIn opens path, a file of the model directory dir, under the package
// rule: links resolved and inside dir, regular files only, non-blocking.
func OpenIn(dir, path string) (*os.File, fs.FileInfo, error) {
	rp, err := Resolve(dir, path)
	if err != nil {
		return nil, nil, err
	}
	f, st, err := Open(rp)
	if err != nil {
		return nil, nil, err
	}
	return f, st, nil
}

// ReadFile reads the regular file at path whole, refusing one of more than
// max bytes (an error wrapping [ErrInput]).
func ReadFile(path string, max int64) ([]byte, error) {
	f, st, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, st, path, max)
}

// ReadFileIn is [ReadFile] for a file of the model directory dir (see
// [OpenIn]).
func ReadFileIn(dir, path string, max int64) ([]byte, error) {
	f, st, err := OpenIn(dir, path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readAll(f, st, path, max)
}

func readAll(f *os.File, st fs.FileInfo, path string, max int64) ([]byte, error) {
	if st.Size() > max {
		return nil, fmt.Errorf("%s: %w: %d bytes, larger than %d bytes", path, ErrInput, st.Size(), max)
	}
	var buf bytes.Buffer
	buf.Grow(int(st.Size()) + bytes.MinRead)
	if _, err := buf.ReadFrom(io.LimitReader(f, max+1)); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(buf.Len()) > max {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrInput, max)
	}
	return buf.Bytes(), nil
}

// DecodeStrict decodes data, one JSON document, into v strictly: an
// unknown field, or anything but white space after the document, is an
// error. When data does not decode and its "schema" field is not schema,
// other reports that field (the data is another kind of file rather than
// a damaged one of this kind, which the caller's message can say).
func DecodeStrict(data []byte, v any, schema string) (other *string, err error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err = dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("data after the JSON document")
	}
	if err != nil {
		var probe struct {
			Schema string `json:"schema"`
		}
		if json.Unmarshal(data, &probe) == nil && probe.Schema != schema {
			return &probe.Schema, err
		}
	}
	return nil, err
}
