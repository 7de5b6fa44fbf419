// Package compat is the compatibility suite: upstream Jumpstarter's own
// client (the `j` CLI and the Python API, at the versions pinned in
// python/requirements-compat.txt, installed by `make venv`) drives
// jumpwire exactly as a test engineer would, inside `jw shell` and over TCP
// with TLS and a passphrase in direct mode; the same tests (compat/tests,
// pytest) run against upstream's own exporter serving the same config, so
// they check the contract rather than jumpwire's habits.
package compat

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jumpwire-dev/jumpwire/internal/testbin"
)

// upstream also runs the suite against upstream's exporter (make
// compat-upstream): the check that the tests hold for the reference, not
// only for jumpwire. It takes as long again, so make test leaves it out.
var upstream = flag.Bool("upstream", false, "also run the suite against upstream Jumpstarter's exporter")

func TestMain(m *testing.M) {
	flag.Parse()
	testbin.Main(m)
}

// suite is what every run of the pytest suite shares.
type suite struct {
	root   string   // the repository
	venv   string   // .venv
	jw     string   // the jw binary, with its plugins beside it
	config string   // the exporter config, for both exporters
	env    []string // the environment of every client and exporter
	pytest []string // the pytest command line
}

// TestUpstreamClient runs the pytest suite against each exporter, one after
// the other (they share the demo board's console).
func TestUpstreamClient(t *testing.T) {
	s := setup(t)
	t.Run("jw shell", func(t *testing.T) {
		s.run(t, append([]string{s.jw, "shell", "-c", s.config, "--"}, s.pytest...), nil)
	})
	t.Run("jw run over TLS with a passphrase", func(t *testing.T) {
		ca, cert, key := certificates(t)
		addr := s.serve(t, []string{s.jw, "run", "-c", s.config, "--listen", "tcp://127.0.0.1:0",
			"--tls-cert", cert, "--tls-key", key, "--passphrase", "open sesame"}, "")
		s.direct(t, addr, ca)
	})
	t.Run("jw run with a self-signed certificate, trusted on first use", func(t *testing.T) {
		addr := s.serve(t, []string{s.jw, "run", "-c", s.config, "--listen", "tcp://127.0.0.1:0",
			"--tls-self-signed", "--passphrase", "open sesame"}, "")
		// Upstream's client cannot pin a fingerprint: save the certificate
		// the exporter shows and trust it as a root.
		cert := saveCertificate(t, addr)
		argv := append([]string{s.venvBin("jmp"), "shell", "--tls-grpc", addr, "--passphrase", "open sesame", "--"}, s.pytest...)
		s.run(t, append(argv, "-k", "tree or power or status"), []string{"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=" + cert})
	})
	if !*upstream {
		t.Log("not against upstream's exporter: go test ./compat -upstream (make compat-upstream) does that")
		return
	}
	t.Run("upstream jmp shell", func(t *testing.T) {
		s.run(t, append([]string{s.venvBin("jmp"), "shell", "--exporter-config", s.config, "--"}, s.pytest...), nil)
	})
	t.Run("upstream jmp run over TLS with a passphrase", func(t *testing.T) {
		ca, cert, key := certificates(t)
		port := freePort(t)
		addr := s.serve(t, []string{s.venvBin("jmp"), "run", "--exporter-config", s.config,
			"--tls-grpc-listener", "127.0.0.1:" + port, "--tls-cert", cert, "--tls-key", key,
			"--passphrase", "open sesame"}, "127.0.0.1:"+port)
		s.direct(t, addr, ca)
	})
}

// setup builds jw with the drivers the config uses, starts the demo board,
// makes the upload images and writes the config.
func setup(t *testing.T) *suite {
	t.Helper()
	s := &suite{root: testbin.Root(t), venv: needVenv(t, "jmp")}
	dir := layout(t, map[string]string{
		"plugins/jumpwire-driver-power":   "./drivers/power/cmd/jumpwire-driver-power",
		"plugins/jumpwire-driver-serial":  "./drivers/serial/cmd/jumpwire-driver-serial",
		"plugins/jumpwire-driver-network": "./drivers/network/cmd/jumpwire-driver-network",
		"plugins/jumpwire-driver-sink":    "./internal/testplugins/sink",
	})
	s.jw = filepath.Join(dir, "jw")

	tty := filepath.Join(dir, "tty")
	web := startBoard(t, testbin.Build(t, "./examples/board"), tty)
	_, port, _ := net.SplitHostPort(web)
	tmpl, err := os.ReadFile(filepath.Join(s.root, "compat", "testdata", "exporter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.NewReplacer("@TTY@", tty, "@PORT@", port).Replace(string(tmpl))
	s.config = filepath.Join(dir, "exporter.yaml")
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}

	home := filepath.Join(dir, "home") // upstream's tools may write their config there
	// The images are made once for the package's tests (compressing them
	// takes 15 s of CPU): testbin.Main's cache directory lives as long as
	// the run, and images.py leaves a complete set as it is.
	images := filepath.Join(dir, "images")
	if cache := os.Getenv("XDG_CACHE_HOME"); cache != "" {
		images = filepath.Join(cache, "compat-images")
	}
	s.env = append(os.Environ(),
		"PATH="+filepath.Join(s.venv, "bin")+string(os.PathListSeparator)+os.Getenv("PATH"),
		"XDG_CONFIG_HOME="+filepath.Join(home, "config"),
		"XDG_DATA_HOME="+filepath.Join(home, "data"),
		"PYTHONPATH="+filepath.Join(s.root, "compat"), // compat_sink, for upstream's exporter
		"PYTHONDONTWRITEBYTECODE=1",
		"COMPAT_IMAGES="+images,
		"COMPAT_BOARD_NAME=demo-board",
		"JUMPWIRE_PLUGIN_PATH=",
		"COLUMNS=200",
	)
	mk := exec.CommandContext(t.Context(), s.venvBin("python"), filepath.Join(s.root, "compat", "images.py"), images)
	mk.Env = s.env
	if out, err := mk.CombinedOutput(); err != nil {
		t.Fatalf("making the upload images: %v\n%s", err, out)
	}
	s.pytest = []string{s.venvBin("python"), "-m", "pytest", "-q", "-p", "no:cacheprovider",
		"--timeout", "120", filepath.Join(s.root, "compat", "tests")}
	return s
}

func (s *suite) venvBin(name string) string { return filepath.Join(s.venv, "bin", name) }

// needVenv returns the project's virtual environment with upstream's
// client, which must hold bin/tool. Without it the test is skipped, and
// fails under CI, where .ci/run makes it.
func needVenv(t *testing.T, tool string) string {
	t.Helper()
	venv := filepath.Join(testbin.Root(t), ".venv")
	if _, err := os.Stat(filepath.Join(venv, "bin", tool)); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("no upstream Jumpstarter client in %s: .ci/run makes it with make venv", venv)
		}
		t.Skipf("no upstream Jumpstarter client in %s: run make venv", venv)
	}
	return venv
}

