package sdk_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"slices"
	"strings"
	"testing"
)

// driverSurface is package sdk's exported surface: what a driver author
// uses, and nothing that only the exporter needs (the handshake, protocol
// versions, metadata keys, limits and server options are in package
// protocol, which both sides share). A name added here is a promise to
// every vendor; make it deliberately.
var driverSurface = []string{
	// Serving a plugin binary and describing its types.
	"Serve", "Plugin", "Type", "Constructor", "Factory", "Version",
	// A driver: its base, its methods, its optional capabilities.
	"Driver", "Base", "Method", "Export", "ExportStream", "Conn", "ErrClosed",
	"LocalFile",                         // a byte stream's client data handed over as a local file
	"ExportOption", "Params", "Default", // naming a method's parameters, with defaults
	"Resource", "ErrUploadIncomplete", // a client's upload, passed as an argument
	"Download", "ErrDownloadIncomplete", // where a method writes data for a client
	"Closer", "Resetter", "Describer", "Labeler", "Defaulter",
	"HandOverer", // a device that runs by itself survives a swap of its driver
	// Errors: their kinds, and what a client sees of them (Code, for tests).
	"ErrNotFound", "ErrUnsupported", "ErrInvalidArgument", "ErrUnavailable", "ErrIO", "ErrBusy",
	"Errorf", "Code", "InvalidConfig", "ValueError",
}

// TestExportedSurface checks that package sdk exports exactly driverSurface.
func TestExportedSurface(t *testing.T) {
	ents, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), e.Name(), nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			switch d := d.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil && d.Name.IsExported() {
					got = append(got, d.Name.Name)
				}
			case *ast.GenDecl:
				for _, s := range d.Specs {
					switch s := s.(type) {
					case *ast.TypeSpec:
						if s.Name.IsExported() {
							got = append(got, s.Name.Name)
						}
					case *ast.ValueSpec:
						for _, n := range s.Names {
							if n.IsExported() {
								got = append(got, n.Name)
							}
						}
					}
				}
			}
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(driverSurface))
	if !slices.Equal(got, want) {
		t.Errorf("package sdk exports\n\t%s\nwant\n\t%s\n(a new name must be one a driver author needs; add it to driverSurface)",
			strings.Join(got, " "), strings.Join(want, " "))
	}
}
