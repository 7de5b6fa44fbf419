package config

import (
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Error is one problem in a configuration file.
type Error struct {
	Pos Pos    // where: the offending key or value
	Key string // dotted key path from the document root, e.g. "export.dut.children.power.type"; "" for the whole document
	Msg string // what is wrong and what was expected
}

// Error returns "file:line:col: key: msg" on one line, e.g.
// `exporter.yaml:12:5: export.power.confg: unknown key "confg"; expected one of: type, ...`.
func (e *Error) Error() string {
	var b strings.Builder
	if s := e.Pos.String(); s != "" {
		b.WriteString(s)
		b.WriteString(": ")
	}
	if e.Key != "" {
		b.WriteString(oneLine(e.Key))
		b.WriteString(": ")
	}
	b.WriteString(oneLine(e.Msg))
	return b.String()
}

// Errors is every problem found in a configuration file, sorted by position.
// Load and Parse never return an empty Errors.
type Errors []*Error

// Error returns one line per problem.
func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the problems, so that errors.As finds an *Error.
func (es Errors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

func (es Errors) sort() {
	sort.SliceStable(es, func(a, b int) bool {
		pa, pb := es[a].Pos, es[b].Pos
		if pa.Line != pb.Line {
			return pa.Line < pb.Line
		}
		return pa.Column < pb.Column
	})
}

// oneLine escapes what would break "one line per problem" (a key or value
// holding a newline or another control character).
func oneLine(s string) string {
	if !strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) && r != ' ' }) {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}
