//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package checkpoint

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// outputLock is an exclusive flock on a lock file beside the output.
type outputLock struct {
	f    *os.File
	path string
}

// lockOutput takes the lock at path without waiting; errLocked (naming the
// holder's pid) when another process holds it.
func lockOutput(path string) (*outputLock, error) {
	for range 100 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return nil, err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
			var pid []byte
			if errors.Is(err, unix.EWOULDBLOCK) {
				pid = make([]byte, 20)
				n, _ := f.ReadAt(pid, 0)
				pid = pid[:n]
			}
			f.Close()
			if errors.Is(err, unix.EWOULDBLOCK) {
				if p := strings.TrimSpace(string(pid)); p != "" {
					return nil, fmt.Errorf("%w (pid %s)", errLocked, p)
				}
				return nil, errLocked
			}
			return nil, err
		}
		// The holder before us may have removed the file after we opened
		// it: the lock counts only on the file the path names.
		fst, err1 := f.Stat()
		pst, err2 := os.Stat(path)
		if err1 != nil || err2 != nil || !os.SameFile(fst, pst) {
			f.Close()
			continue
		}
		f.Truncate(0)
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		return &outputLock{f: f, path: path}, nil
	}
	return nil, fmt.Errorf("%s: cannot take the lock", path)
}

// probeLock reports errLocked when a process holds the lock at path,
// without creating or keeping anything.
func probeLock(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return nil // no lock file: nobody holds it
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			pid := make([]byte, 20)
			n, _ := f.ReadAt(pid, 0)
			if p := strings.TrimSpace(string(pid[:n])); p != "" {
				return fmt.Errorf("%w (pid %s)", errLocked, p)
			}
			return errLocked
		}
		return nil
	}
	unix.Flock(int(f.Fd()), unix.LOCK_UN)
	return nil
}

// release removes the lock file (while holding the lock, so no other
// process holds a lock on it) and unlocks. Safe on nil and twice.
func (l *outputLock) release() {
	if l == nil || l.f == nil {
		return
	}
	os.Remove(l.path)
	l.f.Close()
	l.f = nil
}

// pidAlive reports whether a process with this pid exists.
func pidAlive(pid int) bool {
	return unix.Kill(pid, 0) != unix.ESRCH
}

// copyOwner gives path the owner and group of fi where the process may
// (as root); otherwise path keeps the process's.
func copyOwner(path string, fi fs.FileInfo) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || os.Geteuid() != 0 {
		return
	}
	os.Lchown(path, int(st.Uid), int(st.Gid))
}

// otherDevice reports whether path (a directory) is on another device than
// its parent: a mount point of another file system.
func otherDevice(path string) bool {
	a, err1 := os.Lstat(path)
	b, err2 := os.Stat(filepath.Dir(path))
	if err1 != nil || err2 != nil {
		return false
	}
	sa, ok1 := a.Sys().(*syscall.Stat_t)
	sb, ok2 := b.Sys().(*syscall.Stat_t)
	return ok1 && ok2 && sa.Dev != sb.Dev
}

// writable reports whether this process may create entries in dir.
func writable(dir string) bool {
	return unix.Access(dir, unix.W_OK) == nil
}
