// Package progress is how lmsparse's library packages report long work:
// each accepts a [Func] in its options and calls it with an [Event] as
// work advances (stage, units done of a total, elapsed time). Library code
// never prints; a program decides how to show the events (the lmsparse
// command draws a live line on a terminal and a line every 10 s in logs).
//
// A nil Func is valid and reports nothing. Events of one stage come from
// one goroutine at a time, in order; the last event of a stage has
// Done == Total (or Final set when the total is unknown).
package progress
