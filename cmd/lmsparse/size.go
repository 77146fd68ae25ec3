package main

import (
	"strconv"

	"github.com/lmsparse/lmsparse/checkpoint"
)

// byteSize is a pflag value for sizes written as "5GB", "500MB", "1GiB" or a
// plain number of bytes. Decimal units are powers of 1000, as in Hugging
// Face's max_shard_size; binary units (KiB, MiB, GiB, TiB) powers of 1024.
type byteSize int64

// String writes the size with the largest unit that divides it ("5GB").
func (b *byteSize) String() string {
	for _, u := range []struct {
		s string
		n int64
	}{{"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if v := int64(*b); v > 0 && v%u.n == 0 {
			return strconv.FormatInt(v/u.n, 10) + u.s
		}
	}
	return strconv.FormatInt(int64(*b), 10)
}
func (b *byteSize) Type() string { return "size" }
func (b *byteSize) Set(s string) error {
	v, err := checkpoint.ParseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(v)
	return nil
}
