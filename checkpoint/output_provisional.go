package checkpoint

// PROVISIONAL: replaced by output.go (atomic commit) when it lands.

import (
	"context"
	"errors"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/lmsparse/lmsparse/formats/safetensors"
	"github.com/lmsparse/lmsparse/internal/atomicfile"
)

type OutputOptions struct {
	Force    bool
	InputDir string
}

type TensorOptions struct {
	MaxShardSize int64
	Metadata     map[string]string
}

type Output struct {
	dir, stage string
	done       bool
}

func Create(dir string, opts OutputOptions) (*Output, error) {
	if opts.InputDir != "" {
		if err := CheckOutput(dir, opts.InputDir, opts.Force); err != nil {
			return nil, err
		}
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, err
	}
	stage, err := os.MkdirTemp(parent, "."+filepath.Base(filepath.Clean(dir))+".tmp-*")
	if err != nil {
		return nil, err
	}
	os.Chmod(stage, 0o755)
	return &Output{dir: dir, stage: stage}, nil
}

func (o *Output) Dir() string             { return o.dir }
func (o *Output) Staging() string         { return o.stage }
func (o *Output) Path(name string) string { return filepath.Join(o.stage, name) }
func (o *Output) WriteFile(name string, data []byte) error {
	return atomicfile.WriteBytes(o.Path(name), data)
}

func (o *Output) WriteTensors(entries []safetensors.Entry, opts TensorOptions) ([]Shard, error) {
	meta := opts.Metadata
	if meta == nil {
		meta = map[string]string{"format": "pt"}
	}
	shards := PlanShards(entries, opts.MaxShardSize)
	for _, s := range shards {
		if err := safetensors.WriteFile(o.Path(s.File), meta, s.Entries); err != nil {
			return nil, err
		}
	}
	if len(shards) > 1 {
		if err := writeIndex(o.Path(IndexFile), shards); err != nil {
			return nil, err
		}
	}
	return shards, nil
}

func (o *Output) CopyAux(inDir string, config []byte) error {
	for _, name := range auxFiles {
		dst := o.Path(name)
		if name == ConfigFile && config != nil {
			if err := atomicfile.WriteBytes(dst, config); err != nil {
				return err
			}
			continue
		}
		if err := copyFile(filepath.Join(inDir, name), dst); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

func (o *Output) Commit(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		o.Abort()
		return err
	}
	if _, err := os.Stat(o.dir); err == nil {
		if err := unix.Renameat2(unix.AT_FDCWD, o.stage, unix.AT_FDCWD, o.dir, unix.RENAME_EXCHANGE); err != nil {
			o.Abort()
			return err
		}
	} else if err := unix.Rename(o.stage, o.dir); err != nil {
		o.Abort()
		return err
	} else {
		o.done = true
		return nil
	}
	o.done = true
	return os.RemoveAll(o.stage)
}

func (o *Output) Abort() error {
	if o.done {
		return nil
	}
	o.done = true
	return os.RemoveAll(o.stage)
}
