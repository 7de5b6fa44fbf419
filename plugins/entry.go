package plugins

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jumpwire-dev/jumpwire/sdk/protocol"
	"github.com/jumpwire-dev/jumpwire/sdk/protocol/pluginv1"
	"golang.org/x/mod/semver"
)

// Entry is one plugin binary and what it provides.
type Entry struct {
	// Binary is the executable's absolute path: on the search path (or an
	// instance's `plugin:`), or for an installed entry its private copy.
	Binary string
	// Source is, for an entry returned by Install, the path Binary was
	// copied from; "" otherwise.
	Source string
	// SHA256 is the hex sha256 of the binary's content when it was described.
	SHA256 string
	// Info is what the binary answered when asked.
	Info *pluginv1.DescribeResponse
	// Python is set for a driver class the Python plugin host runs; Binary
	// is then the interpreter and SHA256 the hash of the class's installed
	// distribution.
	Python *Python
}

// Type returns the driver type the binary provides under name (or an alias).
func (e *Entry) Type(name string) *pluginv1.DriverType {
	for _, t := range e.Info.GetTypes() {
		if t.Name == name || slices.Contains(t.Aliases, name) {
			return t
		}
	}
	return nil
}

// Path is the binary a user knows: Source for an installed entry, else Binary.
func (e *Entry) Path() string {
	if e.Source != "" {
		return e.Source
	}
	return e.Binary
}

// Protocol is the plugin protocol version the binary speaks, "major.minor".
// The major version is the one the handshake agreed on (a binary with
// another is refused when it is described).
func (e *Entry) Protocol() string {
	return fmt.Sprintf("%d.%d", protocol.Version, e.Info.GetProtocolMinor())
}

// NewerProtocol reports whether the binary speaks a newer minor version of
// the plugin protocol than this host. It is accepted: minor versions only
// add, and the host uses what it knows.
func (e *Entry) NewerProtocol() bool { return e.Info.GetProtocolMinor() > protocol.Minor }

// Newer compares two binary versions: +1 when a is newer than b, -1 when
// older, 0 when neither. Versions compare as semantic versions (a leading
// "v" is optional: "1.2.0", "v1.10"); a version that parses is newer than
// one that does not (or is empty); two that do not parse are equal.
func Newer(a, b string) int {
	va, oka := canonical(a)
	vb, okb := canonical(b)
	switch {
	case oka && okb:
		return semver.Compare(va, vb)
	case oka:
		return 1
	case okb:
		return -1
	}
	return 0
}

// canonical returns version as semver wants it ("v" first), if it parses.
func canonical(version string) (string, bool) {
	v := strings.TrimSpace(version)
	if !strings.HasPrefix(v, "v") {
		v = "v" + v
	}
	return v, semver.IsValid(v)
}

// providers lists the entries providing name, most preferred first: newest
// version, then search order.
func providers(entries []*Entry, name string) []*Entry {
	var out []*Entry
	for _, e := range entries {
		if e.Type(name) != nil {
			out = append(out, e)
		}
	}
	slices.SortStableFunc(out, func(a, b *Entry) int { return -Newer(a.Info.GetVersion(), b.Info.GetVersion()) })
	return out
}

// Duplicate is a set of names (types or aliases) that more than one binary
// on the search path provides.
type Duplicate struct {
	// Names are the type names and aliases the binaries all provide, sorted.
	Names []string
	// Entries are the binaries, most preferred first: Entries[0] is what an
	// instance without pins gets.
	Entries []*Entry
}

// Duplicates lists the names that several binaries on the search path
// provide, grouping names provided by the same binaries. Lookup picks among
// them by version and pins; the list says which binary is shadowed.
func (c *Catalog) Duplicates(ctx context.Context) []Duplicate {
	entries, _ := c.Entries(ctx)
	return duplicates(entries)
}

func duplicates(entries []*Entry) []Duplicate {
	var names []string
	seen := map[string]bool{}
	for _, e := range entries {
		for _, t := range e.Info.GetTypes() {
			for _, n := range append([]string{t.Name}, t.Aliases...) {
				if !seen[n] {
					seen[n] = true
					names = append(names, n)
				}
			}
		}
	}
	slices.Sort(names)
	var out []Duplicate
	byKey := map[string]int{}
	for _, n := range names {
		ps := providers(entries, n)
		if len(ps) < 2 {
			continue
		}
		var key strings.Builder
		for _, e := range ps {
			key.WriteString(e.Binary + "\x00")
		}
		if i, ok := byKey[key.String()]; ok {
			out[i].Names = append(out[i].Names, n)
			continue
		}
		byKey[key.String()] = len(out)
		out = append(out, Duplicate{Names: []string{n}, Entries: ps})
	}
	return out
}
