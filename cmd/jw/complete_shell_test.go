package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// bashCompletion is the bash-completion package's library, which the script of "jw completion
// bash" needs (.ci/run installs it).
const bashCompletion = "/usr/share/bash-completion/bash_completion"

// jwOnPath is a directory holding only jw, for a shell's PATH.
func jwOnPath(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	if err := os.Link(testbin.Build(t, "./cmd/jw"), filepath.Join(bin, "jw")); err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestBashCompletion: <TAB> after "jw dut.power " in bash, with the script "jw completion bash"
// prints, offers the driver's methods.
func TestBashCompletion(t *testing.T) {
	if _, err := os.Stat(bashCompletion); err != nil {
		t.Skipf("bash-completion is not installed (%v); .ci/run installs it", err)
	}
	bin := jwOnPath(t)
	sock := paramsLab().Start(t)
	complete := func(line string) []string {
		t.Helper()
		words := strings.Fields(line)
		if strings.HasSuffix(line, " ") {
			words = append(words, "")
		}
		script := `source ` + bashCompletion + `
source <(jw completion bash)
COMP_LINE="$1"; COMP_POINT=${#COMP_LINE}; shift
COMP_WORDS=("$@"); COMP_CWORD=$(( $# - 1 ))
__start_jw jw "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}"
printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.CommandContext(t.Context(), "bash", append([]string{"-c", script, "bash", line}, words...)...)
		cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "JUMPSTARTER_HOST="+sock)
		out, err := cmd.Output() // stderr: compopt says it runs outside a real completion
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	if got := strings.Join(complete("jw dut.power "), " "); got != "off on read" {
		t.Errorf("jw dut.power <TAB>: %q, want the methods off on read", got)
	}
	if got := strings.Join(complete("jw relay on ch"), " "); got != "channel=" {
		t.Errorf("jw relay on ch<TAB>: %q, want channel=", got)
	}
}

// TestZshCompletion: the same in zsh, with the script "jw completion zsh" prints. Outside an
// interactive shell zsh's completion system does not run, so _describe, which would show the
// candidates, prints them instead.
func TestZshCompletion(t *testing.T) {
	zsh, err := exec.LookPath("zsh")
	if err != nil {
		t.Skipf("zsh is not installed (%v); .ci/run installs it", err)
	}
	bin := jwOnPath(t)
	sock := paramsLab().Start(t)
	script := `compdef() { :; }
_describe() { while [[ $1 == -* ]]; do shift; done; print -l -- "${(@P)2}"; }
source <(jw completion zsh)
words=("$@"); CURRENT=$#
_jw`
	cmd := exec.CommandContext(t.Context(), zsh, "-f", "-c", script, "zsh", "jw", "dut.power", "")
	cmd.Env = append(os.Environ(), "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "JUMPSTARTER_HOST="+sock)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("zsh: %v\n%s", err, out)
	}
	want := "off:Power off the device\non:Power on the device\nread:Stream power readings\n"
	if string(out) != want {
		t.Errorf("jw dut.power <TAB> in zsh:\n%s\nwant:\n%s", out, want)
	}
}
