package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

func TestDriverNewRejects(t *testing.T) {
	root := testbin.Root(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"upper case", []string{"Relay"}, `jw: invalid driver name "Relay": use lowercase letters, digits and single dashes, starting with a letter, at most 64 characters (e.g. acme-relay)`},
		{"underscore", []string{"acme_relay"}, `jw: invalid driver name "acme_relay": use lowercase letters`},
		{"leading digit", []string{"2relay"}, `jw: invalid driver name "2relay": use lowercase letters`},
		{"double dash", []string{"acme--relay"}, `jw: invalid driver name "acme--relay": use lowercase letters`},
		{"trailing dash", []string{"relay-"}, `jw: invalid driver name "relay-": use lowercase letters`},
		{"binary name", []string{"jumpwire-driver-relay"}, `jw: invalid driver name "jumpwire-driver-relay": give the type name without the jumpwire-driver- prefix (relay)`},
		{"module with a space", []string{"relay", "--module", "example.com/my relay"}, `jw: invalid --module "example.com/my relay": a module path is slash-separated`},
		{"replace not a checkout", []string{"relay", "--sdk-replace", t.TempDir()}, `jw: --sdk-replace `},
		{"replace another module", []string{"relay", "--sdk-replace", filepath.Join(root, "examples", "vendor-driver")}, `go.mod there is module "example.com/acme/relay-driver", and it has no sdk/ folder with the module github.com/jumpwire-dev/jumpwire/sdk`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "out")
			r := jw(t, "", append([]string{"driver", "new", "--dir", dir}, tt.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit code %d, stderr %q; want 1 and %q", r.code, r.stderr, tt.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("%s was created", dir)
			}
		})
	}
	t.Run("no name", func(t *testing.T) {
		jw(t, "", "driver", "new").checkUsage(t, "jw: accepts 1 arg(s), received 0",
			"jw driver new NAME [--dir DIR] [--module PATH] [--sdk-replace PATH] [flags]")
	})
}

func TestDriverNewRefusesNonEmptyDir(t *testing.T) {
	dir := t.TempDir()
	keep := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(keep, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	r := jw(t, "", "driver", "new", "relay", "--dir", dir, "--sdk-replace", testbin.Root(t))
	if r.code != 1 || !strings.Contains(r.stderr, dir+" is not empty: refusing to write") {
		t.Errorf("exit code %d, stderr %q; want a refusal", r.code, r.stderr)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("%s now holds %d entries, want only notes.txt", dir, len(ents))
	}

	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	r = jw(t, "", "driver", "new", "relay", "--dir", file, "--sdk-replace", testbin.Root(t))
	if r.code != 1 || !strings.Contains(r.stderr, file+" exists and is not a directory") {
		t.Errorf("exit code %d, stderr %q; want a refusal", r.code, r.stderr)
	}
}

// TestDriverNewDefaults: without --dir and --module the module is
// NAME-driver, example.com/NAME-driver; a dashed name gives a Go package
// and type without dashes; an empty directory is fine.
func TestDriverNewDefaults(t *testing.T) {
	t.Chdir(t.TempDir())
	if err := os.Mkdir("acme-relay-driver", 0o755); err != nil {
		t.Fatal(err)
	}
	r := jw(t, "", "driver", "new", "acme-relay", "--sdk-replace", testbin.Root(t))
	if r.code != 0 {
		t.Fatalf("exit code %d: %s", r.code, r.stderr)
	}
	if !strings.HasPrefix(r.stdout, `created acme-relay-driver: module example.com/acme-relay-driver, driver type "acme-relay"`) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	for file, want := range map[string][]string{
		"go.mod": {
			"module example.com/acme-relay-driver\n",
			"require github.com/jumpwire-dev/jumpwire/sdk v0.0.0\n",
			"replace github.com/jumpwire-dev/jumpwire/sdk => " + mustRel(t, "acme-relay-driver", filepath.Join(testbin.Root(t), "sdk")) + "\n",
		},
		"driver.go":                              {"package acmerelay\n", "type AcmeRelay struct {", `Name:        "acme-relay",`},
		"driver_test.go":                         {"package acmerelay_test\n"},
		"cmd/jumpwire-driver-acme-relay/main.go": {`acmerelay "example.com/acme-relay-driver"`, "acmerelay.Type"},
		".gitignore":                             {"/jumpwire-driver-acme-relay\n"},
		"README.md":                              {"type: acme-relay\n"},
	} {
		b, err := os.ReadFile(filepath.Join("acme-relay-driver", file))
		if err != nil {
			t.Error(err)
			continue
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				t.Errorf("%s does not contain %q:\n%s", file, w, b)
			}
		}
	}
}

