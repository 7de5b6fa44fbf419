package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
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
	logLevel   string
	logFormat  string
}

func (f *serveFlags) register(cmd *cobra.Command, level string) {
	cmd.Flags().StringVarP(&f.config, "config", "c", "", "exporter config file (required)")
	cmd.Flags().StringArrayVar(&f.pluginDirs, "plugin-dir", nil, "directory of plugin binaries, searched first (repeatable)")
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
	l.RegisterSink(hclog.NewSinkAdapter(&hclog.LoggerOptions{
		Level: level, Output: cmd.ErrOrStderr(), JSONFormat: f.logFormat == "json",
	}))
	return l, nil
}

// start loads the config and starts the exporter's first session.
func (f *serveFlags) start(ctx context.Context, cmd *cobra.Command) (*exporter.Exporter, error) {
	logger, err := f.logger(cmd)
	if err != nil {
		return nil, err
	}
	return exporter.New(ctx, exporter.Options{ConfigFile: f.config, PluginDirs: f.pluginDirs, Logger: logger})
}

// stop ends the session and stops every plugin, bounded in time.
func stop(e *exporter.Exporter) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = e.Close(ctx)
}

// defaultSocket is where `jw run` listens without --listen: a per-user
// runtime directory, mode 0700.
func defaultSocket(name string) string {
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("jumpwire-%d", os.Getuid()))
	} else {
		dir = filepath.Join(dir, "jumpwire")
	}
	return filepath.Join(dir, name+".sock")
}

func newRunCmd() *cobra.Command {
	var (
		f      serveFlags
		listen string
	)
	cmd := &cobra.Command{
		Use:   "run -c FILE [--listen unix:///PATH]",
		Short: "Serve an exporter until interrupted",
		Long: `Serve the driver instances of an exporter config to clients.

Every driver instance runs in its own plugin process. The exporter checks the
whole config before serving (types, binaries, each driver's config) and exits
with one line per problem. It serves on a unix socket (mode 0600), by default
$XDG_RUNTIME_DIR/jumpwire/NAME.sock; point clients at it with JUMPSTARTER_HOST.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer cancel()
			e, err := f.start(ctx, cmd)
			if err != nil {
				return err
			}
			defer stop(e)
			if listen == "" {
				listen = "unix://" + defaultSocket(e.Name())
			}
			lis, err := exporter.Listen(listen)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "exporter %q serving on %s\nclients: export JUMPSTARTER_HOST=%s\n",
				e.Name(), listen, lis.Addr().String())
			return e.Serve(ctx, lis)
		},
	}
	f.register(cmd, "info")
	cmd.Flags().StringVar(&listen, "listen", "", "where to serve: unix:///PATH (default: a per-user runtime socket)")
	return cmd
}
