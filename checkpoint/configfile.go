package checkpoint

import (
	"errors"
	"fmt"
	"path/filepath"

	"github.com/lmsparse/lmsparse/internal/safeio"
)

// configFileMax bounds config.json as read whole for rewriting.
const configFileMax = 16 << 20

// ReadConfigBytes returns the bytes of m's config.json (nil when it has
// none), refusing one larger than 16 MiB.
func ReadConfigBytes(m *Model) ([]byte, error) {
	if m.Config == nil {
		return nil, nil
	}
	return readFileIn(m.Dir, filepath.Join(m.Dir, ConfigFile), configFileMax)
}

// ReadFileBounded reads a whole regular file of at most max bytes, without
// blocking on special files; a larger file, or one that is not regular, is
// an error wrapping ErrFormat and safeio.ErrInput.
func ReadFileBounded(path string, max int64) ([]byte, error) {
	b, err := safeio.ReadFile(path, max)
	if errors.Is(err, safeio.ErrInput) {
		return nil, fmt.Errorf("%w (%w)", err, ErrFormat)
	}
	return b, err
}

// readFileIn is ReadFileBounded for a file of the model directory dir:
// its symbolic links must resolve inside dir (see package safeio).
func readFileIn(dir, path string, max int64) ([]byte, error) {
	b, err := safeio.ReadFileIn(dir, path, max)
	if errors.Is(err, safeio.ErrInput) {
		return nil, fmt.Errorf("%w (%w)", err, ErrFormat)
	}
	return b, err
}
