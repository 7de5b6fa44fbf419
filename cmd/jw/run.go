//go:build linux

package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/jumpwire-dev/jumpwire/exporter"
	"github.com/spf13/cobra"
)

// serveFlags are the flags shared by `jw run` and `jw shell`.
type serveFlags struct {
	config     string
	pluginDirs []string
	python     string
	logLevel   string
	logFormat  string
	maxCalls   int
	maxStreams int
	// per client (0: three quarters of the session's)
	maxClientCalls, maxClientStreams int
	metrics                          bool // keep Prometheus metrics (jw run --metrics-listen)

	log hclog.Logger // the exporter's logger, once started
}

func (f *serveFlags) register(cmd *cobra.Command, level string) {
	cmd.Flags().IntVar(&f.maxCalls, "max-calls", exporter.DefaultMaxCalls, "calls in flight a session allows at once (more fail with RESOURCE_EXHAUSTED)")
	cmd.Flags().IntVar(&f.maxStreams, "max-streams", exporter.DefaultMaxStreams, "byte streams a session allows open at once")
	cmd.Flags().IntVar(&f.maxClientCalls, "max-calls-per-client", 0, "calls in flight one client may hold (default: three quarters of --max-calls, so one client never takes all)")
	cmd.Flags().IntVar(&f.maxClientStreams, "max-streams-per-client", 0, "byte streams one client may hold open (default: three quarters of --max-streams)")
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "exporter config file (required)")
	cmd.Flags().StringArrayVar(&f.pluginDirs, "plugin-dir", nil, "directory of plugin binaries, searched first (repeatable)")
	cmd.Flags().StringVar(&f.python, "python", "", "Python interpreter or virtual environment for Python driver types (default: the config's python:, else python3 on PATH)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", level, "log level: trace, debug, info, warn, error")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	_ = cmd.MarkFlagRequired("config")
}

func (f *serveFlags) logger(cmd *cobra.Command) (hclog.Logger, error) {
	level := hclog.LevelFromString(f.logLevel)
	if level == hclog.NoLevel {
		return nil, fmt.Errorf("--log-level %q: expected trace, debug, info, warn or error", f.logLevel)
	}
	if f.logFormat != "text" && f.logFormat != "json" {
		return nil, fmt.Errorf("--log-format %q: expected text or json", f.logFormat)
	}
	// The exporter serves its log to LogStream clients from an intercept
	// logger that sees at least every info entry (go-plugin drops plugin lines
	// below the logger's level before relaying them); what reaches the
	// terminal is a sink at the level asked for.
	l := hclog.NewInterceptLogger(&hclog.LoggerOptions{
		Name: "jw", Level: min(level, hclog.Info), Output: io.Discard,
	})
	l.RegisterSink(pluginLineSink{hclog.NewSinkAdapter(&hclog.LoggerOptions{
		Level: level, Output: cmd.ErrOrStderr(), JSONFormat: f.logFormat == "json",
	})})
	return l, nil
}

// start loads the config and starts the exporter's first session.
func (f *serveFlags) start(ctx context.Context, cmd *cobra.Command) (*exporter.Exporter, error) {
	logger, err := f.logger(cmd)
	if err != nil {
		return nil, err
	}
	f.log = logger
	return exporter.New(ctx, exporter.Options{
		ConfigFile: f.config, PluginDirs: f.pluginDirs, Logger: logger, Python: f.python,
		MaxCalls: f.maxCalls, MaxStreams: f.maxStreams, Metrics: f.metrics,
		MaxCallsPerClient: f.maxClientCalls, MaxStreamsPerClient: f.maxClientStreams,
	})
}

// stop ends the session and stops every plugin, bounded in time.
func stop(e *exporter.Exporter) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.Close(ctx)
}

// defaultSocket is where `jw run` listens without --listen: a per-user
// runtime directory, mode 0700, and a file named for the exporter. The name
// is made safe for a file name first (see socketName): whatever the config
// says, the socket stays in that directory.
func defaultSocket(name string) string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("jumpwire-%d", os.Getuid()))
	} else {
		dir = filepath.Join(dir, "jumpwire")
	}
	return filepath.Join(dir, socketName(name)+".sock")
}

