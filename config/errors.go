package config

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Error is one problem in a configuration file, located by key path and line.
type Error struct {
	// File is the name the configuration was parsed under (may be empty).
	File string
	// Path is the key path, e.g. "transmitters[3].zone"; empty for syntax errors.
	Path string
	// Line is 1-based; 0 when the problem has no place in the file (e.g. a missing
	// section, or a Config built in code).
	Line int
	// Msg says what is wrong and, where it can, what to write instead. It never
	// contains a secret's value.
	Msg string
}

// Error formats e as "path: msg (line N)".
func (e *Error) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	if e.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", e.Line)
	}
	return b.String()
}

// Errors is every problem found in one configuration, in file order. Parse returns all
// of them at once so that check-config can list everything a technician must fix.
type Errors []*Error

// Error lists the problems one per line.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap lets errors.As find the individual *Error values.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sort orders errors by line (problems without a line first), keeping the order in
// which they were found for errors on the same line.
func (es Errors) sort() {
	slices.SortStableFunc(es, func(a, b *Error) int { return cmp.Compare(a.Line, b.Line) })
}

// err returns es as an error, or nil when there are none (never a typed nil).
func (es Errors) err() error {
	if len(es) == 0 {
		return nil
	}
	return es
}
