package main

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lmsparse/lmsparse/progress"
)

// TestProgressLogLines: off a terminal, a stage shorter than 10 s logs
// nothing until it ends; a longer one logs a line at most every 10 s with
// done/total, rate and ETA; stage summaries print once, at the end.
func TestProgressLogLines(t *testing.T) {
	var b bytes.Buffer
	v := newProgress(&b, "eval", false, true)
	ev := func(done int64, elapsed time.Duration) progress.Event {
		return progress.Event{Stage: "eval", Done: done, Total: 100, Unit: "windows", Elapsed: elapsed}
	}
	v.event(ev(1, time.Second))
	v.event(ev(5, 9*time.Second))
	if b.Len() != 0 {
		t.Fatalf("a stage under 10 s logged: %q", b.String())
	}
	v.event(ev(10, 10*time.Second)) // the first line
	v.event(ev(11, 11*time.Second)) // within 10 s of it: nothing
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 1 || lines[0] != "lmsparse: eval: eval: 10/100 windows, 1/s, ETA 1m30s" {
		t.Fatalf("log lines %q", lines)
	}
	v.event(progress.Event{Stage: "eval", Done: 100, Total: 100, Final: true, Elapsed: 20 * time.Second, Detail: "perplexity 6.1"})
	if !strings.HasSuffix(b.String(), "lmsparse: eval: eval: perplexity 6.1 (20.00 s)\n") {
		t.Errorf("no summary line: %q", b.String())
	}
	// A final event without a summary prints nothing; quiet prints nothing.
	b.Reset()
	v.event(progress.Event{Stage: "write", Final: true, Elapsed: time.Minute})
	q := newProgress(&b, "x", true, true)
	q.event(ev(50, time.Hour))
	q.event(progress.Event{Stage: "eval", Final: true, Detail: "d"})
	if b.Len() != 0 {
		t.Errorf("printed %q", b.String())
	}
}
