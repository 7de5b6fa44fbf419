package main

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"go/format"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"text/template"

	"github.com/spf13/cobra"
)

// sdkModule is the module a driver's go.mod requires for the SDK. It is a
// module of its own inside the jumpwire repository (folder sdk/), released
// with tags sdk/vX.Y.Z.
const sdkModule = "github.com/jumpwire-dev/jumpwire/sdk"

// driverBinaryPrefix is how plugin binaries are named (plugins.Prefix; the
// CLI does not import the catalog for one constant).
const driverBinaryPrefix = "jumpwire-driver-"

//go:embed templates/*.tmpl
var driverTemplates embed.FS

// scaffoldFiles maps each template to the file it becomes; "BINARY" in a
// path is the plugin binary's name.
var scaffoldFiles = []struct{ tmpl, path string }{
	{"go.mod.tmpl", "go.mod"},
	{"driver.go.tmpl", "driver.go"},
	{"driver_test.go.tmpl", "driver_test.go"},
	{"main.go.tmpl", "cmd/BINARY/main.go"},
	{"README.md.tmpl", "README.md"},
	{"gitignore.tmpl", ".gitignore"},
}

// scaffold is what the templates of `jw driver new` are filled with.
type scaffold struct {
	Name       string // the driver type operators write as `type:` ("acme-relay")
	Package    string // the Go package of the driver ("acmerelay")
	GoType     string // the Go type of the driver ("AcmeRelay")
	Binary     string // the plugin binary ("jumpwire-driver-acme-relay")
	Module     string // the new module's path
	GoVersion  string // its go directive
	SDKModule  string
	SDKVersion string // the SDK version it requires
	Replace    string // where a local checkout of the SDK is, "" for none
}

func newDriverCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "driver",
		Short: "Write driver plugins",
		Args:  cobra.NoArgs,
	}
	cmd.AddCommand(newDriverNewCmd())
	return cmd
}

func newDriverNewCmd() *cobra.Command {
	var dir, module, replace string
	cmd := &cobra.Command{
		Use:   "new NAME [--dir DIR] [--module PATH] [--sdk-replace PATH]",
		Short: "Create a Go module for a new driver plugin",
		Long: `Create a Go module for the driver type NAME, built against the jumpwire SDK:
a driver with a config, a unary and a streaming method and Reset, its tests
(sdktest, no exporter needed), the plugin binary jumpwire-driver-NAME, a
README and a .gitignore. NAME is what exporter configs write as "type:".

The module requires the SDK at this jw's version. When jw runs from a
jumpwire checkout (or --sdk-replace names one), go.mod also replaces the SDK
with that checkout, so the driver builds against the SDK you have.`,
		Example: `  jw driver new acme-relay
  jw driver new acme-relay --dir ./relay --module example.com/acme/relay-driver`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := newScaffold(args[0], module)
			if err != nil {
				return err
			}
			if dir == "" {
				dir = s.Name + "-driver"
			}
			if err := s.resolveSDK(dir, replace); err != nil {
				return err
			}
			written, err := s.write(dir)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "created %s: module %s, driver type %q\n", dir, s.Module, s.Name)
			for _, p := range written {
				fmt.Fprintf(out, "  %s\n", p)
			}
			fmt.Fprintf(out, "next:\n  cd %s\n  go mod tidy\n  go test ./...\n  go build -o %s ./cmd/%s\n",
				dir, s.Binary, s.Binary)
			fmt.Fprintf(out, "then use type: %s in an exporter config and run jw with --plugin-dir %s\n", s.Name, dir)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory to create (default NAME-driver)")
	cmd.Flags().StringVar(&module, "module", "", "module path of the new module (default example.com/NAME-driver)")
	cmd.Flags().StringVar(&replace, "sdk-replace", "", "build against the jumpwire checkout at PATH (a replace in go.mod)")
	return cmd
}

var driverNameRE = regexp.MustCompile(`^[a-z][a-z0-9]*(-[a-z0-9]+)*$`)

