package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jumpwire-dev/jumpwire/client"
)

// bindArgs turns the words after METHOD into the call's positional arguments. Without named
// parameters every word is one argument, read by parseArgs. When the driver names its
// parameters, a word NAME=VALUE passes VALUE to the parameter NAME: named arguments follow the
// positional ones, and a parameter left out between them takes its default. A string argument
// that itself looks like NAME=VALUE is passed as JSON ('"a=b"') or by name (data=a=b).
func bindArgs(d *client.Driver, method string, words []string) ([]any, error) {
	sig, ok := d.Signature(method)
	if !ok || !named(sig) {
		return parseArgs(words), nil
	}
	op := joinOp(d, method)
	var positional []string
	byIndex := map[int]string{}
	for _, w := range words {
		name, value, isNamed := splitNamed(w)
		if !isNamed {
			if len(byIndex) > 0 {
				return nil, fmt.Errorf("%s: argument %q follows named arguments: put positional arguments first", op, w)
			}
			positional = append(positional, w)
			continue
		}
		i := paramIndex(sig, name)
		switch {
		case i < 0:
			return nil, fmt.Errorf("%s: unknown parameter %q; it takes %s (a string argument containing \"=\" is passed as JSON: '\"%s\"')",
				op, name, sig.Format(method), w)
		case sig.Variadic && i == len(sig.Params)-1:
			return nil, fmt.Errorf("%s: %s takes any number of values: pass them by position, after the others", op, name)
		case i < len(positional):
			return nil, fmt.Errorf("%s: %s is given twice (by position as %q, and by name)", op, name, positional[i])
		}
		if _, dup := byIndex[i]; dup {
			return nil, fmt.Errorf("%s: %s is given twice", op, name)
		}
		byIndex[i] = value
	}
	args := parseArgs(positional)
	for i := len(positional); len(byIndex) > 0; i++ {
		if v, ok := byIndex[i]; ok {
			args = append(args, parseArgs([]string{v})[0])
			delete(byIndex, i)
			continue
		}
		p := sig.Params[i]
		if p.Default == nil {
			return nil, fmt.Errorf("%s: missing %s (call it as %s)", op, p.Name, sig.Format(method))
		}
		args = append(args, parseArgs([]string{string(p.Default)})[0])
	}
	return args, nil
}

// named reports whether the driver names sig's parameters.
func named(sig client.Signature) bool {
	for _, p := range sig.Params {
		if p.Name != "" {
			return true
		}
	}
	return false
}

// splitNamed splits a word NAME=VALUE whose NAME is a parameter name (a letter or _, then
// letters, digits and _).
func splitNamed(w string) (name, value string, ok bool) {
	name, value, found := strings.Cut(w, "=")
	if !found || name == "" {
		return "", "", false
	}
	for i, r := range name {
		switch {
		case r == '_', r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z':
		case r >= '0' && r <= '9' && i > 0:
		default:
			return "", "", false
		}
	}
	return name, value, true
}

func paramIndex(sig client.Signature, name string) int {
	for i, p := range sig.Params {
		if p.Name == name {
			return i
		}
	}
	return -1
}

// paramJSON is one parameter under -o json (jw tree, jw plugins inspect): name is "" when the
// driver does not name it, and default is present only when the parameter has one.
type paramJSON struct {
	Name    string          `json:"name"`
	Type    string          `json:"type"`
	Default json.RawMessage `json:"default,omitempty"`
}

func paramDocs(sig client.Signature) []paramJSON {
	docs := make([]paramJSON, 0, len(sig.Params))
	for _, p := range sig.Params {
		docs = append(docs, paramJSON{Name: p.Name, Type: p.Type, Default: p.Default})
	}
	return docs
}
