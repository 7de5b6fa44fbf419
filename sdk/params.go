package sdk

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"google.golang.org/protobuf/types/known/structpb"
)

// An ExportOption tells [Export] more about a method than its Go signature
// says: the names of its parameters ([Params]) and their defaults ([Default]).
type ExportOption func(*exportOptions)

type exportOptions struct {
	names    []string
	defaults []namedDefault
}

type namedDefault struct {
	name  string
	value any
}

// Params names the method's parameters, in order, one name for each
// parameter after the context (the last names the variadic parameter, if
// any). Clients show the names (`jw tree` shows on(channel integer, state
// boolean)) and may pass arguments by name: jw relay on channel=2 state=true.
// A name is a letter or underscore followed by letters, digits and
// underscores.
func Params(names ...string) ExportOption {
	return func(o *exportOptions) { o.names = append([]string(nil), names...) }
}

// Default gives the parameter called name (see [Params]) a default: a caller
// that leaves it out gets value, converted to the parameter's type as a
// client's argument would be. Only trailing parameters may have defaults (a
// parameter with one is followed only by others with one), and not a
// variadic parameter.
func Default(name string, value any) ExportOption {
	return func(o *exportOptions) { o.defaults = append(o.defaults, namedDefault{name, value}) }
}

// applyOptions records the names and defaults of opts in m, or a problem in m.err.
func (m *Method) applyOptions(fn string, opts []ExportOption) {
	var o exportOptions
	for _, opt := range opts {
		if opt != nil {
			opt(&o)
		}
	}
	if m.err != nil || (o.names == nil && o.defaults == nil) {
		return
	}
	if err := m.setNames(o); err != nil {
		m.err = fmt.Errorf("sdk: %s(%q): %w", fn, m.name, err)
	}
}

func (m *Method) setNames(o exportOptions) error {
	if o.names == nil {
		return fmt.Errorf("sdk.Default needs the parameters named with sdk.Params")
	}
	if len(o.names) != len(m.params) {
		return fmt.Errorf("sdk.Params names %d parameters, the function has %d after the context", len(o.names), len(m.params))
	}
	index := make(map[string]int, len(o.names))
	for i, n := range o.names {
		if !validParamName(n) {
			return fmt.Errorf("parameter name %q: use a letter or _ followed by letters, digits and _", n)
		}
		if _, dup := index[n]; dup {
			return fmt.Errorf("parameter name %q appears twice", n)
		}
		index[n] = i
	}
	defaults := make([]*structpb.Value, len(m.params))
	for _, d := range o.defaults {
		i, ok := index[d.name]
		if !ok {
			return fmt.Errorf("sdk.Default(%q): no such parameter (parameters: %s)", d.name, strings.Join(o.names, ", "))
		}
		if m.variadic && i == len(m.params)-1 {
			return fmt.Errorf("sdk.Default(%q): a variadic parameter takes no default", d.name)
		}
		pv, err := encodeValue(reflect.ValueOf(d.value))
		if err != nil {
			return fmt.Errorf("sdk.Default(%q): %w", d.name, err)
		}
		check := reflect.New(m.params[i]).Elem()
		if err := decodeValue(pv, check, d.name); err != nil {
			return fmt.Errorf("sdk.Default(%q): %w", d.name, err)
		}
		defaults[i] = pv
	}
	fixed := m.fixed()
	for i := 1; i < fixed; i++ {
		if defaults[i-1] != nil && defaults[i] == nil {
			return fmt.Errorf("parameter %q has a default but %q after it has none: only trailing parameters may have defaults", o.names[i-1], o.names[i])
		}
	}
	m.names, m.defaults = o.names, defaults
	return nil
}

// validParamName reports whether n is a letter or _ followed by letters, digits and _.
func validParamName(n string) bool {
	if n == "" {
		return false
	}
	for i, r := range n {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return false
		}
	}
	return true
}

// fixed is the number of parameters before a variadic one.
func (m *Method) fixed() int {
	if m.variadic {
		return len(m.params) - 1
	}
	return len(m.params)
}

// required is the number of leading parameters a caller must pass.
func (m *Method) required() int {
	n := m.fixed()
	for n > 0 && m.defaults != nil && m.defaults[n-1] != nil {
		n--
	}
	return n
}

// paramInfo describes the named parameters on the wire, nil when unnamed.
func (m *Method) paramInfo(types []string) []*pluginv1.Param {
	if m.names == nil {
		return nil
	}
	info := make([]*pluginv1.Param, len(m.names))
	for i, n := range m.names {
		info[i] = &pluginv1.Param{Name: n, Type: types[i], Default: m.defaults[i]}
	}
	return info
}

// paramLabel names argument i in messages: its parameter's name ("words[0]"
// for the first of a variadic parameter's values), or "argument N".
func (m *Method) paramLabel(i int) string {
	switch fixed := m.fixed(); {
	case m.names == nil:
		return fmt.Sprintf("argument %d", i+1)
	case i >= fixed:
		return fmt.Sprintf("%s[%d]", m.names[fixed], i-fixed)
	}
	return m.names[i]
}