// socketName is an exporter's name as a file name: letters, digits, '.',
// '-' and '_' are kept, anything else (a path separator, a NUL) becomes
// '_', and a leading '.' becomes '_' too, so that "..", "../x" or "a/b"
// name a file in the socket directory, never a path out of it.
func socketName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		case c == '.' && i > 0:
		default:
			b[i] = '_'
		}
	}
	if len(b) == 0 {
		return "_"
	}
	return string(b)
}

// privateDir makes dir (the default socket's directory) if needed and
// checks that it is a directory of ours that only we can enter: in a shared
// /tmp, someone else could have made it first. It never changes the mode
// of a directory it did not make: one found open to others is an error.
func privateDir(dir string) error {
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o700); err == nil || !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	switch {
	case !fi.IsDir():
		return fmt.Errorf("socket directory %s is not a directory; remove it or pass --listen", dir)
	case ok && int(st.Uid) != os.Getuid():
		return fmt.Errorf("socket directory %s belongs to uid %d, not to you; remove it or pass --listen", dir, st.Uid)
	case fi.Mode().Perm() != 0o700:
		return fmt.Errorf("socket directory %s has mode %04o, which lets others reach the socket; chmod 700 it, or pass --listen", dir, fi.Mode().Perm())
	}
	return nil
}

// listenFlags are `jw run`'s flags for where and how it serves.
type listenFlags struct {
	listen         string
	tlsCert        string
	tlsKey         string
	selfSigned     bool
	insecure       bool
	passphrase     string
	passphraseFile string
	noAuth         bool
}

func (f *listenFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "where to serve: unix:///PATH or tcp://HOST:PORT (default: a per-user runtime socket)")
	fl.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate (PEM) for tcp://, with --tls-key")
	fl.StringVar(&f.tlsKey, "tls-key", "", "the TLS certificate's private key (PEM)")
	fl.BoolVar(&f.selfSigned, "tls-self-signed", false, "serve tcp:// with a self-signed certificate made at start (prints its fingerprint)")
	fl.BoolVar(&f.insecure, "insecure", false, "serve tcp:// in plaintext, without TLS")
	fl.StringVar(&f.passphrase, "passphrase", "", "passphrase clients must send on tcp:// (default $"+passphraseEnv+")")
	fl.StringVar(&f.passphraseFile, "passphrase-file", "", "file holding the passphrase (its first line)")
	fl.BoolVar(&f.noAuth, "no-auth", false, "serve tcp:// without a passphrase: anyone who can connect may use the exporter")
}

// serving is what the listen flags resolve to, checked before the exporter
// starts.
type serving struct {
	addr           exporter.Address
	cert           *tls.Certificate // nil: plaintext
	selfSigned     bool
	passphrase     string // "": no passphrase
	passphraseFile string
}

