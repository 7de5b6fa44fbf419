package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/jumpwire-dev/jumpwire/client"
)

// globals holds the persistent flags shared by the client-side commands.
type globals struct {
	host    string
	output  string
	timeout time.Duration
	escape  string // --escape of jw console and the short form

	// How to reach an exporter served over TCP (see dialOptions).
	tlsCA          string
	tlsFingerprint string
	insecure       bool
	passphrase     string
	passphraseFile string
}

const (
	outputText = "text"
	outputJSON = "json"
)

// newRootCmd builds the jw command tree.
func newRootCmd() *cobra.Command {
	g := &globals{}
	var stream bool
	root := &cobra.Command{
		Use:   "jw [PATH...] [METHOD [ARG...]]",
		Short: "jumpwire: hardware-in-the-loop exporter and client",
		Long: `jw runs a jumpwire exporter and talks to one.

Without a command, the words name a driver and one of its methods:
  jw power on             call "on" on the driver "power"
  jw dut power read       a nested driver (also: jw dut.power read)
  jw serial set_dtr true  arguments as in "jw call"
  jw serial set_dtr value=true   or by name, as "jw tree" shows them
  jw serial connect       a byte stream: "jw console" on a terminal, else "jw pipe"
Run "jw tree" to see the drivers and their methods.`,
		Args:          cobra.ArbitraryArgs,
		SilenceErrors: true,
		SilenceUsage:  true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return cmd.Help()
			}
			return g.shortForm(cmd, args, stream)
		},
	}
	root.Flags().BoolVar(&stream, "stream", false, "call METHOD as a streaming method (results one per line)")
	root.Flags().StringVar(&g.escape, "escape", "", "for a byte stream on a terminal: the key that, pressed three times, leaves the console (^X or ctrl-X; default ^B, or $"+escapeEnv+")")
	pf := root.PersistentFlags()
	pf.StringVar(&g.host, "host", os.Getenv(client.HostEnv),
		"exporter address: unix:///path, a path, or tcp://HOST:PORT; default from "+client.HostEnv)
	pf.StringVar(&g.tlsCA, "tls-ca", "", "tcp://: trust the CA certificates in this PEM file (default: the system's)")
	pf.StringVar(&g.tlsFingerprint, "tls-fingerprint", "", `tcp://: accept exactly the certificate with this fingerprint ("sha256:AB:CD:..." as "jw run" prints it)`)
	pf.BoolVar(&g.insecure, "insecure", false, "tcp://: talk plaintext, without TLS")
	pf.StringVar(&g.passphrase, "passphrase", "", "tcp://: the exporter's passphrase (default $"+passphraseEnv+")")
	pf.StringVar(&g.passphraseFile, "passphrase-file", "", "tcp://: file holding the exporter's passphrase (its first line)")
	pf.StringVarP(&g.output, "output", "o", outputText, "output format: text or json")
	pf.DurationVar(&g.timeout, "timeout", 0, "time limit for each call to the exporter, e.g. 10s (0: none)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })

	// Subcommands: the one place they are added.
	root.AddCommand(
		newTreeCmd(g),
		newCallCmd(g),
		newStatusCmd(g),
		newEndSessionCmd(g),
		newConsoleCmd(g),
		newPipeCmd(g),
		newFlashCmd(g),
		newDumpCmd(g),
		newForwardCmd(g),
		newLogsCmd(g),
		newReloadCmd(g),
		// Exporter side (cmd/jw/run.go, cmd/jw/shell.go), added by the lead:
		newRunCmd(),
		newTopCmd(g),
		newShellCmd(),
		newDriverCmd(), // cmd/jw/driver.go: jw driver new
		newPluginsCmd(g),
	)

	markUsageErrors(root)
	addCompletions(root, g) // cmd/jw/complete.go
	return root
}

// markUsageErrors makes the argument checks of cmd and its subcommands return usage errors.
func markUsageErrors(cmd *cobra.Command) {
	if check := cmd.Args; check != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := check(c, args); err != nil {
				return usageError{err}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		markUsageErrors(sub)
	}
}

