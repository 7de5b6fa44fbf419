package config

import (
	"fmt"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// instanceKeys are the keys of a driver instance, in the order messages list them.
var instanceKeys = []string{"type", "plugin", "sha256", "version", "config", "description", "methods_description", "children", "ref"}

// instances walks a mapping of name -> instance (`export` or `children`).
// keyPath is the mapping's key path, parent the dotted instance path of its owner.
func (p *parser) instances(m *yaml.Node, keyPath, parent string) []*Instance {
	p.enter(m)
	defer p.leave(m)
	var out []*Instance
	for _, pr := range p.pairs(m, keyPath) {
		key := joinKey(keyPath, pr.name)
		if msg := checkName(pr.name); msg != "" {
			p.errorf(pr.key, key, "%s", msg)
			continue
		}
		if i := p.instance(pr, key, joinKey(parent, pr.name)); i != nil {
			out = append(out, i)
		}
	}
	return out
}

// checkName returns why name cannot be an instance name, or "".
func checkName(name string) string {
	switch {
	case name == "":
		return "an instance name must not be empty"
	case strings.Contains(name, "."):
		return fmt.Sprintf("invalid name %q: a name must not contain dots (dots join names into paths such as \"dut.power\")", clip(name))
	case strings.ContainsFunc(name, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }):
		return fmt.Sprintf("invalid name %q: a name must not contain spaces or control characters", clip(name))
	}
	return ""
}

func (p *parser) instance(pr pair, key, path string) *Instance {
	v := p.deref(pr.val, key)
	if v == nil || !p.spend(v, key) {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		p.errorf(v, key, "expected a mapping with type (a driver), children (a composite) or ref (another instance), got %s", describe(v))
		return nil
	}
	p.enter(v)
	defer p.leave(v)
	inst := &Instance{Name: pr.name, Path: path, KeyPath: key, Pos: p.pos(pr.key), keys: map[string]Pos{}}
	fs := p.fields(v, key, instanceKeys)
	for name, f := range fs {
		inst.keys[name] = p.pos(f.key)
	}
	sub := func(name string) string { return joinKey(key, name) }

	if v := fs.value("type"); v != nil {
		inst.Type, _ = p.nonEmpty(v, sub("type"))
	}
	if v := fs.value("plugin"); v != nil {
		inst.Plugin, _ = p.nonEmpty(v, sub("plugin"))
	}
	if v := fs.value("sha256"); v != nil {
		inst.SHA256 = p.sha256Pin(v, sub("sha256"))
	}
	if v := fs.value("version"); v != nil {
		inst.Version = p.versionPin(v, sub("version"))
	}
	if v := fs.value("config"); v != nil {
		if m := p.mapping(v, sub("config")); m != nil {
			inst.configNode = m
			inst.Config = p.configMap(m, sub("config"))
		}
	}
	if v := fs.value("description"); v != nil {
		if s, ok := p.str(v, sub("description")); ok {
			inst.Description = &s
		}
	}
	if v := fs.value("methods_description"); v != nil {
		inst.MethodsDescription = p.methodsDescription(v, sub("methods_description"))
	}
	if v := fs.value("children"); v != nil {
		if m := p.mapping(v, sub("children")); m != nil {
			inst.Children = p.instances(m, sub("children"), path)
		}
	}
	if v := fs.value("ref"); v != nil {
		inst.Ref, _ = p.nonEmpty(v, sub("ref"))
		inst.refPos = p.pos(v)
	}

	// Which of the three kinds of instance is it?
	has := func(name string) bool { return fs.value(name) != nil }
	switch {
	case has("ref"):
		for _, name := range []string{"type", "plugin", "sha256", "version", "config", "methods_description", "children"} {
			if has(name) {
				p.errorf(fs[name].key, sub(name), "not allowed together with ref; a ref may only have a description")
			}
		}
	case has("type") && inst.Type == CompositeType:
		// Upstream's configs name the composite type explicitly; it is the
		// same composite as an instance without type.
		inst.Type = ""
		for _, name := range []string{"plugin", "sha256", "version", "config", "methods_description"} {
			if has(name) {
				p.errorf(fs[name].key, sub(name), "not allowed for type %s, a composite, which may only have children and a description", CompositeType)
			}
		}
	case has("type"):
		if inst.Config == nil {
			inst.Config = map[string]any{}
		}
	default:
		for _, name := range []string{"plugin", "sha256", "version", "config", "methods_description"} {
			if has(name) {
				p.errorf(fs[name].key, sub(name), "not allowed without type; an instance without type is a composite, which may only have children and a description")
			}
		}
		if !has("children") {
			p.errorf(pr.key, key, "expected type (a driver), children (a composite) or ref (another instance)")
		}
	}
	return inst
}

func (p *parser) methodsDescription(v *yaml.Node, key string) map[string]string {
	m := p.mapping(v, key)
	if m == nil {
		return nil
	}
	p.enter(m)
	defer p.leave(m)
	out := map[string]string{}
	for _, pr := range p.pairs(m, key) {
		k := joinKey(key, pr.name)
		if pr.name == "" {
			p.errorf(pr.key, k, "a method name must not be empty")
			continue
		}
		if v := p.deref(pr.val, k); v != nil {
			if s, ok := p.str(v, k); ok {
				out[pr.name] = s
			}
		}
	}
	return out
}

// checkRefs checks, once the whole tree is known, that every ref names
// another instance that is neither a ref nor one of its ancestors.
func (p *parser) checkRefs(c *Config) {
	_ = c.Walk(func(i *Instance) error {
		if i.Ref == "" {
			return nil
		}
		pos, key := i.refPos, joinKey(i.KeyPath, "ref")
		t := c.Lookup(i.Ref)
		switch {
		case t == nil:
			p.errorAt(pos, key, "%s", missingRef(c, i.Ref))
		case t == i:
			p.errorAt(pos, key, "%q is this instance; a ref must name another instance", i.Ref)
		case t.Ref != "":
			p.errorAt(pos, key, "%q is itself a ref (to %q); name %q instead", i.Ref, t.Ref, t.Ref)
		case strings.HasPrefix(i.Path, t.Path+"."):
			p.errorAt(pos, key, "%q contains this instance; a ref to it would form a cycle", i.Ref)
		}
		return nil
	})
}

// missingRef explains why path names no instance.
func missingRef(c *Config, path string) string {
	names := strings.Split(path, ".")
	if slices.Contains(names, "") {
		return fmt.Sprintf("invalid path %q; expected instance names joined by dots, such as \"dut.power\"", clip(path))
	}
	list, prefix := c.Export, ""
	for _, name := range names {
		var found *Instance
		for _, i := range list {
			if i.Name == name {
				found = i
				break
			}
		}
		if found == nil {
			break
		}
		list, prefix = found.Children, found.Path
	}
	if len(list) == 0 {
		return fmt.Sprintf("no instance %q; %q has no children", clip(path), prefix)
	}
	const most = 20
	var paths []string
	for _, i := range list {
		if len(paths) == most {
			paths = append(paths, "...")
			break
		}
		paths = append(paths, i.Path)
	}
	return fmt.Sprintf("no instance %q; expected one of: %s", clip(path), strings.Join(paths, ", "))
}
