package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/spf13/cobra"
)

// cleanEnv is the environment for jw subprocesses: no exporter, no passphrase and no plugins but
// those next to jw.
func cleanEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "JUMPSTARTER_HOST=") && !strings.HasPrefix(kv, passphraseEnv+"=") {
			env = append(env, kv)
		}
	}
	return append(append(env, "JUMPWIRE_PLUGIN_PATH="), extra...)
}

// tcpExporter is `jw run` serving on tcp://127.0.0.1 (a free port).
type tcpExporter struct {
	host   string   // tcp://127.0.0.1:PORT, from the "serving on" line
	lines  []string // what it printed on stdout
	stderr *syncBuffer
}

// startTCP starts `jw run --listen tcp://127.0.0.1:0 ARGS...` and reads what it prints up to the
// "clients:" line. The process is stopped with SIGTERM (then killed) and reaped when the test ends.
func startTCP(t *testing.T, jw string, args ...string) *tcpExporter {
	t.Helper()
	return startTCPEnv(t, jw, cleanEnv(), args...)
}

// startTCPEnv is startTCP with the environment env.
func startTCPEnv(t *testing.T, jw string, env []string, args ...string) *tcpExporter {
	t.Helper()
	cmd := exec.Command(jw, append([]string{"run", "-c", writeE2EConfig(t), "--listen", "tcp://127.0.0.1:0"}, args...)...)
	cmd.Env = env
	x := &tcpExporter{stderr: &syncBuffer{}}
	stdout, w := io.Pipe()
	cmd.Stdout, cmd.Stderr = w, x.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		_ = w.Close()
	})
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout) // keep draining until jw exits
	}()
	deadline := time.After(30 * time.Second)
	serving := regexp.MustCompile(`^exporter "e2e" serving on (tcp://127\.0\.0\.1:[0-9]+) `)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("jw run exited before serving:\n%s\n%s", strings.Join(x.lines, "\n"), x.stderr)
			}
			x.lines = append(x.lines, l)
			if m := serving.FindStringSubmatch(l); m != nil {
				x.host = m[1]
			}
			if strings.HasPrefix(l, "clients: ") {
				if x.host == "" {
					t.Fatalf("no serving line in:\n%s", strings.Join(x.lines, "\n"))
				}
				go func() {
					for range lines {
					}
				}()
				return x
			}
		case <-deadline:
			t.Fatalf("timed out waiting for jw run to serve:\n%s\n%s", strings.Join(x.lines, "\n"), x.stderr)
		}
	}
}

// jwExec runs the jw binary as a user would and returns what they see.
func jwExec(t *testing.T, jw string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, jw, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	var ee *exec.ExitError
	if err := cmd.Run(); err != nil && !errors.As(err, &ee) {
		t.Fatalf("jw %s: %v", strings.Join(args, " "), err)
	}
	return result{stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()}
}

