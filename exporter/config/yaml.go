package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Resolved YAML tags (yaml.Node.ShortTag).
const (
	tagStr       = "!!str"
	tagInt       = "!!int"
	tagFloat     = "!!float"
	tagBool      = "!!bool"
	tagNull      = "!!null"
	tagTimestamp = "!!timestamp"
	tagBinary    = "!!binary"
	tagMerge     = "!!merge"
	tagMap       = "!!map"
	tagSeq       = "!!seq"
)

// parser walks a yaml.Node tree and collects every problem it finds.
type parser struct {
	file string
	errs Errors

	// active holds the mappings and sequences being walked, to catch an alias
	// used inside the value it names.
	active map[*yaml.Node]int

	// budget bounds the work done expanding aliases (a "billion laughs"
	// document); limit is its starting value.
	budget, limit int
	exhausted     bool
}

func newParser(file string) *parser {
	return &parser{file: file, active: map[*yaml.Node]int{}}
}

func (p *parser) pos(n *yaml.Node) Pos {
	return Pos{File: p.file, Line: n.Line, Column: n.Column}
}

func (p *parser) errorAt(pos Pos, key, format string, args ...any) {
	if p.exhausted {
		return // everything after that is noise
	}
	p.errs = append(p.errs, &Error{Pos: pos, Key: key, Msg: fmt.Sprintf(format, args...)})
}

func (p *parser) errorf(n *yaml.Node, key, format string, args ...any) {
	p.errorAt(p.pos(n), key, format, args...)
}

// document decodes data and returns the root mapping, or nil after reporting
// why there is none.
func (p *parser) document(data []byte) (root *yaml.Node) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := decode(dec, &doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errorAt(Pos{File: p.file, Line: 1, Column: 1}, "",
				"the file is empty; expected an ExporterConfig (apiVersion, kind, metadata, export)")
		} else {
			p.syntaxError(err, data)
		}
		return nil
	}
	// A second document is a mistake (a stray "---"), unless it is empty.
	for {
		var next yaml.Node
		err := decode(dec, &next)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			p.syntaxError(err, data)
			return nil
		}
		if len(next.Content) > 0 && !isEmpty(next.Content[0]) {
			p.errorf(next.Content[0], "", "a second YAML document starts here; the file must hold exactly one")
			return nil
		}
	}
	if len(doc.Content) == 0 || isEmpty(doc.Content[0]) {
		p.errorAt(Pos{File: p.file, Line: 1, Column: 1}, "",
			"the file is empty; expected an ExporterConfig (apiVersion, kind, metadata, export)")
		return nil
	}
	root = doc.Content[0]
	if root.Kind != yaml.MappingNode {
		p.errorf(root, "", "expected a mapping (apiVersion, kind, metadata, export) at the top of the file, got %s", describe(root))
		return nil
	}
	nodes := count(&doc)
	p.limit = 10_000 + 100*nodes
	p.budget = p.limit
	return root
}

// decode runs yaml.v3 and turns a panic inside it into an error: Parse must
// not panic on any input.
func decode(dec *yaml.Decoder, n *yaml.Node) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("yaml: %v", r)
		}
	}()
	return dec.Decode(n)
}

// count returns the number of nodes in the tree as written (aliases not followed).
func count(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += count(ch)
	}
	return c
}

func isEmpty(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == tagNull && n.Value == "" && n.Style == 0
}

var (
	syntaxLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	anchorRE     = regexp.MustCompile(`^unknown anchor '(.*)' referenced$`)

	// parserProblems are the problems yaml.v3's parser (not its scanner)
	// reports; for those it prints a 0-based line, which is corrected here.
	parserProblems = []string{
		"did not find expected <stream-start>", "did not find expected <document start>",
		"found undefined tag handle", "did not find expected node content",
		"did not find expected '-' indicator", "did not find expected key",
		"did not find expected ',' or ']'", "did not find expected ',' or '}'",
		"found duplicate %YAML directive", "found incompatible YAML document",
		"found duplicate %TAG directive",
	}
)

// syntaxError reports a yaml.v3 error with the line yaml.v3 gives (made
// 1-based where yaml.v3 prints it 0-based), or, when it gives none, the
// position found by looking at the input.
func (p *parser) syntaxError(err error, data []byte) {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	pos := Pos{File: p.file}
	if m := syntaxLineRE.FindStringSubmatch(err.Error()); m != nil {
		pos.Line, _ = strconv.Atoi(m[1])
		msg = m[2]
		if slices.Contains(parserProblems, msg) {
			pos.Line++
		}
		if strings.Contains(msg, "cannot start any token") && lineHasTab(data, pos.Line) {
			msg += " (a tab: YAML indents with spaces only)"
		}
	} else if m := anchorRE.FindStringSubmatch(msg); m != nil {
		pos.Line, pos.Column = locateAlias(data, m[1])
		msg = fmt.Sprintf("alias *%s refers to no anchor &%s defined before it", m[1], m[1])
	} else {
		pos.Line, pos.Column = locateBadChar(data)
	}
	p.errorAt(pos, "", "invalid YAML: %s", msg)
}

func lineHasTab(data []byte, line int) bool {
	lines := bytes.Split(data, []byte("\n"))
	return line >= 1 && line <= len(lines) && bytes.ContainsRune(lines[line-1], '\t')
}

// locateAlias returns the position of the first "*name" in data (0, 0 when absent).
func locateAlias(data []byte, name string) (line, col int) {
	i := bytes.Index(data, []byte("*"+name))
	if i < 0 {
		return 0, 0
	}
	return lineCol(data, i)
}

// locateBadChar returns the position of the first byte YAML does not accept:
// invalid UTF-8 or a control character (0, 0 when there is none).
func locateBadChar(data []byte) (line, col int) {
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		bad := r == utf8.RuneError && size <= 1 ||
			r < 0x20 && r != '\t' && r != '\n' && r != '\r' ||
			r == 0x7f || r >= 0x80 && r < 0xa0 && r != 0x85 || r == 0xfffe || r == 0xffff
		if bad {
			return lineCol(data, i)
		}
		i += size
	}
	return 0, 0
}

func lineCol(data []byte, off int) (line, col int) {
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	start := bytes.LastIndexByte(before, '\n') + 1
	return line, utf8.RuneCount(before[start:]) + 1
}
