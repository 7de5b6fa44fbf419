package sdk_test

import (
	"bufio"
	"bytes"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/jumpwire-dev/jumpwire"

// forbidden are the exporter's own packages. Driver binaries are built by
// third parties against the SDK; none of these may end up in them.
var forbidden = []string{
	module + "/host",
	module + "/session",
	module + "/exporter",
	module + "/plugins",
	module + "/client",
}

// TestImportBoundary checks that the SDK and the drivers (not their tests)
// import nothing of the exporter, directly or through another package.
func TestImportBoundary(t *testing.T) {
	roots := []string{module + "/sdk/...", module + "/drivers/..."}
	// -e: a package that does not build is go build's problem, not this test's.
	args := append([]string{"list", "-e", "-deps", "-f", "{{.ImportPath}}{{range .Imports}} {{.}}{{end}}"}, roots...)
	cmd := exec.Command("go", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	imports := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) > 0 {
			imports[f[0]] = f[1:]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if _, ok := imports[module+"/sdk"]; !ok {
		t.Fatalf("go list did not list %s/sdk; output:\n%s", module, out)
	}
	for _, v := range importViolations(imports, func(p string) bool {
		return strings.HasPrefix(p, module+"/sdk") || strings.HasPrefix(p, module+"/drivers/")
	}) {
		t.Error(v)
	}
}

// isForbidden reports whether pkg is, or is inside, a forbidden package.
func isForbidden(pkg string) bool {
	for _, f := range forbidden {
		if pkg == f || strings.HasPrefix(pkg, f+"/") {
			return true
		}
	}
	return false
}

// importViolations finds, for each root package (as isRoot says) that
// depends on a forbidden package, the chain of imports that leads there:
// "sdk/foo imports host (via sdk/foo -> internal/x -> host)".
func importViolations(imports map[string][]string, isRoot func(string) bool) []string {
	var roots []string
	for p := range imports {
		if isRoot(p) {
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
			if isForbidden(p) {
				chain := []string{short(p)}
				for q := from[p]; q != ""; q = from[q] {
					chain = append(chain, short(q))
				}
				slices.Reverse(chain)
				msg := short(root) + " imports " + short(p)
				if len(chain) > 2 {
					msg += " (via " + strings.Join(chain, " -> ") + ")"
				}
				out = append(out, msg+": the SDK and drivers must not depend on the exporter's packages")
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

func TestImportViolationsMessage(t *testing.T) {
	imports := map[string][]string{
		module + "/sdk":                 {"fmt", module + "/proto/plugin/v1"},
		module + "/drivers/power":       {module + "/sdk", module + "/internal/relay"},
		module + "/internal/relay":      {module + "/host"},
		module + "/host":                {module + "/sdk"},
		module + "/drivers/serial":      {module + "/client/console"},
		module + "/client/console":      {"io"},
		module + "/drivers/hostname":    {"os"},
		module + "/proto/plugin/v1":     {},
		module + "/drivers/power/cmd/x": {module + "/drivers/power"},
	}
	got := importViolations(imports, func(p string) bool {
		return p == module+"/sdk" || strings.HasPrefix(p, module+"/drivers/")
	})
	want := []string{
		"drivers/power imports host (via drivers/power -> internal/relay -> host): the SDK and drivers must not depend on the exporter's packages",
		"drivers/power/cmd/x imports host (via drivers/power/cmd/x -> drivers/power -> internal/relay -> host): the SDK and drivers must not depend on the exporter's packages",
		"drivers/serial imports client/console: the SDK and drivers must not depend on the exporter's packages",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(want, "\n\t"))
	}
}
