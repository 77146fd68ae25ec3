package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/lmsparse/lmsparse/progress"
	"github.com/schollz/progressbar/v3"
)

// logEvery is the most often a stage's progress is logged when stderr is
// not a terminal; stages shorter than it log nothing until they finish.
const logEvery = 10 * time.Second

// progressView shows the library's progress events on stderr: on a
// terminal, a live progress bar per stage (done/total, rate, ETA) redrawn
// at most every 100 ms; elsewhere (CI logs), a line at most every 10 s for a stage
// running longer than that. With stageLines, a stage's final event that
// carries a summary prints "lmsparse: CMD: STAGE: SUMMARY (N s)" (as
// compress does for each stage). quiet shows nothing.
type progressView struct {
	w          io.Writer
	cmd        string
	quiet, tty bool
	stageLines bool

	mu      sync.Mutex
	bar     *progressbar.ProgressBar // the live bar on a terminal
	barOf   string                   // its stage
	lastLog map[string]time.Time
}

func newProgress(w io.Writer, cmd string, quiet, stageLines bool) *progressView {
	return &progressView{w: w, cmd: cmd, quiet: quiet, tty: isTerminal(w), stageLines: stageLines, lastLog: map[string]time.Time{}}
}

// event is a progress.Func.
func (v *progressView) event(e progress.Event) {
	if v == nil || v.quiet {
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if e.Final {
		v.clear()
		if v.stageLines && e.Detail != "" {
			fmt.Fprintf(v.w, "lmsparse: %s: %s: %s (%.2f s)\n", v.cmd, e.Stage, e.Detail, e.Elapsed.Seconds())
		}
		delete(v.lastLog, e.Stage)
		return
	}
	now := time.Now()
	if v.tty {
		if v.bar == nil || v.barOf != e.Stage {
			v.clear()
			total := e.Total
			if total <= 0 {
				total = -1 // a spinner
			}
			v.bar = progressbar.NewOptions64(total, progressbar.OptionSetWriter(v.w),
				progressbar.OptionSetDescription("lmsparse: "+v.cmd+": "+e.Stage), progressbar.OptionShowCount(),
				progressbar.OptionShowIts(), progressbar.OptionSetItsString(e.Unit), progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish(), progressbar.OptionThrottle(100*time.Millisecond))
			v.barOf = e.Stage
		}
		v.bar.Set64(e.Done)
		return
	}
	if e.Elapsed < logEvery || now.Sub(v.lastLog[e.Stage]) < logEvery {
		return
	}
	v.lastLog[e.Stage] = now
	fmt.Fprintf(v.w, "lmsparse: %s: %s\n", v.cmd, e)
}

// clear removes the live bar (the caller holds mu).
func (v *progressView) clear() {
	if v.bar != nil {
		v.bar.Clear()
		v.bar, v.barOf = nil, ""
	}
}

// close clears the live line before other output.
func (v *progressView) close() {
	if v == nil {
		return
	}
	v.mu.Lock()
	v.clear()
	v.mu.Unlock()
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
