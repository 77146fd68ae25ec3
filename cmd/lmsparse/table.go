package main

import (
	"io"
	"strings"
	"unicode/utf8"

	"github.com/lmsparse/lmsparse/report"
)

// textTable renders rows as aligned columns separated by two spaces.
// Columns listed in right are right-aligned (numbers); others left-aligned.
type textTable struct {
	rows  [][]string
	right map[int]bool
}

func (t *textTable) add(cells ...string) { t.rows = append(t.rows, cells) }

func (t *textTable) write(w io.Writer) error {
	var widths []int
	for _, r := range t.rows {
		for i, c := range r {
			if i >= len(widths) {
				widths = append(widths, 0)
			}
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, r := range t.rows {
		line := make([]string, len(r))
		for i, c := range r {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if t.right[i] {
				line[i] = pad + c
			} else if i < len(r)-1 {
				line[i] = c + pad
			} else {
				line[i] = c
			}
		}
		b.WriteString(strings.TrimRight(strings.Join(line, "  "), " "))
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// commas formats a count with thousands separators, as the reports do.
func commas(n int64) string { return report.Commas(n) }
