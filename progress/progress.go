package progress

import (
	"fmt"
	"time"
)

// Event is one report of progress.
type Event struct {
	// Stage names the work: "prune", "write", "sae", "eval", "sweep", ...
	Stage string
	// Done units of Total (Total 0: unknown), counted in Unit ("tensors",
	// "windows", "epochs", "points").
	Done, Total int64
	Unit        string
	// Elapsed is the time since the stage began.
	Elapsed time.Duration
	// Final marks the stage's last event.
	Final bool
	// Detail is an optional short status ("loss 0.0123").
	Detail string
}

// Rate returns units per second (0 before any time has passed).
func (e Event) Rate() float64 {
	if e.Elapsed <= 0 {
		return 0
	}
	return float64(e.Done) / e.Elapsed.Seconds()
}

// ETA estimates the time left from the rate so far (0 when unknown).
func (e Event) ETA() time.Duration {
	r := e.Rate()
	if r <= 0 || e.Total <= e.Done {
		return 0
	}
	return time.Duration(float64(e.Total-e.Done) / r * float64(time.Second))
}

// String describes the event in one line: "STAGE: DONE/TOTAL UNIT, RATE/s,
// ETA D, DETAIL", the parts that are unknown left out (e.g. "eval: 12/80
// windows, 3.1/s, ETA 22s").
func (e Event) String() string {
	s := fmt.Sprintf("%s: %d", e.Stage, e.Done)
	if e.Total > 0 {
		s += fmt.Sprintf("/%d", e.Total)
	}
	if e.Unit != "" {
		s += " " + e.Unit
	}
	if r := e.Rate(); r > 0 {
		s += fmt.Sprintf(", %.3g/s", r)
		if eta := e.ETA(); eta > 0 {
			s += fmt.Sprintf(", ETA %s", eta.Round(time.Second))
		}
	}
	if e.Detail != "" {
		s += ", " + e.Detail
	}
	return s
}

// Func receives progress events. A nil Func ignores them.
type Func func(Event)

// Stage is a stage being reported: it stamps events with the stage's name,
// unit, total and elapsed time.
type Stage struct {
	f     Func
	ev    Event
	start time.Time
}

// Start begins reporting a stage of total units (0: unknown) through f
// and reports 0 done. It returns nil (whose methods do nothing) when f is
// nil.
func (f Func) Start(stage string, total int64, unit string) *Stage {
	if f == nil {
		return nil
	}
	s := &Stage{f: f, ev: Event{Stage: stage, Total: total, Unit: unit}, start: time.Now()}
	s.f(s.ev)
	return s
}

// Set reports done units.
func (s *Stage) Set(done int64, detail string) {
	if s == nil {
		return
	}
	s.ev.Done, s.ev.Detail, s.ev.Elapsed = done, detail, time.Since(s.start)
	s.f(s.ev)
}

// Add reports n more units done.
func (s *Stage) Add(n int64) {
	if s != nil {
		s.Set(s.ev.Done+n, s.ev.Detail)
	}
}

// Finish reports the stage's last event, with detail summarizing it.
func (s *Stage) Finish(detail string) {
	if s == nil {
		return
	}
	if s.ev.Total > 0 {
		s.ev.Done = s.ev.Total
	}
	s.ev.Final, s.ev.Detail, s.ev.Elapsed = true, detail, time.Since(s.start)
	s.f(s.ev)
}
