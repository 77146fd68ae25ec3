package main

import (
	"fmt"
	"io"

	"github.com/lmsparse/lmsparse/manifest"
)

func printVersion(w io.Writer) { fmt.Fprintln(w, manifest.Tool()) }