// TestTCPWithTLSAndPassphrase is the acceptance test of direct mode over TCP: `jw run` with a
// self-signed certificate and a passphrase, and `jw` reaching it with the printed fingerprint;
// a wrong passphrase, plaintext, or a wrong fingerprint each fail with one line.
func TestTCPWithTLSAndPassphrase(t *testing.T) {
	jw := jwBinary(t)
	passFile := filepath.Join(t.TempDir(), "passphrase")
	if err := os.WriteFile(passFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	x := startTCP(t, jw, "--tls-self-signed", "--passphrase-file", passFile)

	if len(x.lines) != 3 {
		t.Fatalf("jw run printed:\n%s\nwant 3 lines", strings.Join(x.lines, "\n"))
	}
	if want := `exporter "e2e" serving on ` + x.host + ` (TLS with a self-signed certificate, passphrase required)`; x.lines[0] != want {
		t.Errorf("line 1: %q\nwant %q", x.lines[0], want)
	}
	fp, ok := strings.CutPrefix(x.lines[1], "certificate fingerprint: ")
	if !ok || !regexp.MustCompile(`^sha256:[0-9A-F]{2}(:[0-9A-F]{2}){31}$`).MatchString(fp) {
		t.Fatalf("line 2: %q, want certificate fingerprint: sha256:AB:CD:...", x.lines[1])
	}
	if want := "clients: jw --host " + x.host + " --tls-fingerprint " + fp + " --passphrase-file " + passFile + " tree"; x.lines[2] != want {
		t.Errorf("line 3: %q\nwant %q", x.lines[2], want)
	}
	hostport := strings.TrimPrefix(x.host, "tcp://")
	other := "sha256:" + strings.Repeat("00:", 31) + "00"
	env := cleanEnv()

	t.Run("works", func(t *testing.T) {
		jwExec(t, jw, env, "--host", x.host, "--tls-fingerprint", fp, "--passphrase", "correct horse", "power", "on").
			check(t, "", "", 0)
		jwExec(t, jw, env, "--host", x.host, "--tls-fingerprint", fp, "--passphrase-file", passFile, "power", "state").
			check(t, "true\n", "", 0)
		jwExec(t, jw, cleanEnv(passphraseEnv+"=correct horse"), "--host", hostport, "--tls-fingerprint", fp, "power", "off").
			check(t, "", "", 0)
	})
	t.Run("wrong passphrase", func(t *testing.T) {
		jwExec(t, jw, env, "--host", x.host, "--tls-fingerprint", fp, "--passphrase", "correct", "power", "on").
			check(t, "", "jw: the exporter refused the passphrase (wrong or missing passphrase)\n", 1)
		waitFor(t, "the exporter logs the refusal with the caller's address", func() bool {
			return regexp.MustCompile(`\[WARN\] +jw\.auth: refused a call: wrong or missing passphrase: peer=127\.0\.0\.1:[0-9]+ `).
				MatchString(x.stderr.String())
		})
	})
	t.Run("no passphrase", func(t *testing.T) {
		jwExec(t, jw, env, "--host", x.host, "--tls-fingerprint", fp, "power", "on").
			check(t, "", "jw: the exporter refused the passphrase (wrong or missing passphrase)\n", 1)
	})
	t.Run("no TLS", func(t *testing.T) {
		jwExec(t, jw, env, "--host", x.host, "--insecure", "--passphrase", "correct horse", "power", "on").
			check(t, "", "jw: the exporter at "+hostport+" uses TLS, not plaintext; drop --insecure and pass --tls-fingerprint or --tls-ca\n", 1)
	})
	t.Run("wrong fingerprint", func(t *testing.T) {
		jwExec(t, jw, env, "--host", x.host, "--tls-fingerprint", other, "--passphrase", "correct horse", "power", "on").
			check(t, "", "jw: the exporter's certificate has fingerprint "+fp+", not the pinned "+other+"\n", 1)
	})
	t.Run("unknown CA", func(t *testing.T) {
		jwExec(t, jw, env, "--host", x.host, "--passphrase", "correct horse", "power", "on").
			check(t, "", "jw: the exporter's certificate at "+hostport+" is signed by an unknown authority; trust its CA with --tls-ca FILE or pin it with --tls-fingerprint\n", 1)
	})
	t.Run("nothing reached the driver", func(t *testing.T) {
		jwExec(t, jw, env, "--host", x.host, "--tls-fingerprint", fp, "--passphrase", "correct horse", "power", "state").
			check(t, "false\n", "", 0)
	})
}

// TestTCPPlaintext: `jw run --insecure --no-auth` serves plaintext to anyone; a TLS client is told so.
func TestTCPPlaintext(t *testing.T) {
	jw := jwBinary(t)
	x := startTCP(t, jw, "--insecure", "--no-auth")
	if want := []string{
		`exporter "e2e" serving on ` + x.host + ` (plaintext, no passphrase)`,
		"clients: jw --host " + x.host + " --insecure tree",
	}; strings.Join(x.lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("jw run printed:\n%s\nwant:\n%s", strings.Join(x.lines, "\n"), strings.Join(want, "\n"))
	}
	env := cleanEnv()
	jwExec(t, jw, env, "--host", x.host, "--insecure", "power", "on").check(t, "", "", 0)
	jwExec(t, jw, env, "--host", x.host, "--insecure", "reload").check(t, "", "jw: reload is only available on the exporter's local unix socket "+
		"(run jw reload on the exporter's machine with --host unix:///PATH, or send jw run SIGHUP)\n", 1)
	jwExec(t, jw, env, "--host", x.host, "power", "on").
		check(t, "", "jw: the exporter at "+strings.TrimPrefix(x.host, "tcp://")+
			" does not use TLS (it answered the TLS handshake in plaintext); to talk plaintext to it, pass --insecure\n", 1)
}

// TestRunRefuses: `jw run` refuses, in one line naming the flag to add, before starting anything.
func TestRunRefuses(t *testing.T) {
	t.Setenv(passphraseEnv, "")
	cfg := writeE2EConfig(t)
	sock := "unix://" + filepath.Join(t.TempDir(), "e.sock")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no TLS", []string{"--listen", "tcp://127.0.0.1:0", "--passphrase", "p"},
			"jw: refusing to serve tcp://127.0.0.1:0 without TLS: add --tls-self-signed, or --tls-cert FILE --tls-key FILE; --insecure serves plaintext\n"},
		{"no passphrase", []string{"--listen", "tcp://127.0.0.1:0", "--tls-self-signed"},
			"jw: refusing to serve tcp://127.0.0.1:0 without a passphrase: add --passphrase-file FILE or --passphrase VALUE, or set JUMPWIRE_PASSPHRASE; --no-auth lets anyone who can connect use it\n"},
		{"bad scheme", []string{"--listen", "http://127.0.0.1:80"},
			`jw: --listen "http://127.0.0.1:80": unknown scheme "http" (want unix:///PATH or tcp://HOST:PORT)` + "\n"},
		{"bad port", []string{"--listen", "tcp://127.0.0.1:http"},
			`jw: --listen "tcp://127.0.0.1:http": port "http" is not a number from 0 to 65535` + "\n"},
		{"port out of range", []string{"--listen", "tcp://127.0.0.1:65536"},
			`jw: --listen "tcp://127.0.0.1:65536": port "65536" is not a number from 0 to 65535` + "\n"},
		{"no port", []string{"--listen", "tcp://127.0.0.1"},
			`jw: --listen "tcp://127.0.0.1": no port (want tcp://HOST:PORT; port 0 picks a free one)` + "\n"},
		{"TLS on a unix socket", []string{"--listen", sock, "--tls-self-signed"},
			"jw: --tls-self-signed applies to tcp:// listeners only (a unix socket is guarded by its file mode, 0600)\n"},
		{"certificate without key", []string{"--listen", "tcp://127.0.0.1:0", "--tls-cert", "c.pem", "--no-auth"},
			"jw: --tls-cert needs --tls-key FILE (the certificate's private key)\n"},
		{"two passphrases", []string{"--listen", "tcp://127.0.0.1:0", "--tls-self-signed", "--passphrase", "p", "--passphrase-file", "f"},
			"jw: --passphrase and --passphrase-file: choose one\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			jwContext(ctx, t, "", append([]string{"run", "-c", cfg}, tt.args...)...).check(t, "", tt.want, 1)
		})
	}
}

