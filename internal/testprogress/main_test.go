package main

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestFilter(t *testing.T) {
	const pkg = "github.com/jumpwire-dev/jumpwire/host"
	ev := func(action, test, output string, elapsed float64) string {
		return `{"Action":"` + action + `","Package":"` + pkg + `","Test":"` + test + `","Output":` +
			strings.ReplaceAll(`"`+strings.ReplaceAll(output, "\n", `\n`)+`"`, "\t", `\t`) +
			`,"Elapsed":` + strconv.FormatFloat(elapsed, 'f', -1, 64) + `}`
	}
	for _, tc := range []struct {
		name       string
		in         []string
		want       string
		wantFailed bool
	}{{
		name: "a passing package prints its ok line and its slow tests",
		in: []string{
			ev("run", "TestQuick", "", 0), ev("output", "TestQuick", "=== RUN   TestQuick\n", 0),
			ev("output", "TestQuick", "--- PASS: TestQuick (0.01s)\n", 0), ev("pass", "TestQuick", "", 0.01),
			ev("run", "TestSlow", "", 0), ev("output", "TestSlow", "chatter\n", 0), ev("pass", "TestSlow", "", 2.5),
			ev("output", "", "PASS\n", 0), ev("output", "", "ok  \t"+pkg+"\t2.6s\n", 0), ev("pass", "", "", 2.6),
		},
		want: "    host TestSlow (2.5s)\nok  \t" + pkg + "\t2.6s\n",
	}, {
		name: "a failing subtest prints its test's output and fails",
		in: []string{
			ev("run", "TestX", "", 0), ev("output", "TestX", "=== RUN   TestX\n", 0),
			ev("run", "TestX/sub", "", 0), ev("output", "TestX/sub", "    x_test.go:9: boom\n", 0),
			ev("fail", "TestX/sub", "", 0.1), ev("output", "TestX", "--- FAIL: TestX (0.1s)\n", 0), ev("fail", "TestX", "", 0.1),
			ev("output", "", "FAIL\n", 0), ev("output", "", "FAIL\t"+pkg+"\t0.2s\n", 0), ev("fail", "", "", 0.2),
		},
		want:       "=== RUN   TestX\n    x_test.go:9: boom\n--- FAIL: TestX (0.1s)\nFAIL\nFAIL\t" + pkg + "\t0.2s\n",
		wantFailed: true,
	}, {
		name: "a test of parallel subtests is timed by the clock, as its Elapsed is 0",
		in: []string{
			`{"Time":"2026-01-01T00:00:00Z","Action":"run","Package":"` + pkg + `","Test":"TestP"}`,
			`{"Time":"2026-01-01T00:00:03Z","Action":"pass","Package":"` + pkg + `","Test":"TestP","Elapsed":0}`,
		},
		want: "    host TestP (3.0s)\n",
	}, {
		name: "a test binary that timed out prints the goroutines under the running test, which never ends",
		in: []string{
			ev("run", "TestWaits", "", 0), ev("output", "TestWaits", "=== RUN   TestWaits\n", 0),
			ev("run", "TestHangs", "", 0), ev("output", "TestHangs", "=== RUN   TestHangs\n", 0),
			ev("output", "TestHangs", "panic: test timed out after 3s\n", 0),
			ev("output", "TestHangs", "goroutine 8 [select]:\n", 0),
			ev("output", "", "FAIL\t"+pkg+"\t3.0s\n", 0), ev("fail", "", "", 3),
		},
		want: "--- " + pkg + " TestHangs did not end; its output:\n=== RUN   TestHangs\npanic: test timed out after 3s\ngoroutine 8 [select]:\n" +
			"FAIL\t" + pkg + "\t3.0s\n",
		wantFailed: true,
	}, {
		name: "the output of a test that never ended is printed at the end of the input",
		in: []string{
			ev("run", "TestCut", "", 0), ev("output", "TestCut", "=== RUN   TestCut\n", 0),
			ev("output", "TestCut", "signal: killed\n", 0),
		},
		want: "--- " + pkg + " TestCut did not end; its output:\n=== RUN   TestCut\nsignal: killed\n",
	}, {
		name:       "lines that are not events pass through",
		in:         []string{"# github.com/jumpwire-dev/jumpwire/host", "host/x.go:1:1: syntax error"},
		want:       "# github.com/jumpwire-dev/jumpwire/host\nhost/x.go:1:1: syntax error\n",
		wantFailed: false, // go test's own exit status says so (make runs with pipefail)
	}} {
		t.Run(tc.name, func(t *testing.T) {
			var out strings.Builder
			failed, err := filter(strings.NewReader(strings.Join(tc.in, "\n")+"\n"), &out, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			if out.String() != tc.want || failed != tc.wantFailed {
				t.Errorf("got failed=%v\n%s\nwant failed=%v\n%s", failed, out.String(), tc.wantFailed, tc.want)
			}
		})
	}
}
