package progress

import (
	"testing"
	"time"
)

func TestStage(t *testing.T) {
	var got []Event
	f := Func(func(e Event) { got = append(got, e) })
	s := f.Start("eval", 4, "windows")
	s.Add(1)
	s.Set(3, "x")
	s.Finish("done")
	if len(got) != 4 {
		t.Fatalf("%d events, want 4", len(got))
	}
	if got[0].Done != 0 || got[1].Done != 1 || got[2].Done != 3 || got[2].Detail != "x" || got[3].Done != 4 || !got[3].Final {
		t.Errorf("events %+v", got)
	}
	for _, e := range got {
		if e.Stage != "eval" || e.Total != 4 || e.Unit != "windows" {
			t.Errorf("event %+v lost its stage", e)
		}
	}
	var nilF Func
	nilF.Start("x", 1, "y").Add(1) // must not panic
}

func TestRateETA(t *testing.T) {
	e := Event{Done: 10, Total: 30, Elapsed: 2 * time.Second}
	if e.Rate() != 5 {
		t.Errorf("rate %v, want 5", e.Rate())
	}
	if e.ETA() != 4*time.Second {
		t.Errorf("eta %v, want 4s", e.ETA())
	}
	if (Event{}).ETA() != 0 || (Event{}).Rate() != 0 {
		t.Error("zero event has a rate")
	}
}

func TestEventString(t *testing.T) {
	for _, c := range []struct {
		e    Event
		want string
	}{
		{Event{Stage: "eval", Done: 20, Total: 80, Unit: "windows", Elapsed: 10 * time.Second, Detail: "x"}, "eval: 20/80 windows, 2/s, ETA 30s, x"},
		{Event{Stage: "write", Done: 3}, "write: 3"},
	} {
		if got := c.e.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.e, got, c.want)
		}
	}
}
