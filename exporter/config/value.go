package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// configMap converts a `config` mapping (or a mapping inside it) to
// map[string]any. Keys must be strings.
func (p *parser) configMap(m *yaml.Node, key string) map[string]any {
	p.enter(m)
	defer p.leave(m)
	out := make(map[string]any, len(m.Content)/2)
	for _, pr := range p.pairs(m, key) {
		k := joinKey(key, pr.name)
		if tag := pr.key.ShortTag(); tag != tagStr {
			p.errorf(pr.key, k, "expected a string key, got %s (quote it to make it a string)", describe(pr.key))
			continue
		}
		out[pr.name] = p.value(pr.val, k)
	}
	return out
}

// value converts a config value to nil, bool, int64, float64, string, []any
// or map[string]any: what google.protobuf.Struct can carry.
func (p *parser) value(n *yaml.Node, key string) any {
	n = p.deref(n, key)
	if n == nil || !p.spend(n, key) {
		return nil
	}
	switch n.Kind {
	case yaml.MappingNode:
		if tag := n.ShortTag(); tag != tagMap {
			p.errorf(n, key, "unsupported tag %s; expected a plain mapping", clip(tag))
			return nil
		}
		return p.configMap(n, key)
	case yaml.SequenceNode:
		if tag := n.ShortTag(); tag != tagSeq {
			p.errorf(n, key, "unsupported tag %s; expected a plain sequence", clip(tag))
			return nil
		}
		p.enter(n)
		defer p.leave(n)
		out := make([]any, 0, len(n.Content))
		for i, item := range n.Content {
			out = append(out, p.value(item, fmt.Sprintf("%s[%d]", key, i)))
		}
		return out
	case yaml.ScalarNode:
		return p.scalar(n, key)
	}
	p.errorf(n, key, "expected a value, got %s", describe(n))
	return nil
}

// scalar converts a scalar by its resolved tag.
func (p *parser) scalar(n *yaml.Node, key string) any {
	switch tag := n.ShortTag(); tag {
	case tagNull:
		return nil
	case tagStr:
		return n.Value
	case tagTimestamp:
		return n.Value // JSON has no time type: the driver gets the text as written
	case tagBool:
		var b bool
		if err := n.Decode(&b); err != nil {
			p.errorf(n, key, "%q is not a boolean; expected true or false", clip(n.Value))
			return nil
		}
		return b
	case tagInt:
		var x any
		if err := n.Decode(&x); err != nil {
			p.errorf(n, key, "%q is not an integer", clip(n.Value))
			return nil
		}
		switch x := x.(type) {
		case int:
			return int64(x)
		case int64:
			return x
		case uint64:
			return float64(x) // beyond int64
		case float64:
			return x
		}
		p.errorf(n, key, "%q is not an integer", clip(n.Value))
		return nil
	case tagFloat:
		var f float64
		if err := n.Decode(&f); err != nil {
			p.errorf(n, key, "%q is not a number", clip(n.Value))
			return nil
		}
		if math.IsNaN(f) || math.IsInf(f, 0) {
			p.errorf(n, key, "%s is not a finite number; JSON values cannot hold it", clip(n.Value))
			return nil
		}
		return f
	default:
		p.errorf(n, key, "unsupported tag %s; expected a string, number, boolean, null, sequence or mapping", clip(tag))
		return nil
	}
}

// lookupPos finds the position of the dotted key path rest inside n; best is
// the position of n's own key, returned when rest goes no further.
func lookupPos(n *yaml.Node, rest string, best Pos, depth int) Pos {
	rest = strings.TrimPrefix(rest, ".")
	if rest == "" || depth > 1000 {
		return best
	}
	n = follow(n)
	at := func(n *yaml.Node) Pos { return Pos{File: best.File, Line: n.Line, Column: n.Column} }
	switch n.Kind {
	case yaml.SequenceNode:
		idx, tail, ok := index(rest)
		if !ok || idx >= len(n.Content) {
			return best
		}
		item := n.Content[idx]
		return lookupPos(item, tail, at(item), depth+1)
	case yaml.MappingNode:
		if k, v := findKey(n, rest, 0); k != nil {
			return lookupPos(v, rest[len(k.Value):], at(k), depth+1)
		}
	}
	return best
}

// index parses a leading sequence index, "[3]" or "3", from path.
func index(path string) (idx int, tail string, ok bool) {
	var digits string
	if strings.HasPrefix(path, "[") {
		end := strings.IndexByte(path, ']')
		if end < 0 {
			return 0, "", false
		}
		digits, tail = path[1:end], path[end+1:]
	} else {
		end := strings.IndexAny(path, ".[")
		if end < 0 {
			end = len(path)
		}
		digits, tail = path[:end], path[end:]
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 0 {
		return 0, "", false
	}
	return n, tail, true
}

// findKey returns the key of mapping m that starts path (the longest one, as
// keys may contain dots), looking at keys written in m before merged ones.
func findKey(m *yaml.Node, path string, depth int) (k, v *yaml.Node) {
	var merges []*yaml.Node
	for i := 0; i+1 < len(m.Content); i += 2 {
		key, val := m.Content[i], m.Content[i+1]
		if isMerge(key) {
			merges = append(merges, val)
			continue
		}
		key = follow(key)
		if key.Kind != yaml.ScalarNode || !startsPath(path, key.Value) {
			continue
		}
		if k == nil || len(key.Value) > len(k.Value) {
			k, v = key, val
		}
	}
	if k != nil || depth > 16 {
		return k, v
	}
	for _, mv := range merges {
		mv = follow(mv)
		sources := []*yaml.Node{mv}
		if mv.Kind == yaml.SequenceNode {
			sources = mv.Content
		}
		for _, src := range sources {
			src = follow(src)
			if src.Kind != yaml.MappingNode {
				continue
			}
			if k, v := findKey(src, path, depth+1); k != nil {
				return k, v
			}
		}
	}
	return nil, nil
}

// startsPath reports whether name is the first element of path.
func startsPath(path, name string) bool {
	if !strings.HasPrefix(path, name) {
		return false
	}
	rest := path[len(name):]
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// follow follows aliases without reporting anything: for lookups in a tree
// that Parse already checked.
func follow(n *yaml.Node) *yaml.Node {
	for hops := 0; n.Kind == yaml.AliasNode && n.Alias != nil && hops < 16; hops++ {
		n = n.Alias
	}
	return n
}