// newScaffold checks the driver's name and module path and derives the Go names.
func newScaffold(name, module string) (*scaffold, error) {
	if rest, ok := strings.CutPrefix(name, driverBinaryPrefix); ok && rest != "" {
		return nil, fmt.Errorf("invalid driver name %q: give the type name without the %s prefix (%s)", name, driverBinaryPrefix, rest)
	}
	if !driverNameRE.MatchString(name) || len(name) > 64 {
		return nil, fmt.Errorf("invalid driver name %q: use lowercase letters, digits and single dashes, starting with a letter, at most 64 characters (e.g. acme-relay)", name)
	}
	if module == "" {
		module = "example.com/" + name + "-driver"
	}
	if err := checkModulePath(module); err != nil {
		return nil, err
	}
	s := &scaffold{
		Name:      name,
		Package:   strings.ReplaceAll(name, "-", ""),
		Binary:    driverBinaryPrefix + name,
		Module:    module,
		SDKModule: sdkModule,
	}
	if token.IsKeyword(s.Package) || s.Package == "main" {
		s.Package += "driver"
	}
	for part := range strings.SplitSeq(name, "-") {
		s.GoType += strings.ToUpper(part[:1]) + part[1:]
	}
	switch s.GoType {
	case "Config", "Reading", "Type", "New": // the template's other names
		s.GoType += "Driver"
	}
	return s, nil
}

// checkModulePath rejects module paths go.mod cannot hold.
func checkModulePath(p string) error {
	bad := p == "" || strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") || strings.Contains(p, "//") ||
		strings.ContainsFunc(p, func(r rune) bool {
			return r <= ' ' || r > '~' || strings.ContainsRune(`"'\`+"`;:", r)
		})
	if bad {
		return fmt.Errorf("invalid --module %q: a module path is slash-separated, without spaces or quotes (e.g. example.com/acme/relay-driver)", p)
	}
	return nil
}

// resolveSDK decides which SDK the new module in dir builds against. It
// always requires the SDK by version: the version this jw was built with.
// When dir is inside a jumpwire checkout, or --sdk-replace names one, go.mod
// also replaces the SDK with that checkout's sdk/ folder, by a relative path
// so that the pair can move together.
func (s *scaffold) resolveSDK(dir, replace string) error {
	s.SDKVersion = releaseVersion(sdkModuleVersion())
	checkout := ""
	if replace != "" {
		root, err := sdkCheckout(replace)
		if err != nil {
			return fmt.Errorf("--sdk-replace %s: %w", replace, err)
		}
		checkout = root
	} else if abs, err := filepath.Abs(dir); err == nil {
		checkout = findCheckout(abs)
	}
	if checkout == "" {
		if s.SDKVersion == "" {
			return fmt.Errorf("cannot tell which jumpwire SDK the driver should require: this jw was built from a jumpwire checkout, not from a release, and %s is not inside one; "+
				"pass --sdk-replace PATH to a checkout, or use a jw installed with go install github.com/jumpwire-dev/jumpwire/cmd/jw@VERSION", dir)
		}
		s.GoVersion = goDirective(runtime.Version())
		return nil
	}
	if s.SDKVersion == "" {
		s.SDKVersion = "v0.0.0" // any version: the replace provides the code
	}
	rel, err := replacePath(dir, checkout)
	if err != nil {
		return err
	}
	s.Replace = rel
	goVer, _, err := readGoMod(filepath.Join(checkout, "go.mod"))
	if err != nil || goVer == "" {
		goVer = goDirective(runtime.Version())
	}
	s.GoVersion = goVer
	return nil
}

// sdkModuleVersion is the version of the SDK module this jw was built with:
// a tag's version for a released jw, "" for a build in a checkout (where the
// SDK is replaced by the checkout's own folder).
func sdkModuleVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, d := range bi.Deps {
		if d.Path == sdkModule && d.Replace == nil {
			return d.Version
		}
	}
	return ""
}

// releaseVersion returns v if a go.mod can require it, else "". Builds
// from a modified checkout ("+dirty") have versions no proxy serves.
func releaseVersion(v string) string {
	if !strings.HasPrefix(v, "v") || strings.Contains(v, "+") || strings.ContainsAny(v, " ()") {
		return ""
	}
	return v
}

// goDirective turns a toolchain version ("go1.26.8") into a go directive.
func goDirective(toolchain string) string {
	v, ok := strings.CutPrefix(toolchain, "go")
	if !ok || v == "" || !strings.ContainsRune(v, '.') || strings.ContainsAny(v, " -") {
		return "1.26"
	}
	return v
}

