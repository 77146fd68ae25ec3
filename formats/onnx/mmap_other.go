//go:build !linux

package onnx

import "os"

func mmapFile(*os.File, int64) []byte { return nil }

func dropPages([]byte) {}
