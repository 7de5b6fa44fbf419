package config

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// spend takes one unit of the alias budget, reporting once when it runs out.
func (p *parser) spend(n *yaml.Node, key string) bool {
	if p.budget > 0 {
		p.budget--
		return true
	}
	if !p.exhausted {
		p.errorf(n, key, "the document expands to more than %d values through aliases; look for aliases that multiply each other", p.limit)
		p.exhausted = true
	}
	return false
}

func (p *parser) enter(n *yaml.Node) { p.active[n]++ }
func (p *parser) leave(n *yaml.Node) { p.active[n]-- }

// deref follows an alias to the node it names. It returns nil after
// reporting an alias used inside the value it names (which would never end).
func (p *parser) deref(n *yaml.Node, key string) *yaml.Node {
	for hops := 0; n.Kind == yaml.AliasNode; hops++ {
		if n.Alias == nil || hops > 16 {
			p.errorf(n, key, "alias *%s names no value", n.Value)
			return nil
		}
		if p.active[n.Alias] > 0 {
			p.errorf(n, key, "alias *%s is used inside the value it names; a value cannot contain itself", n.Value)
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull
}

func isMerge(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == tagMerge
}

// describe names a value for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a sequence"
	case yaml.ScalarNode:
		v := clip(n.Value)
		switch tag := n.ShortTag(); tag {
		case tagNull:
			return "null"
		case tagStr:
			return strconv.Quote(v)
		case tagInt:
			return "the integer " + v
		case tagFloat:
			return "the number " + v
		case tagBool:
			return "the boolean " + v
		case tagTimestamp:
			return "the timestamp " + v
		case tagBinary:
			return "binary data"
		default:
			return "a value tagged " + clip(tag)
		}
	case yaml.AliasNode:
		return "an alias"
	}
	return "an empty value"
}

// clip shortens s for a message.
func clip(s string) string {
	const most = 64
	if utf8.RuneCountInString(s) <= most {
		return s
	}
	return string([]rune(s)[:most]) + "..."
}

// joinKey appends name to a dotted key path; an empty name shows as "".
func joinKey(path, name string) string {
	if name == "" {
		name = `""`
	}
	if path == "" {
		return name
	}
	return path + "." + name
}

// pair is one key/value of a mapping, the key resolved to a scalar.
type pair struct {
	name     string
	key, val *yaml.Node
}

// pairs returns the entries of mapping m (already resolved) in file order,
// expanding merge keys ("<<": a mapping or a sequence of mappings; keys
// written in m win over merged ones, earlier merges over later ones). It
// reports duplicate keys (YAML forbids them) and keys that are not scalars.
func (p *parser) pairs(m *yaml.Node, path string) []pair {
	p.enter(m)
	defer p.leave(m)
	seen := map[string]*yaml.Node{}
	type entry struct {
		pair
		merge bool
	}
	var entries []entry
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if isMerge(k) {
			entries = append(entries, entry{pair: pair{key: k, val: v}, merge: true})
			continue
		}
		if k = p.deref(k, path); k == nil {
			continue
		}
		if k.Kind != yaml.ScalarNode || isNull(k) {
			p.errorf(k, path, "expected a string key, got %s", describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			where := fmt.Sprintf("line %d", first.Line)
			if first.Line == k.Line {
				where += fmt.Sprintf(", column %d", first.Column)
			}
			p.errorf(k, joinKey(path, k.Value), "duplicate key %q; first defined at %s", k.Value, where)
			continue
		}
		seen[k.Value] = k
		entries = append(entries, entry{pair: pair{name: k.Value, key: k, val: v}})
	}
	out := make([]pair, 0, len(entries))
	for _, e := range entries {
		if !e.merge {
			out = append(out, e.pair)
			continue
		}
		for _, mp := range p.merged(e.key, e.val, path) {
			if _, ok := seen[mp.name]; !ok && p.spend(mp.key, path) {
				seen[mp.name] = mp.key
				out = append(out, mp)
			}
		}
	}
	return out
}