// layout returns a fresh directory holding jw and the binaries of plugins
// (its relative path -> the package it is built from), as make build lays
// them out.
func layout(t *testing.T, plugins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for bin, pkg := range plugins {
		dst := filepath.Join(dir, bin)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Link(testbin.Build(t, pkg), dst); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(testbin.Build(t, "./cmd/jw"), filepath.Join(dir, "jw")); err != nil {
		t.Fatal(err)
	}
	return dir
}

// run runs argv to its end and fails the test with its output unless it
// exits 0.
func (s *suite) run(t *testing.T, argv []string, env []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append([]string(nil), s.env...), env...)
	cmd.Dir = s.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(argv, " "), err, out)
	}
	t.Logf("%s", lastLine(out))
}

// direct runs the suite through `jmp shell --tls-grpc` against the exporter
// at addr, trusting the certificate authority in the PEM file ca as
// upstream's client can: through gRPC's root certificates file.
func (s *suite) direct(t *testing.T, addr, ca string) {
	t.Helper()
	argv := append([]string{s.venvBin("jmp"), "shell", "--tls-grpc", addr, "--passphrase", "open sesame", "--"}, s.pytest...)
	s.run(t, argv, []string{"GRPC_DEFAULT_SSL_ROOTS_FILE_PATH=" + ca})
}

// serve starts an exporter (argv) in the background for the test's life
// and returns its address: addr when given (then it waits until something
// listens there), else the one it announces on its output.
func (s *suite) serve(t *testing.T, argv []string, addr string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = s.env
	cmd.Dir = s.root
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	var log strings.Builder
	announced := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			log.WriteString(line + "\n")
			if a := field(line, " serving on tcp://"); a != "" {
				select {
				case announced <- a:
				default:
				}
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	deadline := time.After(60 * time.Second)
	if addr == "" {
		select {
		case addr = <-announced:
		case <-exited:
			t.Fatalf("%s exited:\n%s", argv[0], log.String())
		case <-deadline:
			t.Fatalf("%s did not say where it serves within 60s", argv[0])
		}
	}
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return addr
		}
		select {
		case <-exited:
			t.Fatalf("%s exited:\n%s", argv[0], log.String())
		case <-deadline:
			t.Fatalf("nothing listens on %s after 60s", addr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// field returns the host:port after prefix in line ("" if absent).
func field(line, prefix string) string {
	_, rest, ok := strings.Cut(line, prefix)
	if !ok {
		return ""
	}
	return strings.Fields(rest)[0]
}

// startBoard starts the demo board with its console at tty and its HTTP
// service on a free port, and returns that service's address.
func startBoard(t *testing.T, bin, tty string) string {
	t.Helper()
	cmd := exec.Command(bin, "--tty", tty, "--http", "127.0.0.1:0")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	addr := make(chan string, 1)
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "http on "); ok {
				addr <- a
			}
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	select {
	case a := <-addr:
		return a
	case <-exited:
		t.Fatal("the demo board exited before serving")
	case <-time.After(30 * time.Second):
		t.Fatal("the demo board did not start within 30s")
	}
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that nothing listens on now, for
// an exporter that cannot be told to pick one.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// certificates makes a certificate authority and a server certificate it
// signed for 127.0.0.1, and returns the files: the authority's certificate,
// the server's certificate and its key (PEM).
func certificates(t *testing.T) (ca, cert, key string) {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "compat suite CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caTmpl, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server.key", "PRIVATE KEY", keyDER)
}

// saveCertificate saves the certificate the TLS server at addr shows, as
// PEM, as a user would with openssl s_client (after comparing its
// fingerprint with the one jw run printed).
func saveCertificate(t *testing.T, addr string) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}) //nolint:gosec // fetching the certificate to trust
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	p := filepath.Join(t.TempDir(), "exporter.pem")
	der := conn.ConnectionState().PeerCertificates[0].Raw
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// lastLine is the last non-empty line of out (pytest's summary).
func lastLine(out []byte) string {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}
