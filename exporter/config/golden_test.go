package config

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestGolden parses every testdata/*.yaml and compares the result with the
// matching .golden file: the errors a user sees, or a rendering of the tree.
// Run `go test ./exporter/config -run TestGolden -update` to rewrite them.
func TestGolden(t *testing.T) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(inputs) == 0 {
		t.Fatal("no testdata/*.yaml")
	}
	for _, in := range inputs {
		name := filepath.Base(in)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			data, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := Parse(name, data)
			var got string
			if err != nil {
				got = err.Error() + "\n"
			} else {
				got = render(cfg)
			}
			golden := strings.TrimSuffix(in, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from %s (run with -update to accept):\n--- got\n%s--- want\n%s", name, golden, got, want)
			}
		})
	}
}

// render prints a Config for golden files: every field, values with their Go types.
func render(c *Config) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	w("file: %s", c.File)
	w("apiVersion: %s", c.APIVersion)
	w("kind: %s", c.Kind)
	w("metadata: namespace=%q name=%q", c.Metadata.Namespace, c.Metadata.Name)
	w("endpoint: %q", c.Endpoint)
	w("token: %q", c.Token)
	w("description: %q", c.Description)
	w("motd: %q", c.Motd)
	w("tls: ca=%q insecure=%v", c.TLS.CA, c.TLS.Insecure)
	w("grpcOptions: %s", renderValue(c.GRPCOptions))
	w("failureDetection: maxRapidFailures=%d rapidFailureWindow=%s", c.FailureDetection.MaxRapidFailures, c.FailureDetection.RapidFailureWindow)
	w("exitOnLeaseEnd: %v", c.ExitOnLeaseEnd)
	for _, h := range []struct {
		name string
		hook *Hook
	}{{"beforeLease", c.Hooks.BeforeLease}, {"afterLease", c.Hooks.AfterLease}} {
		if h.hook == nil {
			w("hooks.%s: none", h.name)
			continue
		}
		w("hooks.%s: @%s exec=%q timeout=%s onFailure=%s script=%q", h.name, h.hook.Pos, h.hook.Exec, h.hook.Timeout, h.hook.OnFailure, h.hook.Script)
	}
	w("export:")
	_ = c.Walk(func(i *Instance) error {
		indent := strings.Repeat("  ", strings.Count(i.Path, ".")+1)
		w("%s%s @%s path=%s key=%s", indent, i.Name, i.Pos, i.Path, i.KeyPath)
		if i.Type != "" {
			w("%s  type: %s", indent, i.Type)
		}
		if i.Plugin != "" {
			w("%s  plugin: %s", indent, i.Plugin)
		}
		if i.SHA256 != "" {
			w("%s  sha256: %s", indent, i.SHA256)
		}
		if i.Version != "" {
			w("%s  version: %s", indent, i.Version)
		}
		if i.Ref != "" {
			w("%s  ref: %s", indent, i.Ref)
		}
		if i.Description != nil {
			w("%s  description: %q", indent, *i.Description)
		}
		if i.MethodsDescription != nil {
			m := make(map[string]any, len(i.MethodsDescription))
			for k, v := range i.MethodsDescription {
				m[k] = v
			}
			w("%s  methods_description: %s", indent, renderValue(m))
		}
		if i.Config != nil {
			w("%s  config: %s", indent, renderValue(i.Config))
		}
		return nil
	})
	return b.String()
}

func renderValue(v any) string {
	switch v := v.(type) {
	case nil:
		return "nil"
	case string:
		return fmt.Sprintf("%q", v)
	case map[string]any:
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = fmt.Sprintf("%q: %s", k, renderValue(v[k]))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	case []any:
		parts := make([]string, len(v))
		for i, e := range v {
			parts[i] = renderValue(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	default:
		return fmt.Sprintf("%T(%v)", v, v)
	}
}