// checkOutput validates --output.
func (g *globals) checkOutput() error {
	switch g.output {
	case outputText, outputJSON:
		return nil
	}
	return usageError{fmt.Errorf("invalid --output %q (want text or json)", g.output)}
}

// callCtx bounds one call to the exporter by --timeout.
func (g *globals) callCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if g.timeout > 0 {
		return context.WithTimeout(ctx, g.timeout)
	}
	return context.WithCancel(ctx)
}

// connect checks --output, dials the exporter and reads its tree. The caller closes the client.
func (g *globals) connect(cmd *cobra.Command) (*client.Client, *client.Tree, error) {
	if err := g.checkOutput(); err != nil {
		return nil, nil, err
	}
	ctx, cancel := g.callCtx(cmd.Context())
	defer cancel()
	c, err := g.dialClient(ctx, cmd)
	if err != nil {
		return nil, nil, err
	}
	tree, err := c.Tree(ctx)
	if err != nil {
		_ = c.Close()
		return nil, nil, err
	}
	return c, tree, nil
}

// dialClient dials the exporter named by --host with the TLS and passphrase flags, and rewords
// the errors for the command line.
func (g *globals) dialClient(ctx context.Context, cmd *cobra.Command) (*client.Client, error) {
	opts, err := g.dialOptions(cmd)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, g.host, opts...)
	if err != nil {
		return nil, dialError(err)
	}
	return c, nil
}

// dialOptions turns the TCP flags into client options; the passphrase comes from --passphrase,
// --passphrase-file or the environment, in that order.
func (g *globals) dialOptions(cmd *cobra.Command) ([]client.Option, error) {
	passphraseSet := cmd.Flags().Changed("passphrase")
	switch {
	case g.insecure && (g.tlsCA != "" || g.tlsFingerprint != ""):
		return nil, usageError{errors.New("--insecure (no TLS) and --tls-ca or --tls-fingerprint: choose one")}
	case g.tlsCA != "" && g.tlsFingerprint != "":
		return nil, usageError{errors.New("--tls-ca and --tls-fingerprint: choose one (trust a CA, or pin one certificate)")}
	case passphraseSet && g.passphraseFile != "":
		return nil, usageError{errors.New("--passphrase and --passphrase-file: choose one")}
	}
	var opts []client.Option
	if g.tlsCA != "" {
		opts = append(opts, client.WithTLSCA(g.tlsCA))
	}
	if g.tlsFingerprint != "" {
		opts = append(opts, client.WithTLSFingerprint(g.tlsFingerprint))
	}
	if g.insecure {
		opts = append(opts, client.WithInsecure())
	}
	switch {
	case passphraseSet:
		opts = append(opts, client.WithPassphrase(g.passphrase))
	case g.passphraseFile != "":
		p, err := readPassphrase(g.passphraseFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithPassphrase(p))
	case os.Getenv(passphraseEnv) != "":
		opts = append(opts, client.WithPassphrase(os.Getenv(passphraseEnv)))
	}
	return opts, nil
}

// dialError rewords Dial's errors for the command line, naming the flag that helps.
func dialError(err error) error {
	var fp *client.FingerprintError
	switch {
	case errors.Is(err, client.ErrNoHost):
		return reworded{fmt.Sprintf(`no exporter: %s is not set (run inside "jw shell" or pass --host)`, client.HostEnv), err}
	case errors.Is(err, client.ErrNotTLS):
		return fmt.Errorf("%w; to talk plaintext to it, pass --insecure", err)
	case errors.Is(err, client.ErrTLSOnly):
		return fmt.Errorf("%w; drop --insecure and pass --tls-fingerprint or --tls-ca", err)
	case errors.As(err, &fp):
		return err
	case errors.Is(err, client.ErrCertificate):
		return fmt.Errorf("%w; trust its CA with --tls-ca FILE or pin it with --tls-fingerprint", err)
	}
	return err
}

// commandNames lists the root's commands for error messages.
func commandNames(root *cobra.Command) string {
	var names []string
	for _, c := range root.Commands() {
		if c.IsAvailableCommand() && c.Name() != "help" && c.Name() != "completion" {
			names = append(names, c.Name())
		}
	}
	return strings.Join(names, ", ")
}
