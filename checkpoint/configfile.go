package checkpoint

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// configFileMax bounds config.json as read whole for rewriting.
const configFileMax = 16 << 20

// ReadConfigBytes returns the bytes of m's config.json (nil when it has
// none), refusing one larger than 16 MiB.
func ReadConfigBytes(m *Model) ([]byte, error) {
	if m.Config == nil {
		return nil, nil
	}
	return ReadFileBounded(filepath.Join(m.Dir, ConfigFile), configFileMax)
}

// ReadFileBounded reads a whole file of at most max bytes; a larger one is
// an error wrapping ErrFormat.
func ReadFileBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, ErrFormat, max)
	}
	return b, nil
}