func TestDriverNames(t *testing.T) {
	tests := []struct{ name, pkg, goType string }{
		{"relay", "relay", "Relay"},
		{"acme-relay", "acmerelay", "AcmeRelay"},
		{"usb-mux-2", "usbmux2", "UsbMux2"},
		{"type", "typedriver", "TypeDriver"},
		{"main", "maindriver", "Main"},
		{"config", "config", "ConfigDriver"},
	}
	for _, tt := range tests {
		s, err := newScaffold(tt.name, "")
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if s.Package != tt.pkg || s.GoType != tt.goType || s.Module != "example.com/"+tt.name+"-driver" {
			t.Errorf("%s: package %q, type %q, module %q; want %q, %q", tt.name, s.Package, s.GoType, s.Module, tt.pkg, tt.goType)
		}
		if _, err := s.render(); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

func TestReplacePath(t *testing.T) {
	tests := []struct{ dir, sdk, want string }{
		{"/src/jumpwire/examples/mine", "/src/jumpwire/sdk", "../../sdk"},
		{"/src/jumpwire/mine", "/src/jumpwire/sdk", "../sdk"},
		{"/home/me/mine", "/src/jumpwire/sdk", "../../../src/jumpwire/sdk"},
		{"/src/jumpwire-extra/mine", "/src/jumpwire/sdk", "../../jumpwire/sdk"},
	}
	for _, tt := range tests {
		if got, err := replacePath(tt.dir, tt.sdk); err != nil || got != tt.want {
			t.Errorf("replacePath(%q, %q) = %q, %v; want %q", tt.dir, tt.sdk, got, err, tt.want)
		}
	}
	for v, want := range map[string]string{
		"v1.2.0": "v1.2.0", "v0.0.0-20260101000000-abcdef123456": "v0.0.0-20260101000000-abcdef123456",
		"v0.0.0-20260101000000-abcdef123456+dirty": "", "(devel)": "", "": "",
	} {
		if got := releaseVersion(v); got != want {
			t.Errorf("releaseVersion(%q) = %q, want %q", v, got, want)
		}
	}
}

// TestDriverNewBuilds: the generated module, pointed at this checkout,
// tidies, passes its own tests and builds its plugin as generated, and the
// plugin answers --version.
func TestDriverNewBuilds(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and tests a generated module")
	}
	dir := filepath.Join(t.TempDir(), "gen")
	r := jw(t, "", "driver", "new", "bench-psu", "--dir", dir, "--module", "example.com/acme/bench-psu", "--sdk-replace", testbin.Root(t))
	if r.code != 0 {
		t.Fatalf("jw driver new: exit code %d: %s", r.code, r.stderr)
	}
	goCmd := func(env []string, args ...string) (string, error) {
		cmd := exec.CommandContext(t.Context(), "go", args...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), "GOWORK=off"), env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	// Offline first: with the replace, every dependency is one this module
	// already has in the module cache. Fall back to the module proxy when
	// the cache lacks something only tidy wants (test dependencies of
	// dependencies).
	if out, err := goCmd([]string{"GOPROXY=off"}, "mod", "tidy"); err != nil {
		t.Logf("go mod tidy offline failed, retrying with the module proxy:\n%s", out)
		if out, err := goCmd(nil, "mod", "tidy"); err != nil {
			t.Fatalf("go mod tidy: %v\n%s", err, out)
		}
	}
	test := []string{"test", "-count=1"}
	if raceEnabled() {
		test = append(test, "-race")
	}
	bin := filepath.Join(t.TempDir(), "jumpwire-driver-bench-psu")
	for _, args := range [][]string{
		{"vet", "./..."},
		append(test, "./..."),
		{"build", "./cmd/..."},
		{"build", "-o", bin, "-ldflags", "-X main.version=1.2.3", "./cmd/jumpwire-driver-bench-psu"},
	} {
		if out, err := goCmd(nil, args...); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "jumpwire-driver-bench-psu 1.2.3 (jumpwire sdk ") {
		t.Errorf("jumpwire-driver-bench-psu --version: %q, %v", out, err)
	}
	if out, err := exec.Command("gofmt", "-l", dir).Output(); err != nil || len(out) > 0 {
		t.Errorf("gofmt -l: %v\n%s", err, out)
	}
}

// mustRel is the relative path from dir (under the working directory) to target.
func mustRel(t *testing.T, dir, target string) string {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(abs, target)
	if err != nil {
		t.Fatal(err)
	}
	return filepath.ToSlash(rel)
}
