package config

import (
	"strings"

	"gopkg.in/yaml.v3"
)

// sha256Pin returns the `sha256:` of an instance: 64 hex digits (an optional
// "sha256:" prefix is accepted), lowercased.
func (p *parser) sha256Pin(v *yaml.Node, key string) string {
	s, ok := scalarText(v)
	if ok {
		s = strings.ToLower(strings.TrimPrefix(strings.TrimSpace(s), "sha256:"))
		if isSHA256(s) {
			return s
		}
	}
	p.errorf(v, key, "expected the sha256 of the plugin binary, 64 hexadecimal digits "+
		"(as printed by sha256sum or \"jw plugins list -o json\"), got %s", describe(v))
	return ""
}

// versionPin returns the `version:` of an instance, verbatim. An unquoted
// number (version: 1.2) is taken as written.
func (p *parser) versionPin(v *yaml.Node, key string) string {
	s, ok := scalarText(v)
	if !ok || strings.TrimSpace(s) == "" {
		p.errorf(v, key, "expected the version the plugin binary reports, such as \"1.2.0\", got %s", describe(v))
		return ""
	}
	return strings.TrimSpace(s)
}

// scalarText returns the text of a string or numeric scalar as written.
func scalarText(v *yaml.Node) (string, bool) {
	if v.Kind != yaml.ScalarNode {
		return "", false
	}
	switch v.ShortTag() {
	case tagStr, tagInt, tagFloat:
		return v.Value, true
	}
	return "", false
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
