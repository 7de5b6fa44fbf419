package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

// Under -o json an error is one JSON object on stderr, with a code a script can branch on.
func TestJSONErrors(t *testing.T) {
	sock := callLab().Start(t)
	tests := []struct {
		name string
		sock string
		args []string
		code string
		msg  string
	}{
		{"driver error", sock, []string{"echo", "fail"}, "unavailable", `echo.fail: unavailable: driver "echo" exited (signal: killed)`},
		{"unknown driver", sock, []string{"call", "nope", "on"}, "not_found", `no such driver "nope"; drivers: power, serial, dut, echo`},
		{"unknown method", sock, []string{"power", "nope"}, "not_found", `unknown method "nope" for power; methods: off, on, read`},
		{"usage", sock, []string{"call", "power"}, "usage", `call needs a driver PATH and a METHOD (PATH "." is the root)`},
		{"unreachable", filepath.Join(t.TempDir(), "none.sock"), []string{"tree"}, "unreachable", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := jw(t, tt.sock, append([]string{"-o", "json"}, tt.args...)...)
			if r.code != 1 || r.stdout != "" || strings.Count(r.stderr, "\n") != 1 {
				t.Fatalf("code %d, stdout %q, stderr %q; want 1 and one line on stderr", r.code, r.stdout, r.stderr)
			}
			var doc struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(r.stderr), &doc); err != nil {
				t.Fatalf("stderr %q: %v", r.stderr, err)
			}
			if doc.Error.Code != tt.code || (tt.msg != "" && doc.Error.Message != tt.msg) || doc.Error.Message == "" {
				t.Errorf("error %+v, want code %q message %q", doc.Error, tt.code, tt.msg)
			}
		})
	}
}