// resolve checks the listen flags and loads what they name. Each refusal is
// one line naming the flag to add.
func (f *listenFlags) resolve(cmd *cobra.Command) (*serving, error) {
	var s serving
	if f.listen != "" {
		a, err := exporter.ParseAddress(f.listen)
		var ae *exporter.AddressError
		if errors.As(err, &ae) {
			return nil, fmt.Errorf("--listen %q: %s", ae.Addr, ae.Reason)
		}
		s.addr = a
	}
	var given []string
	for _, name := range []string{"tls-cert", "tls-key", "tls-self-signed", "insecure", "passphrase", "passphrase-file", "no-auth"} {
		if cmd.Flags().Changed(name) {
			given = append(given, "--"+name)
		}
	}
	if s.addr.Network != "tcp" {
		if len(given) > 0 {
			verb := "applies"
			if len(given) > 1 {
				verb = "apply"
			}
			return nil, fmt.Errorf("%s %s to tcp:// listeners only (a unix socket is guarded by its file mode, 0600)", strings.Join(given, ", "), verb)
		}
		return &s, nil
	}

	switch {
	case f.tlsCert != "" && f.tlsKey == "":
		return nil, errors.New("--tls-cert needs --tls-key FILE (the certificate's private key)")
	case f.tlsKey != "" && f.tlsCert == "":
		return nil, errors.New("--tls-key needs --tls-cert FILE")
	case f.selfSigned && f.tlsCert != "":
		return nil, errors.New("--tls-self-signed and --tls-cert: choose one")
	case f.insecure && (f.selfSigned || f.tlsCert != ""):
		return nil, errors.New("--insecure (no TLS) and --tls-*: choose one")
	case !f.insecure && !f.selfSigned && f.tlsCert == "":
		return nil, fmt.Errorf("refusing to serve %s without TLS: add --tls-self-signed, or --tls-cert FILE --tls-key FILE; --insecure serves plaintext", s.addr)
	case f.tlsCert != "":
		cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
		if err != nil {
			return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		s.cert = &cert
	case f.selfSigned:
		cert, err := exporter.SelfSignedCertificate(s.addr)
		if err != nil {
			return nil, err
		}
		s.cert, s.selfSigned = &cert, true
	}

	flagSet := cmd.Flags().Changed("passphrase")
	switch {
	case flagSet && f.passphraseFile != "":
		return nil, errors.New("--passphrase and --passphrase-file: choose one")
	case f.noAuth && (flagSet || f.passphraseFile != ""):
		return nil, errors.New("--no-auth and a passphrase: choose one")
	case f.noAuth:
		return &s, nil
	case flagSet:
		s.passphrase = f.passphrase
		if s.passphrase == "" {
			return nil, errors.New("--passphrase is empty")
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: --passphrase VALUE shows the passphrase to every user of this machine (ps, /proc) for as long as jw runs; use --passphrase-file FILE or $%s\n", passphraseEnv)
	case f.passphraseFile != "":
		p, err := readPassphrase(f.passphraseFile)
		if err != nil {
			return nil, err
		}
		s.passphrase, s.passphraseFile = p, f.passphraseFile
	default:
		s.passphrase = os.Getenv(passphraseEnv)
	}
	if s.passphrase == "" {
		return nil, fmt.Errorf("refusing to serve %s without a passphrase: add --passphrase-file FILE or --passphrase VALUE, or set %s; --no-auth lets anyone who can connect use it",
			s.addr, passphraseEnv)
	}
	return &s, nil
}

// options are the exporter's serve options.
func (s *serving) options() []exporter.ServeOption {
	var opts []exporter.ServeOption
	if s.cert != nil {
		opts = append(opts, exporter.WithTLS(&tls.Config{
			Certificates: []tls.Certificate{*s.cert},
			MinVersion:   tls.VersionTLS12,
		}))
	}
	if s.passphrase != "" {
		opts = append(opts, exporter.WithPassphrase(s.passphrase))
	}
	return opts
}

// announce prints where the exporter serves and how clients reach it.
func (s *serving) announce(w io.Writer, name string, lis net.Listener) {
	if s.addr.Network != "tcp" {
		fmt.Fprintf(w, "exporter %q serving on %s\nclients: export JUMPSTARTER_HOST=%s\n",
			name, s.addr, lis.Addr().String())
		return
	}
	var how []string
	switch {
	case s.selfSigned:
		how = append(how, "TLS with a self-signed certificate")
	case s.cert != nil:
		how = append(how, "TLS")
	default:
		how = append(how, "plaintext")
	}
	if s.passphrase != "" {
		how = append(how, "passphrase required")
	} else {
		how = append(how, "no passphrase")
	}
	fmt.Fprintf(w, "exporter %q serving on tcp://%s (%s)\n", name, lis.Addr(), strings.Join(how, ", "))

	_, port, _ := net.SplitHostPort(lis.Addr().String())
	host := s.addr.Host
	if s.addr.Wildcard() {
		host, _ = os.Hostname()
	}
	line := []string{"jw", "--host", "tcp://" + net.JoinHostPort(host, port)}
	if s.cert != nil {
		fp := exporter.Fingerprint(s.cert.Certificate[0])
		fmt.Fprintf(w, "certificate fingerprint: %s\n", fp)
		if s.selfSigned {
			line = append(line, "--tls-fingerprint", fp)
		}
	} else {
		line = append(line, "--insecure")
	}
	if s.passphrase != "" {
		file := s.passphraseFile
		if file == "" {
			file = "FILE"
		}
		line = append(line, "--passphrase-file", file)
	}
	fmt.Fprintf(w, "clients: %s tree\n", strings.Join(line, " "))
}

func newRunCmd() *cobra.Command {
	var (
		f             serveFlags
		l             listenFlags
		watch         bool
		metricsListen string
	)
	cmd := &cobra.Command{
		Use:   "run -c FILE [--listen unix:///PATH | tcp://HOST:PORT]",
		Short: "Serve an exporter until interrupted",
		Long: `Serve the driver instances of an exporter config to clients.

Every driver instance runs in its own plugin process. The exporter checks the
whole config before serving (types, binaries, each driver's config) and exits
with one line per problem.

By default it serves on a unix socket (mode 0600, in a directory of mode 0700),
$XDG_RUNTIME_DIR/jumpwire/NAME.sock; point clients at it with JUMPSTARTER_HOST.

With --listen tcp://HOST:PORT it serves over the network (HOST empty or 0.0.0.0:
every interface; PORT 0: any free port). That takes TLS and a passphrase:
  TLS          --tls-cert FILE --tls-key FILE, or --tls-self-signed: a
               certificate made at start and kept in memory; jw prints its
               fingerprint, which clients pin with --tls-fingerprint
  passphrase   --passphrase-file FILE, --passphrase VALUE or $` + passphraseEnv + `;
               clients send it with --passphrase-file, --passphrase or
               $` + passphraseEnv + `
On a network you trust, --insecure serves plaintext and --no-auth serves
without a passphrase.

With endpoint and token in the config (controller mode), the exporter
registers with that Jumpstarter controller and serves each lease it assigns
through the controller's router; the local socket then serves the operator
(jw status shows the link, jw reload swaps drivers mid-lease).`,
		Example: `  jw run -c exporter.yaml
  jw run -c exporter.yaml --listen tcp://0.0.0.0:7777 --tls-self-signed --passphrase-file ~/.jw-passphrase
  jw --host tcp://lab-1:7777 --tls-fingerprint sha256:AB:CD:... --passphrase-file ~/.jw-passphrase power on`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// Every refusal before a plugin starts.
			s, err := l.resolve(cmd)
			if err != nil {
				return err
			}
			var metricsLis net.Listener
			if metricsListen != "" {
				if metricsLis, err = listenMetrics(metricsListen); err != nil {
					return err
				}
				defer metricsLis.Close()
				f.metrics = true
			}
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			e, err := f.start(ctx, cmd)
			if err != nil {
				return err
			}
			defer stop(e)
			if metricsLis != nil {
				fmt.Fprintf(cmd.OutOrStdout(), "metrics: http://%s/metrics\n", metricsLis.Addr())
				go serveMetrics(ctx, metricsLis, e.Metrics().Handler(), f.log)
			}
			if l.listen == "" {
				sock := defaultSocket(e.Name())
				if err := privateDir(filepath.Dir(sock)); err != nil {
					return err
				}
				s.addr = exporter.Address{Network: "unix", Path: sock}
			}
			endpoint := e.Config().Endpoint
			if endpoint != "" && s.addr.Network == "tcp" {
				return fmt.Errorf("%s has an endpoint (controller mode): clients reach the exporter through the controller's router; --listen tcp:// would let them bypass their lease (leave --listen out, or remove endpoint for direct mode)", f.config)
			}
			lis, err := exporter.Listen(s.addr.String())
			if err != nil {
				return err
			}
			if endpoint != "" {
				fmt.Fprintf(cmd.OutOrStdout(), "exporter %q joins the controller at %s; leases are served through its router\nlocal socket for jw status and jw reload: %s\n",
					e.Name(), endpoint, s.addr)
			} else {
				s.announce(cmd.OutOrStdout(), e.Name(), lis)
			}
			reloadOnSignals(ctx, e, watch, f.log)
			return e.Serve(ctx, lis, s.options()...)
		},
	}
	f.register(cmd, "info")
	cmd.Flags().StringVar(&metricsListen, "metrics-listen", "", "serve Prometheus metrics at http://HOST:PORT/metrics (PORT 0: any free port; see `jw top`)")
	cmd.Flags().BoolVar(&watch, "watch", false, "reload by itself when the config file or a plugin binary changes (also: SIGHUP, jw reload)")
	l.register(cmd)
	return cmd
}
