package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// readFileBounded reads a small file (config.json), refusing huge ones.
func readFileBounded(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	const max = 16 << 20
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(b) > max {
		return nil, fmt.Errorf("%s: %w: larger than %d bytes", path, checkpoint.ErrFormat, max)
	}
	return b, nil
}

// outputOptions are the flags of every command that writes a checkpoint.
type outputOptions struct {
	Dir          string
	MaxShardSize int64
	Force        bool
	shard        byteSize
}

func (o *outputOptions) register(fs *pflag.FlagSet) {
	o.shard = byteSize(checkpoint.DefaultMaxShardSize)
	fs.StringVarP(&o.Dir, "output", "o", "", "output checkpoint directory (required)")
	fs.Var(&o.shard, "max-shard-size", "largest shard, e.g. 5GB, 500MB, 2GiB (decimal units are powers of 1000)")
	fs.BoolVar(&o.Force, "force", false, "write into a non-empty output directory")
}

func (o *outputOptions) check(cmd string) error {
	if o.Dir == "" {
		return usageErrorf("%s: -o/--output is required", cmd)
	}
	o.MaxShardSize = int64(o.shard)
	return nil
}
