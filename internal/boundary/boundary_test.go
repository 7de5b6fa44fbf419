// Package boundary holds the tests that guard jumpwire's import boundaries
// (DESIGN.md, "The house"): the process boundary between the exporter and
// its drivers is crossed only by the SDK's protocol package.
package boundary

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/jumpwire-dev/jumpwire"

// A rule forbids packages matching from from depending on packages matching to.
type rule struct {
	from, to func(pkg string) bool
	why      string
}

func under(prefixes ...string) func(string) bool {
	return func(p string) bool {
		for _, pre := range prefixes {
			if p == module+"/"+pre || strings.HasPrefix(p, module+"/"+pre+"/") {
				return true
			}
		}
		return false
	}
}

// driverFacing are the SDK's packages that only drivers import.
func driverFacing(p string) bool {
	return p == module+"/sdk" || under("sdk/sdktest", "sdk/internal")(p)
}

var rules = []rule{
	{
		from: under("sdk", "drivers"),
		to: func(p string) bool {
			return strings.HasPrefix(p, module+"/") && !under("sdk", "drivers")(p)
		},
		why: "the SDK and drivers must not depend on the exporter's packages",
	},
	{
		from: under("host", "session", "exporter", "plugins", "client", "cmd"),
		to:   driverFacing,
		why:  "the exporter side shares only the SDK's protocol package with drivers",
	},
}

// goList returns, for each package that go list reports from dir, its imports.
func goList(t *testing.T, dir string, patterns ...string) map[string][]string {
	t.Helper()
	args := append([]string{"list", "-e", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, patterns...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list in %s: %v\n%s", dir, err, stderr.Bytes())
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return imports
}

// TestImportBoundary checks the rules over the root module's packages and
// the SDK module's (not their tests).
func TestImportBoundary(t *testing.T) {
	imports := goList(t, "../..", "./...")
	for p, deps := range goList(t, "../../sdk", "./...") {
		imports[p] = deps
	}
	for _, must := range []string{module + "/sdk", module + "/host", module + "/sdk/protocol"} {
		if _, ok := imports[must]; !ok {
			t.Fatalf("go list did not list %s", must)
		}
	}
	for _, r := range rules {
		for _, v := range violations(imports, r) {
			t.Error(v)
		}
	}
}

// cliMayImport are the root module's packages that cmd/jw may import
// directly (DESIGN.md: cmd -> exporter, client): the exporter, with its
// config, for the exporter-side commands, the client library for the
// client side, and the generated API both speak. What the exporter-side
// commands need of host, plugins and session, the exporter offers.
var cliMayImport = under("exporter", "client", "proto")

// directViolations lists the packages of the root module that pkg imports
// directly and allowed does not admit.
func directViolations(imports map[string][]string, pkg string, allowed func(string) bool) []string {
	var out []string
	for _, p := range imports[pkg] {
		if (p == module || strings.HasPrefix(p, module+"/")) && !allowed(p) {
			out = append(out, strings.TrimPrefix(pkg, module+"/")+" imports "+strings.TrimPrefix(p, module+"/")+
				": the CLI imports only exporter and client of the root module")
		}
	}
	slices.Sort(out)
	return out
}

// TestCLIImports checks that cmd/jw imports, of the root module, only the
// exporter and the client (and the generated API).
func TestCLIImports(t *testing.T) {
	imports := goList(t, "../..", "./cmd/jw")
	if _, ok := imports[module+"/cmd/jw"]; !ok {
		t.Fatalf("go list did not list %s/cmd/jw", module)
	}
	for _, v := range directViolations(imports, module+"/cmd/jw", cliMayImport) {
		t.Error(v)
	}
}

func TestCLIImportsMessage(t *testing.T) {
	imports := map[string][]string{
		module + "/cmd/jw": {"fmt", module + "/exporter", module + "/exporter/config", module + "/client",
			module + "/proto/admin/v1", module + "/session", module + "/sdk/protocol", module + "/clientele"},
	}
	got := directViolations(imports, module+"/cmd/jw", cliMayImport)
	want := []string{
		"cmd/jw imports clientele: the CLI imports only exporter and client of the root module",
		"cmd/jw imports sdk/protocol: the CLI imports only exporter and client of the root module",
		"cmd/jw imports session: the CLI imports only exporter and client of the root module",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}

// TestSDKModuleAlone checks that the SDK is a module of its own that needs
// nothing of the root module: a vendor's go.mod requires the SDK only.
func TestSDKModuleAlone(t *testing.T) {
	cmd := exec.Command("go", "list", "-m", "all")
	cmd.Dir = "../../sdk"
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go list -m all in sdk: %v\n%s", err, out)
	}
	mods := strings.Fields(string(out))
	if len(mods) == 0 || mods[0] != module+"/sdk" {
		t.Fatalf("sdk/go.mod is not the module %s/sdk: %q", module, out)
	}
	for _, m := range mods {
		if m == module {
			t.Errorf("the SDK module requires the root module %s", module)
		}
	}
}

// violations finds, for each package that r.from matches and that depends
// on a package r.to matches, the chain of imports that leads there:
// "sdk/foo imports host (via sdk/foo -> internal/x -> host)".
func violations(imports map[string][]string, r rule) []string {
	var roots []string
	for p := range imports {
		if r.from(p) {
			roots = append(roots, p)
		}
	}
	slices.Sort(roots)
	short := func(p string) string { return strings.TrimPrefix(p, module+"/") }
	var out []string
	for _, root := range roots {
		// Breadth first, so the chain reported is a shortest one.
		from := map[string]string{root: ""}
		queue := []string{root}
		for len(queue) > 0 {
			p := queue[0]
			queue = queue[1:]
			if p != root && r.to(p) {
				chain := []string{short(p)}
				for q := from[p]; q != ""; q = from[q] {
					chain = append(chain, short(q))
				}
				slices.Reverse(chain)
				msg := short(root) + " imports " + short(p)
				if len(chain) > 2 {
					msg += " (via " + strings.Join(chain, " -> ") + ")"
				}
				out = append(out, msg+": "+r.why)
				break
			}
			for _, q := range imports[p] {
				if _, seen := from[q]; !seen {
					from[q] = p
					queue = append(queue, q)
				}
			}
		}
	}
	return out
}

func TestViolationsMessage(t *testing.T) {
	imports := map[string][]string{
		module + "/sdk":                 {"fmt", module + "/sdk/protocol"},
		module + "/sdk/protocol":        {},
		module + "/drivers/power":       {module + "/sdk", module + "/internal/relay"},
		module + "/internal/relay":      {module + "/host"},
		module + "/host":                {module + "/sdk/protocol"},
		module + "/drivers/serial":      {module + "/client/console"},
		module + "/client/console":      {"io"},
		module + "/drivers/hostname":    {"os"},
		module + "/drivers/power/cmd/x": {module + "/drivers/power"},
		module + "/session":             {module + "/host", module + "/sdk/sdktest"},
		module + "/sdk/sdktest":         {module + "/sdk"},
	}
	var got []string
	for _, r := range rules {
		got = append(got, violations(imports, r)...)
	}
	want := []string{
		"drivers/power imports internal/relay: the SDK and drivers must not depend on the exporter's packages",
		"drivers/power/cmd/x imports internal/relay (via drivers/power/cmd/x -> drivers/power -> internal/relay): the SDK and drivers must not depend on the exporter's packages",
		"drivers/serial imports client/console: the SDK and drivers must not depend on the exporter's packages",
		"session imports sdk/sdktest: the exporter side shares only the SDK's protocol package with drivers",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
