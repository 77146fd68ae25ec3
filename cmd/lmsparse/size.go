package main

import (
	"strconv"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// byteSize is a pflag value for sizes written as "5GB", "500MB", "1GiB" or a
// plain number of bytes. Decimal units are powers of 1000, as in Hugging
// Face's max_shard_size; binary units (KiB, MiB, GiB, TiB) powers of 1024.
type byteSize int64

func (b *byteSize) String() string { return strconv.FormatInt(int64(*b), 10) }
func (b *byteSize) Type() string   { return "size" }
func (b *byteSize) Set(s string) error {
	v, err := checkpoint.ParseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}
