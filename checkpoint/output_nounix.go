//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package checkpoint

import "io/fs"

// outputLock does nothing where flock is not available: concurrent writers
// of one output are not detected.
type outputLock struct{}

func lockOutput(path string) (*outputLock, error) { return &outputLock{}, nil }

func (l *outputLock) release() {}

func probeLock(path string) error { return nil }

// pidAlive cannot tell: temporary directories of other runs are kept.
func pidAlive(pid int) bool { return true }

func copyOwner(path string, fi fs.FileInfo) {}

func otherDevice(path string) bool { return false }

func writable(dir string) bool { return true }
