package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics and always returns exactly one
// of a Config or a non-empty Errors whose every line is one problem with a
// position in the file. Seeds are testdata/*.yaml plus a few edge cases.
func FuzzParse(f *testing.F) {
	inputs, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, s := range []string{
		"", "---", "~", "[]", "{}", "a: *b", "&a [*a]", "&a {<<: *a}", "? [a]\n: b\n",
		head + "export: {a: {ref: a.b.c}}",
		head + "export:\n  p:\n    type: x\n    config: {k: &v [1, 2], l: *v, <<: [{m: 1}, {n: 2}]}\n",
		"\xef\xbb\xbfapiVersion: x\n", "\xff\xfe", "a: !!binary ====\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse("f.yaml", data)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned cfg=%v err=%v; want exactly one", cfg != nil, err)
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %q is not a non-empty Errors", err, err)
			}
			if lines := strings.Count(err.Error(), "\n") + 1; lines != len(es) {
				t.Fatalf("%d problems printed on %d lines:\n%s", len(es), lines, err)
			}
			for _, e := range es {
				if !strings.HasPrefix(e.Error(), "f.yaml") || e.Msg == "" {
					t.Fatalf("problem without a file or a message: %q", e.Error())
				}
			}
			return
		}
		if cfg.Metadata.Name == "" || cfg.APIVersion != APIVersion || cfg.Kind != Kind {
			t.Fatalf("accepted a config without name, apiVersion or kind: %+v", cfg)
		}
		_ = cfg.Walk(func(i *Instance) error {
			if i.Ref != "" {
				if target := cfg.Lookup(i.Ref); target == nil || target.Ref != "" || target == i {
					t.Fatalf("%s: accepted a bad ref %q", i.Path, i.Ref)
				}
			}
			if cfg.Lookup(i.Path) != i {
				t.Fatalf("Lookup(%q) does not find the instance", i.Path)
			}
			for _, key := range []string{"", "a", "a.b", "0", "[0]", "a[1].b", "[", "a]", "..", "[99999999999999999999]"} {
				_ = i.ConfigPos(key)
			}
			for k := range i.Config {
				if pos := i.ConfigPos(k); pos.Line == 0 {
					t.Fatalf("%s: ConfigPos(%q) has no line", i.Path, k)
				}
			}
			return nil
		})
	})
}
