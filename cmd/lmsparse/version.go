package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// versionString describes the build: module version, VCS revision and time
// (with "+dirty" when built from a modified tree), and Go version.
func versionString() string {
	version, rev, when, dirty := "(unknown)", "", "", false
	if bi, ok := debug.ReadBuildInfo(); ok {
		version = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.time":
				when = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
	}
	s := "lmsparse " + version
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		s += " (revision " + rev
		if dirty {
			s += "+dirty"
		}
		if when != "" {
			s += ", " + when
		}
		s += ")"
	}
	return s + " " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
}

func printVersion(w io.Writer) { fmt.Fprintln(w, versionString()) }