// TestClientFlagConflicts: contradictory TLS flags are a usage error.
func TestClientFlagConflicts(t *testing.T) {
	jw(t, "", "--host", "tcp://127.0.0.1:1", "--tls-ca", "ca.pem", "--tls-fingerprint", "sha256:00", "power", "on").
		checkUsage(t, "jw: --tls-ca and --tls-fingerprint: choose one (trust a CA, or pin one certificate)", "jw [PATH...] [METHOD [ARG...]] [flags]")
	jw(t, "", "--host", "tcp://127.0.0.1:1", "--insecure", "--tls-fingerprint", "sha256:00", "tree").
		checkUsage(t, "jw: --insecure (no TLS) and --tls-ca or --tls-fingerprint: choose one", "jw tree [flags]")
}

// TestTCPCertificateFiles: `jw run --tls-cert --tls-key` serves that certificate; a client that
// trusts it with --tls-ca gets through, and the passphrase comes from the environment on both ends.
func TestTCPCertificateFiles(t *testing.T) {
	jw := jwBinary(t)
	cert, err := exporter.SelfSignedCertificate(exporter.Address{Network: "tcp", Host: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	key, err := x509.MarshalECPrivateKey(cert.PrivateKey.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	for file, block := range map[string]*pem.Block{
		certFile: {Type: "CERTIFICATE", Bytes: cert.Certificate[0]},
		keyFile:  {Type: "EC PRIVATE KEY", Bytes: key},
	} {
		if err := os.WriteFile(file, pem.EncodeToMemory(block), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	x := startTCPEnv(t, jw, cleanEnv(passphraseEnv+"=from the environment"), "--tls-cert", certFile, "--tls-key", keyFile)
	fp := exporter.Fingerprint(cert.Certificate[0])
	if want := []string{
		`exporter "e2e" serving on ` + x.host + ` (TLS, passphrase required)`,
		"certificate fingerprint: " + fp,
		"clients: jw --host " + x.host + " --passphrase-file FILE tree",
	}; strings.Join(x.lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("jw run printed:\n%s\nwant:\n%s", strings.Join(x.lines, "\n"), strings.Join(want, "\n"))
	}
	env := cleanEnv(passphraseEnv + "=from the environment")
	jwExec(t, jw, env, "--host", x.host, "--tls-ca", certFile, "power", "on").check(t, "", "", 0)
	jwExec(t, jw, env, "--host", x.host, "--tls-fingerprint", fp, "power", "state").check(t, "true\n", "", 0)
}

// TestPrivateDir: the default socket's directory is made 0700; one found
// 0700 is used; one found open to others is refused and left as it was.
func TestPrivateDir(t *testing.T) {
	made := filepath.Join(t.TempDir(), "jumpwire-made")
	found := filepath.Join(t.TempDir(), "jumpwire-found")
	if err := os.Mkdir(found, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, dir := range []string{made, found} {
		if err := privateDir(dir); err != nil {
			t.Fatal(err)
		}
		fi, err := os.Stat(dir)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o700 {
			t.Errorf("%s: mode %v, want 0700", dir, fi.Mode().Perm())
		}
	}
	open := filepath.Join(t.TempDir(), "jumpwire-open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(open, 0o755); err != nil { // past the umask
		t.Fatal(err)
	}
	err := privateDir(open)
	if err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("privateDir(a 0755 directory): %v, want a refusal saying what to do", err)
	}
	if fi, err := os.Stat(open); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("a directory privateDir did not make was changed: %v %v", fi.Mode(), err)
	}
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := privateDir(file); err == nil {
		t.Errorf("privateDir(%s) accepted a file", file)
	}
}

// TestDefaultSocketStaysInItsDirectory: whatever metadata.name says, the
// default socket is a file directly in the private directory.
func TestDefaultSocketStaysInItsDirectory(t *testing.T) {
	t.Setenv("XDG_RUNTIME_DIR", "/run/user/1000")
	for _, name := range []string{"lab-1", "../../x", "..", ".", "a/b", "/etc/passwd", "", "x\x00y", ".hidden", "ok.name"} {
		sock := defaultSocket(name)
		if filepath.Dir(sock) != "/run/user/1000/jumpwire" || strings.HasPrefix(filepath.Base(sock), ".") {
			t.Errorf("name %q: socket %s is not a plain file in /run/user/1000/jumpwire", name, sock)
		}
	}
	if got := defaultSocket("lab-1.a_b"); got != "/run/user/1000/jumpwire/lab-1.a_b.sock" {
		t.Errorf("a plain name changed: %s", got)
	}
}

// TestPassphraseFlagWarns: a passphrase given on the command line is
// visible in ps; jw run says so and names the alternatives.
func TestPassphraseFlagWarns(t *testing.T) {
	for _, tt := range []struct {
		args []string
		warn bool
	}{
		{[]string{"--listen", "tcp://127.0.0.1:0", "--tls-self-signed", "--passphrase", "p"}, true},
		{[]string{"--listen", "tcp://127.0.0.1:0", "--tls-self-signed", "--no-auth"}, false},
	} {
		var l listenFlags
		cmd := &cobra.Command{}
		l.register(cmd)
		var stderr bytes.Buffer
		cmd.SetErr(&stderr)
		if err := cmd.Flags().Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if _, err := l.resolve(cmd); err != nil {
			t.Fatal(err)
		}
		warned := strings.Contains(stderr.String(), "warning: --passphrase VALUE shows the passphrase to every user") &&
			strings.Contains(stderr.String(), "--passphrase-file FILE")
		if warned != tt.warn {
			t.Errorf("%v: stderr %q, want a warning: %v", tt.args, stderr.String(), tt.warn)
		}
	}
}