// sdkCheckout returns the absolute path of the SDK module in the jumpwire
// checkout at dir: dir/sdk, or dir itself when it is the SDK's folder.
func sdkCheckout(dir string) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	for _, cand := range []string{filepath.Join(abs, "sdk"), abs} {
		_, mod, err := readGoMod(filepath.Join(cand, "go.mod"))
		if err == nil && mod == sdkModule {
			return cand, nil
		}
	}
	_, mod, err := readGoMod(filepath.Join(abs, "go.mod"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("no go.mod there: expected the root of a jumpwire checkout")
	case err != nil:
		return "", err
	default:
		return "", fmt.Errorf("go.mod there is module %q, and it has no sdk/ folder with the module %s", mod, sdkModule)
	}
}

// findCheckout returns the SDK module of the jumpwire checkout containing
// dir, or "".
func findCheckout(dir string) string {
	for {
		if root, err := sdkCheckout(dir); err == nil {
			return root
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return ""
		}
		dir = parent
	}
}

// readGoMod reads the go directive and the module path of a go.mod file.
func readGoMod(path string) (goVersion, module string, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", "", err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "module":
			if m, err := strconv.Unquote(f[1]); err == nil {
				module = m
			} else {
				module = f[1]
			}
		case "go":
			goVersion = f[1]
		}
	}
	return goVersion, module, sc.Err()
}

// replacePath is how the new module in dir names the SDK's folder in its
// replace: always relative, so that no path of this machine ends up in a
// go.mod that may be shared.
func replacePath(dir, sdkDir string) (string, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(absDir, sdkDir)
	if err != nil {
		return "", fmt.Errorf("no relative path from %s to the SDK at %s: %w", dir, sdkDir, err)
	}
	return filepath.ToSlash(rel), nil
}

// render fills every template, gofmt-ing the Go files.
func (s *scaffold) render() (map[string][]byte, error) {
	tmpl, err := template.New("").Funcs(template.FuncMap{"modpath": modPath}).ParseFS(driverTemplates, "templates/*.tmpl")
	if err != nil {
		return nil, fmt.Errorf("driver new: templates: %w", err)
	}
	files := map[string][]byte{}
	for _, f := range scaffoldFiles {
		var buf bytes.Buffer
		if err := tmpl.ExecuteTemplate(&buf, f.tmpl, s); err != nil {
			return nil, fmt.Errorf("driver new: %s: %w", f.tmpl, err)
		}
		b := buf.Bytes()
		if strings.HasSuffix(f.path, ".go") {
			if b, err = format.Source(b); err != nil {
				return nil, fmt.Errorf("driver new: %s does not format: %w", f.tmpl, err)
			}
		}
		files[strings.ReplaceAll(f.path, "BINARY", s.Binary)] = b
	}
	return files, nil
}

// modPath quotes a path for go.mod when it needs quoting.
func modPath(p string) string {
	if strings.ContainsFunc(p, func(r rune) bool { return r <= ' ' || r == '"' || r == '\\' || r > '~' }) {
		return strconv.Quote(p)
	}
	return p
}

// write renders the module into dir, which must not exist or be empty, and
// returns the files written, in template order.
func (s *scaffold) write(dir string) ([]string, error) {
	files, err := s.render()
	if err != nil {
		return nil, err
	}
	switch ents, err := os.ReadDir(dir); {
	case err == nil && len(ents) > 0:
		return nil, fmt.Errorf("%s is not empty: refusing to write a driver module over it (choose another --dir)", dir)
	case err != nil && !errors.Is(err, fs.ErrNotExist):
		if fi, serr := os.Stat(dir); serr == nil && !fi.IsDir() {
			return nil, fmt.Errorf("%s exists and is not a directory (choose another --dir)", dir)
		}
		return nil, err
	}
	var written []string
	for _, f := range scaffoldFiles {
		p := strings.ReplaceAll(f.path, "BINARY", s.Binary)
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return nil, err
		}
		if err := os.WriteFile(dst, files[p], 0o644); err != nil {
			return nil, err
		}
		written = append(written, p)
	}
	return written, nil
}
