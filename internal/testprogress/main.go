// Command testprogress turns `go test -json` into what `go test` prints,
// with progress: the closing ok/FAIL line of each package, the name and
// time of each top-level test that took a while (so long packages are not
// silent), and the whole output of each test that failed or never ended (a
// test binary that timed out or crashed prints its goroutines under the
// tests that were running, which get no event of their own). It exits 1 when
// anything failed, so `go test -json ./... | testprogress` fails as `go
// test` would.
//
//	go test -json ./... | go run ./internal/testprogress [-slow 1s]
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Time    time.Time
	Action  string
	Package string
	Test    string
	Elapsed float64
	Output  string
}

func main() {
	slow := flag.Duration("slow", time.Second, "name the top-level tests that take at least this long")
	flag.Parse()
	failed, err := filter(os.Stdin, os.Stdout, *slow)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testprogress:", err)
		os.Exit(2)
	}
	if failed {
		os.Exit(1)
	}
}

// filter copies r's events to w as described above; it reports whether a
// test or package failed.
func filter(r io.Reader, w io.Writer, slow time.Duration) (failed bool, err error) {
	outputs := map[string]*strings.Builder{} // by package and top-level test, until it ends
	started := map[string]time.Time{}        // by package and top-level test
	in := bufio.NewScanner(r)
	in.Buffer(make([]byte, 64<<10), 16<<20)
	for in.Scan() {
		line := in.Bytes()
		var e event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &e) != nil {
			fmt.Fprintf(w, "%s\n", line) // not an event: a build error, vet, a crash
			continue
		}
		top, _, sub := strings.Cut(e.Test, "/")
		key := e.Package + " " + top
		switch {
		case e.Action == "build-output":
			fmt.Fprint(w, e.Output)
		case e.Test == "" && e.Action == "output":
			// The package's own lines: its closing ok/FAIL, a panic, a
			// leak report. Test bodies print under their test.
			if strings.HasPrefix(e.Output, "FAIL") {
				unfinished(w, outputs, e.Package+" ")
			}
			if !strings.HasPrefix(e.Output, "=== ") && e.Output != "PASS\n" {
				fmt.Fprint(w, e.Output)
			}
		case e.Test == "":
			failed = failed || e.Action == "fail" // start, pass, skip: nothing to say
		case e.Action == "output":
			// A test's lines, its subtests' with them, kept until it ends.
			b, ok := outputs[key]
			if !ok {
				b = &strings.Builder{}
				outputs[key] = b
			}
			b.WriteString(e.Output)
		case sub:
			if e.Action == "fail" {
				failed = true
			}
		case e.Action == "run":
			started[key] = e.Time
		case e.Action == "pass" || e.Action == "skip":
			delete(outputs, key)
			// A test whose subtests are parallel reports an Elapsed of 0:
			// its wall time is from its start to its end.
			took := max(e.Elapsed, e.Time.Sub(started[key]).Seconds())
			if started[key].IsZero() || e.Time.IsZero() {
				took = e.Elapsed
			}
			delete(started, key)
			if e.Action == "pass" && took >= slow.Seconds() {
				fmt.Fprintf(w, "    %s %s (%.1fs)\n", shortPackage(e.Package), e.Test, took)
			}
		case e.Action == "fail":
			failed = true
			if b := outputs[key]; b != nil {
				fmt.Fprint(w, b.String())
			}
			delete(outputs, key)
			delete(started, key)
		}
	}
	unfinished(w, outputs, "")
	return failed, in.Err()
}

// unfinished prints and forgets the output of the tests whose key starts
// with prefix and that never ended, when they said more than that they ran.
func unfinished(w io.Writer, outputs map[string]*strings.Builder, prefix string) {
	keys := make([]string, 0, len(outputs))
	for k := range outputs {
		if strings.HasPrefix(k, prefix) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		text := outputs[k].String()
		delete(outputs, k)
		for line := range strings.Lines(text) {
			if !strings.HasPrefix(line, "=== ") {
				fmt.Fprintf(w, "--- %s did not end; its output:\n%s", k, text)
				break
			}
		}
	}
}

// shortPackage drops the module path, which every line would repeat.
func shortPackage(p string) string {
	if i := strings.Index(p, "/jumpwire/"); i >= 0 {
		return p[i+len("/jumpwire/"):]
	}
	return p
}
