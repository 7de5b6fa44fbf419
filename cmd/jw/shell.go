//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/jumpwire-dev/jumpwire/exporter"
	jumpstarterv1 "github.com/jumpwire-dev/jumpwire/proto/jumpstarter/v1"
	"github.com/spf13/cobra"
)

func newShellCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "shell -c FILE [-- CMD [ARG...]]",
		Short: "Run a local exporter and a shell (or one command) connected to it",
		Long: `Start a local exporter on a private socket and run $SHELL with
JUMPSTARTER_HOST set to its socket path, JMP_DRIVERS_ALLOW=UNSAFE and jw's
own directory first on PATH, as upstream Jumpstarter's shell sets them, so
jw commands and Jumpstarter's clients (j, the Python API) inside that shell
talk to it. With -- CMD, run that command instead and exit
with its status. The exporter and every plugin stop when the shell exits.`,
		Example: `  jw shell -c examples/exporter.yaml
  jw shell -c examples/exporter.yaml -- jw power on`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cmd.ArgsLenAtDash() > 0 {
				return fmt.Errorf("unexpected argument %q before --; usage: %s", args[0], cmd.UseLine())
			}
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			e, err := f.start(ctx, cmd)
			if err != nil {
				return err
			}
			defer stop(e)
			dir, err := os.MkdirTemp("", "jumpwire-shell-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			sock := filepath.Join(dir, "exporter.sock")
			lis, err := exporter.Listen("unix://" + sock)
			if err != nil {
				return err
			}
			served := make(chan error, 1)
			go func() { served <- e.Serve(ctx, lis) }()
			// Like a lease: the shell starts once the before-lease hook is over.
			st, err := e.WaitReady(ctx)
			if err != nil {
				return err
			}
			if st.GetMessage() != "" && st.Status != jumpstarterv1.ExporterStatus_EXPORTER_STATUS_LEASE_READY {
				fmt.Fprintf(cmd.ErrOrStderr(), "jw: exporter is %s: %s\n",
					strings.TrimPrefix(st.Status.String(), "EXPORTER_STATUS_"), st.GetMessage())
			}

			if len(args) == 0 {
				sh := os.Getenv("SHELL")
				if sh == "" {
					sh = "/bin/sh"
				}
				args = []string{sh}
				if m := e.Config().Motd; m != "" {
					fmt.Fprintln(cmd.ErrOrStderr(), m)
				}
			}
			child := exec.CommandContext(ctx, args[0], args[1:]...)
			child.Stdin, child.Stdout, child.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
			child.Env = exporter.ClientEnv(sock)
			// The child owns the terminal: Ctrl-C is for it, not for us.
			signal.Ignore(os.Interrupt, syscall.SIGQUIT)
			defer signal.Reset(os.Interrupt, syscall.SIGQUIT)
			err = child.Run()
			cancel()
			<-served
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return &exitError{code: ee.ExitCode()}
			}
			if err != nil {
				return fmt.Errorf("run %s: %w", args[0], err)
			}
			return nil
		},
	}
	f.register(cmd, "warn")
	return cmd
}
