//go:build !unix

package safeio

import (
	"errors"
	"os"
)

const oNonblock = 0

var errLoop = errors.New("symbolic link loop")

func setBlocking(*os.File) error { return nil }