// merged returns the entries that a merge key brings in.
func (p *parser) merged(k, v *yaml.Node, path string) []pair {
	key := joinKey(path, k.Value)
	if v = p.deref(v, key); v == nil {
		return nil
	}
	var sources []*yaml.Node
	switch v.Kind {
	case yaml.MappingNode:
		sources = []*yaml.Node{v}
	case yaml.SequenceNode:
		for _, item := range v.Content {
			item = p.deref(item, key)
			if item == nil {
				continue
			}
			if item.Kind != yaml.MappingNode {
				p.errorf(item, key, "expected a mapping to merge, got %s", describe(item))
				continue
			}
			sources = append(sources, item)
		}
	default:
		p.errorf(v, key, "expected a mapping or a sequence of mappings to merge, got %s", describe(v))
		return nil
	}
	var out []pair
	for _, src := range sources {
		out = append(out, p.pairs(src, path)...)
	}
	return out
}

// field is a known key of a mapping; val is the resolved value, nil when it
// could not be resolved (already reported).
type field struct{ key, val *yaml.Node }

type fieldSet map[string]field

// fields returns the entries of mapping m whose key is in known, and reports
// the others as unknown keys.
func (p *parser) fields(m *yaml.Node, path string, known []string) fieldSet {
	fs := fieldSet{}
	for _, pr := range p.pairs(m, path) {
		key := joinKey(path, pr.name)
		if !slices.Contains(known, pr.name) {
			p.errorf(pr.key, key, "unknown key %q; expected one of: %s", pr.name, strings.Join(known, ", "))
			continue
		}
		fs[pr.name] = field{key: pr.key, val: p.deref(pr.val, key)}
	}
	return fs
}

// value returns the value of key name, or nil when it is absent, null or
// could not be resolved.
func (fs fieldSet) value(name string) *yaml.Node {
	f, ok := fs[name]
	if !ok || f.val == nil || isNull(f.val) {
		return nil
	}
	return f.val
}

// missing reports whether key name is absent or null.
func (fs fieldSet) missing(name string) bool {
	f, ok := fs[name]
	return !ok || f.val != nil && isNull(f.val)
}

// str returns a string value, reporting any other kind of value.
func (p *parser) str(v *yaml.Node, key string) (string, bool) {
	if v.Kind == yaml.ScalarNode && v.ShortTag() == tagStr {
		return v.Value, true
	}
	hint := ""
	if v.Kind == yaml.ScalarNode {
		hint = " (quote it to make it a string)"
	}
	p.errorf(v, key, "expected a string, got %s%s", describe(v), hint)
	return "", false
}

// nonEmpty returns a non-empty string value.
func (p *parser) nonEmpty(v *yaml.Node, key string) (string, bool) {
	s, ok := p.str(v, key)
	if ok && s == "" {
		p.errorf(v, key, "must not be empty")
		return "", false
	}
	return s, ok
}

func (p *parser) boolean(v *yaml.Node, key string) bool {
	var b bool
	if v.Kind != yaml.ScalarNode || v.ShortTag() != tagBool || v.Decode(&b) != nil {
		p.errorf(v, key, "expected true or false, got %s", describe(v))
	}
	return b
}

// integer returns an !!int value that fits in an int64.
func (p *parser) integer(v *yaml.Node) (int64, bool) {
	if v.Kind != yaml.ScalarNode || v.ShortTag() != tagInt {
		return 0, false
	}
	var x any
	if v.Decode(&x) != nil {
		return 0, false
	}
	switch x := x.(type) {
	case int:
		return int64(x), true
	case int64:
		return x, true
	}
	return 0, false
}

// seconds returns a positive whole number of seconds as a duration.
func (p *parser) seconds(v *yaml.Node, key string) (d time.Duration, ok bool) {
	n, ok := p.integer(v)
	switch {
	case !ok:
		p.errorf(v, key, "expected a whole number of seconds, got %s", describe(v))
	case n <= 0:
		p.errorf(v, key, "expected a positive number of seconds, got %s", v.Value)
	case n > int64(math.MaxInt64/time.Second):
		p.errorf(v, key, "%s seconds is too long; expected at most %d", v.Value, int64(math.MaxInt64/time.Second))
	default:
		return time.Duration(n) * time.Second, true
	}
	return 0, false
}

// mapping returns v when it is a mapping and reports it otherwise.
func (p *parser) mapping(v *yaml.Node, key string) *yaml.Node {
	if v.Kind != yaml.MappingNode {
		p.errorf(v, key, "expected a mapping, got %s", describe(v))
		return nil
	}
	return v
}
